"""Child processes get an explicit allowlist of the environment, never its secrets (item 12).

Each tool is replaced by a wrapper that copies its own /proc/<pid>/environ - what the real
tool, which it then execs, receives - into a file, and is reached the way sage_ops reaches it:
SAGE_OPS_PG_BIN_DIR for the PostgreSQL tools, PATH for git, squawk and docker's credential
helpers (sage_ops talks to the Docker Engine through its SDK, which runs those helpers).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from dagster import DagsterInstance, Definitions, EnvVar

from sage_ops import postgres
from sage_ops.backups import defs as backups
from sage_ops.backups.resources import BackupConfig
from sage_ops.deploy.demo import demo_repo
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.lint import lint
from sage_ops.pgtools import tools_for_server
from sage_ops.platforms.git.push_scan import scan
from sage_ops.platforms.git.source import export_tree
from tests.secret_values import PASSWORDS, assert_no_fragment, url

TRICKY = PASSWORDS[0]
SECRETS = {
    "PRODUCTION_DATABASE_URL": f"postgresql://app:{quote(TRICKY, safe='')}@prod.example/sage",
    "STAGING_DATABASE_URL": "postgresql://app:Stg9Kx2Qw@staging.example/sage",
    "ANTHROPIC_API_KEY": "sk-ant-Zx81Rw44Lq",
    "AWS_SECRET_ACCESS_KEY": "Aws7Sec9Key3Val",
    "AWS_SESSION_TOKEN": "Aws2Ses5Tok8Val",
    "GITHUB_TOKEN": "ghp_Gh4Tk7Vl0",
    "GIT_HTTP_TOKEN": "Gt6Tk1Vl9",
    "LC_SAGE_PASSWORD": "Lc3Pw6Vl2",
    "SMTP_PASSWORD": "Sm5Pw8Vl1",
    "SENTRY_SECRET": "Se4Sc7Vl3",
}
BASE = {"PATH", "HOME", "LANG", "TZ", "TMPDIR"}


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SAGE_OPS_NOT_FOR_CHILDREN", "x")


@pytest.fixture
def records(tmp_path: Path) -> Path:
    path = tmp_path / "environs"
    path.mkdir()
    return path


def _wrap(bin_dir: Path, name: str, real: str, records: Path, body: str = "") -> None:
    """`name` in `bin_dir`: records its environment, then runs `body` or execs `real`."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(
        "#!/bin/bash\n"
        f'cp /proc/$$/environ "{records}/{name}.$$"\n' + (body or f'exec "{real}" "$@"') + "\n"
    )
    script.chmod(0o755)


def _recorded(records: Path, name: str) -> list[dict[str, str]]:
    found = []
    for path in sorted(records.glob(f"{name}.*")):
        pairs = [item.split("=", 1) for item in path.read_text().split("\0") if item]
        found.append(dict(pairs))
    assert found, f"{name} was never run"
    return found


def _assert_allowlisted(environ: dict[str, str], names: set[str], prefixes: tuple[str, ...]):
    """Only allowlisted names reach the child, and no secret value at all."""
    extra = {k for k in environ if k not in BASE | names and not k.startswith(("LC_", *prefixes))}
    assert not extra, f"not on the allowlist: {sorted(extra)}"
    assert not set(SECRETS) & set(environ)
    text = "\n".join(environ.values())
    for value in SECRETS.values():
        assert value not in text
    assert_no_fragment(text, TRICKY)


# PGOPTIONS: the scratch restore's session-level settings (no secret: SET parameters only).
PG_NAMES = {
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGOPTIONS",
}


