"""No fragment of a database password in any output, error or metadata (issue 10, item 4).

Passwords hold every URL-reserved character, `%`, a space and non-ASCII letters, written
percent-encoded and raw (as users paste them), and go through the paths an operator takes:
`sage-ops doctor`, `sage-ops backups list`, the nightly_backup job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, Definitions, EnvVar, serialize_value

from sage_ops.backups import defs as backups
from sage_ops.backups.resources import BackupConfig
from sage_ops.errors import ConfigError
from sage_ops.postgres import PgTarget
from tests.secret_values import (
    FORMS,
    LOGIN,
    ONE_EACH,
    PASSWORDS,
    assert_no_fragment,
    in_url,
    url,
)

SAGE_OPS = str(Path(sys.executable).parent / "sage-ops")
EVERY = [(p, f) for p in ONE_EACH + PASSWORDS for f in FORMS]
ALL_RESERVED = [(p, f) for p in PASSWORDS for f in FORMS]


@pytest.mark.parametrize("password, form", EVERY)
def test_url_with_reserved_characters_in_the_password_parses(password, form):
    written = in_url(password, form)
    target = PgTarget.from_url(
        f"postgresql://app:{written}@db.example.com:6543/sage?sslmode=require"
    )
    assert (target.user, target.password, target.host, target.port, target.dbname) == (
        "app",
        password,
        "db.example.com",
        6543,
        "sage",
    )
    assert target.params == (("sslmode", "require"),)
    assert target.redacted == "postgresql://app:***@db.example.com:6543/sage"
    assert PgTarget.from_url(target.secret_url()) == target


@pytest.mark.parametrize("password, form", EVERY)
@pytest.mark.parametrize(
    "template",
    [
        "postgresql://app:{}@db.example.com:notaport/sage",
        "postgresql://app:{}@db.example.com:99999/sage",
        "postgresql://app:{}@db.example.com:6543/",
        "postgresql://app:{}@/sage",
        "postgresq://app:{}@db.example.com/sage",
        "app:{}@db.example.com/sage",
    ],
)
def test_malformed_url_errors_quote_no_part_of_the_password(template, password, form):
    with pytest.raises(ConfigError) as err:
        PgTarget.from_url(template.format(in_url(password, form)))
    assert_no_fragment(str(err.value), password)


def test_password_given_as_a_query_parameter_is_a_password():
    target = PgTarget.from_url("postgresql://app@db.example.com/sage?password=Qz8Wv%2FXw&x=1")
    assert target.password == "Qz8Wv/Xw" and target.params == (("x", "1"),)
    assert target.scrub("failed for Qz8Wv/Xw") == "failed for ***"


def _cli(args: list[str], database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER")}
    env.update(DATABASE_URL=database_url, SAGE_OPS_BACKUP_URL=f"file://{tmp_path}/backups")
    return subprocess.run(
        [SAGE_OPS, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("password, form", ALL_RESERVED)
def test_doctor_logs_in_and_shows_no_password(password_server, tmp_path, password, form):
    result = _cli(["doctor"], url(password_server, password, form), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    shown = f"postgresql://{LOGIN}:***@127.0.0.1:{password_server.port}/postgres"
    assert f"[ok] database: {shown} reachable" in output
    assert_no_fragment(output, password)


@pytest.mark.parametrize("password, form", ALL_RESERVED)
def test_doctor_failure_shows_no_password(password_server, tmp_path, password, form):
    dead = url(password_server, password, form).replace(f":{password_server.port}/", ":1/")
    result = _cli(["doctor"], dead, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"[FAIL] database: cannot connect to postgresql://{LOGIN}:***@127.0.0.1:1/" in output
    assert_no_fragment(output, password)


@pytest.mark.parametrize("password, form", ALL_RESERVED)
def test_backups_list_shows_no_password(password_server, tmp_path, password, form):
    result = _cli(["backups", "list"], url(password_server, password, form), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no backups of this database" in output
    assert_no_fragment(output, password)


def _nightly_backup(database_url: str, store_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    config = BackupConfig(
        database_url=EnvVar("DATABASE_URL"), backup_url=store_url, keep=2, verify_level="full"
    )
    definitions = Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
    instance = DagsterInstance.ephemeral()
    result = definitions.resolve_job_def("nightly_backup").execute_in_process(
        instance=instance, raise_on_error=False
    )
    log = "\n".join(serialize_value(entry) for entry in instance.all_logs(result.run_id))
    return result, log


@pytest.mark.parametrize("password, form", ALL_RESERVED)
def test_nightly_backup_with_reserved_characters_in_the_password(
    password_server, store, monkeypatch, password, form
):
    result, log = _nightly_backup(url(password_server, password, form), store.url, monkeypatch)
    assert result.success, log[-3000:]
    stored = b"".join(store.get_bytes(o.key) for o in store.objects() if "manifest" in o.key)
    assert_no_fragment(log + stored.decode(), password)


@pytest.mark.parametrize("password, form", ALL_RESERVED)
def test_nightly_backup_failure_description_shows_no_password(
    password_server, store, monkeypatch, password, form
):
    dead = url(password_server, password, form).replace(f":{password_server.port}/", ":1/")
    result, log = _nightly_backup(dead, store.url, monkeypatch)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.message
    assert f"cannot connect to postgresql://{LOGIN}:***@127.0.0.1:1/postgres" in message
    assert_no_fragment(log + message, password)
