"""SAGE_OPS_SCRATCH=embedded: the nightly full restore runs on an embedded PostgreSQL 16 started
by the run itself, never on the source's server (issue 11, item 5).

The source is the password-checking PostgreSQL 16 (a server of its own, TCP); it logs every DDL
statement for the duration of the test, so the proof that no scratch database was created there
is its own log, not sage_ops' word.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, EnvVar

from sage_ops import postgres
from sage_ops.backups.resources import BackupConfig
from sage_ops.embedded import scratch_data_dir
from sage_ops.postgres import PgTarget
from tests import pg
from tests.backups.test_defs import _run


@pytest.fixture
def ddl_logged_source(password_server: PgTarget) -> Iterator[tuple[PgTarget, Path, int]]:
    """A sample database on a server logging DDL; (database, the log, the log's size before)."""
    with pg.sample_database(password_server) as source:
        with postgres.connect(password_server) as conn:
            conn.execute("ALTER SYSTEM SET log_statement = 'ddl'")
            conn.execute("SELECT pg_reload_conf()")
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        log = Path(row[0]) / "log"  # pg_ctl -l (tests/pg.py)
        try:
            yield source, log, log.stat().st_size
        finally:
            with postgres.connect(password_server) as conn:
                conn.execute("ALTER SYSTEM RESET log_statement")
                conn.execute("SELECT pg_reload_conf()")


def test_nightly_full_restore_runs_on_an_embedded_server_not_the_source(
    ddl_logged_source, store, monkeypatch
):
    source, log, offset = ddl_logged_source
    monkeypatch.setenv("DATABASE_URL", source.secret_url())
    with postgres.connect(source) as conn:  # the log does record DDL on this server
        conn.execute("CREATE TABLE IF NOT EXISTS sage_ops_ddl_probe (id int)")
        conn.execute("DROP TABLE sage_ops_ddl_probe")
    config = BackupConfig(
        backup_url=store.url,
        database_url=EnvVar("DATABASE_URL"),
        verify_level="full",
        scratch="embedded",
    )

    result = _run(config, DagsterInstance.ephemeral())

    assert result.success
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.check_name == "backup_verified"
    ]
    assert check.passed and check.metadata["level"].value == "full"
    assert check.metadata["restored_row_counts"].value  # a real restore, table by table
    scratch = PgTarget.from_url(config.scratch_server(source).secret_url())
    assert check.metadata["scratch_server"].value == scratch.redacted
    assert scratch.host != source.host and (scratch_data_dir() / "postmaster.pid").exists()
    logged = log.read_bytes()[offset:].decode(errors="replace")
    assert "sage_ops_ddl_probe" in logged
    assert "CREATE DATABASE" not in logged.upper()


def test_embedded_and_a_scratch_url_together_are_refused(monkeypatch):
    monkeypatch.setenv("SAGE_OPS_SCRATCH", "embedded")
    monkeypatch.setenv("SAGE_OPS_SCRATCH_DATABASE_URL", "postgresql://u@scratch.example/db")
    _, problems = BackupConfig.read_env()
    assert problems == [
        "SAGE_OPS_SCRATCH and SAGE_OPS_SCRATCH_DATABASE_URL are both set: choose one"
    ]


def test_an_unknown_scratch_kind_is_refused(monkeypatch):
    monkeypatch.setenv("SAGE_OPS_SCRATCH", "rds")
    _, problems = BackupConfig.read_env()
    assert problems == ["SAGE_OPS_SCRATCH='rds' is not allowed: it must be unset or embedded"]