def test_pg_dump_and_psql_get_only_the_allowlist(
    secrets_in_env, records, tmp_path, password_server, store, monkeypatch
):
    with postgres.connect(password_server) as conn:
        real = tools_for_server(*postgres.server_version(conn)).bin_dir
    bin_dir = tmp_path / "pgbin"
    for tool in ("pg_dump", "psql", "pg_restore"):
        _wrap(bin_dir, tool, str(real / tool), records)
    monkeypatch.setenv("SAGE_OPS_PG_BIN_DIR", str(bin_dir))
    monkeypatch.setenv("DATABASE_URL", url(password_server, TRICKY, "raw"))
    config = BackupConfig(
        database_url=EnvVar("DATABASE_URL"), backup_url=store.url, keep=2, verify_level="full"
    )
    definitions = Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
    result = definitions.resolve_job_def("nightly_backup").execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success
    dumps, restores = _recorded(records, "pg_dump"), _recorded(records, "psql")
    for environ in dumps + restores:
        _assert_allowlisted(environ, PG_NAMES | {"PGPASSFILE"}, ())
    assert any("PGPASSFILE" in e for e in dumps) and any("PGPASSFILE" in e for e in restores)


GIT_NAMES = {"SSH_AUTH_SOCK", "XDG_CONFIG_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"}


@pytest.fixture
def shims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on PATH for wrapped tools."""
    path = tmp_path / "shims"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}:{os.environ['PATH']}")
    return path


def test_git_gets_only_the_allowlist(secrets_in_env, records, shims, tmp_path):
    _wrap(shims, "git", shutil.which("git") or "git", records)
    repo = demo_repo(tmp_path / "state")
    scanned = scan(str(repo), "main", ["apps/backend/**"], None, tmp_path / "cache")
    assert scanned.deploy is not None
    export_tree(repo, scanned.deploy.sha, "apps/backend", tmp_path / "export")
    for environ in _recorded(records, "git"):
        _assert_allowlisted(environ, GIT_NAMES, ("GIT_",))


def test_squawk_gets_only_the_allowlist(secrets_in_env, records, shims, tmp_path):
    real = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    _wrap(shims, "squawk", real, records)
    folder = tmp_path / "migrations" / "20260101000000_init"
    folder.mkdir(parents=True)
    (folder / "migration.sql").write_text("CREATE TABLE t (id int);\n")
    lint(load_migrations(tmp_path / "migrations"), {})
    [environ] = _recorded(records, "squawk")
    _assert_allowlisted(environ, set(), ())


DOCKER_NAMES = {
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
}


def test_docker_credential_helper_sees_no_secret(
    secrets_in_env, records, shims, tmp_path, monkeypatch
):
    """docker's SDK runs credential helpers itself; it can only override their environment."""
    import docker

    from sage_ops.platforms.docker_engine.engine import docker_client

    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credsStore": "sageprobe"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    answer = json.dumps({"ServerURL": "127.0.0.1:9", "Username": "u", "Secret": "s"})
    _wrap(shims, "docker-credential-sageprobe", "", records, body=f"echo '{answer}'")
    client = docker_client()  # CI starts the Engine (infra/local/services.sh): no skip
    with contextlib.suppress(docker.errors.DockerException):
        client.images.pull("127.0.0.1:9/sage-probe", tag="none")
    for environ in _recorded(records, "docker-credential-sageprobe"):
        shown = {k: v for k, v in environ.items() if v}
        _assert_allowlisted(shown, DOCKER_NAMES, ())


def test_child_env_allowlist(secrets_in_env, monkeypatch):
    from sage_ops.child_env import DOCKER, GIT, child_env

    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i key")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker.sock")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    base = child_env()
    assert set(base) <= BASE | {k for k in base if k.startswith("LC_")}
    assert base["LC_ALL"] == "C.UTF-8" and "LC_SAGE_PASSWORD" not in base
    git = child_env(GIT, {"GIT_CONFIG_COUNT": "1"})
    assert git["GIT_SSH_COMMAND"] == "ssh -i key" and git["GIT_CONFIG_COUNT"] == "1"
    assert "GIT_HTTP_TOKEN" not in git and "DOCKER_HOST" not in git
    assert child_env(DOCKER)["DOCKER_HOST"] == "unix:///run/docker.sock"
    subprocess.run(["true"], env=base, check=True)
