"""`sage-ops` as an operator runs it: a real process, real instance, real database."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sage_ops import postgres

REPO = Path(__file__).resolve().parent.parent
SAGE_OPS = str(Path(sys.executable).parent / "sage-ops")


def _run(args, env, cwd=REPO, timeout=300):
    return subprocess.run(
        [SAGE_OPS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def env(tmp_path):
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DAGSTER"))}


def test_doctor_reports_redacted_config_and_passes(source_db, tmp_path, env):
    env.update(DATABASE_URL=source_db.redacted, SAGE_OPS_BACKUP_URL=f"file://{tmp_path}/b")
    result = _run(["doctor"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"database_url = {source_db.redacted}" in result.stdout
    assert "[ok] database:" in result.stdout and "[ok] pg_dump:" in result.stdout
    assert "[ok] backup store:" in result.stdout


def test_doctor_names_an_embedded_database_it_cannot_create(tmp_path, env):
    """No DATABASE_URL and no writable state directory (a read-only root without its volume):
    a [FAIL] line saying what to set, not a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env.update(SAGE_OPS_STATE_DIR=str(blocker / "state"), SAGE_OPS_BACKUP_URL=f"file://{tmp_path}")
    result = _run(["doctor"], env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "[FAIL] database:" in line]
    assert f"data directory {blocker / 'state' / 'pgdata'}" in line
    assert "set DATABASE_URL, or SAGE_OPS_STATE_DIR to a writable directory" in line
    assert f"[FAIL] state directory: state directory {blocker / 'state'}" in result.stdout


def test_doctor_fails_with_one_line_per_problem(tmp_path, env):
    env.update(
        DATABASE_URL="postgresql://app:hunter2@127.0.0.1:1/sage",
        SAGE_OPS_BACKUP_URL="ftp://nowhere/",
    )
    result = _run(["doctor"], env)
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if "[FAIL]" in line]
    assert len(failures) == 2
    assert "database: cannot connect" in failures[0] and "unknown scheme" in failures[1]
    assert "hunter2" not in result.stdout + result.stderr
    assert "app:***@127.0.0.1:1/sage" in result.stdout


def test_demo_runs_nightly_backup_on_the_embedded_database(tmp_path, env):
    """The README's first command, minus the UI: a fresh state dir, the embedded database."""
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    env["SAGE_OPS_STATE_DIR"] = str(tmp_path / ".state")
    try:
        result = _run(["demo", "--no-ui"], env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "nightly_backup succeeded" in result.stdout
        backups = sorted((tmp_path / ".state" / "backups").iterdir())
        assert [p.name.endswith(".manifest.json") for p in backups] == [False, True]
        listing = _run(["backups", "list"], env, cwd=tmp_path)
        assert listing.returncode == 0 and "passed" in listing.stdout
        runs = list((tmp_path / ".state" / "dagster" / "storage").rglob("runs.db"))
        assert runs, "the run was recorded in the repo-local instance"
    finally:
        _run(["embedded-stop"], env, cwd=tmp_path)


def test_restore_latest_into_an_empty_database(source_db, pg_server, tmp_path, env):
    from sage_ops.backups.dump import backup_database
    from sage_ops.backups.store import LocalStore
    from sage_ops.backups.verify import verify_backup

    store = LocalStore(f"file://{tmp_path}/b")
    manifest = backup_database(source_db, store)
    verify_backup(store, manifest, "checksum", None)
    with postgres.scratch_database(pg_server, prefix="sage_ops_restore") as empty:
        env.update(
            DATABASE_URL=source_db.redacted,
            SAGE_OPS_BACKUP_URL=store.url,
            RESTORE_DATABASE_URL=empty.redacted,
        )
        result = _run(["backups", "restore", "latest"], env)
        assert result.returncode == 0, result.stderr
        with postgres.connect(empty) as conn:
            assert postgres.table_row_counts(conn) == manifest.row_counts
        again = _run(["backups", "restore", "latest"], env)
        assert again.returncode == 1 and "already has tables" in again.stderr


def test_migrations_status_and_resolve(pg_server, tmp_path, env):
    from tests.migrations.conftest import INIT

    with postgres.scratch_database(pg_server, prefix="sage_ops_cli") as db:
        folder = tmp_path / "migrations" / "20261101000001_init"
        folder.mkdir(parents=True)
        (folder / "migration.sql").write_text(INIT)
        env.update(DATABASE_URL=db.redacted, SAGE_OPS_MIGRATIONS_DIR=str(tmp_path / "migrations"))
        status = _run(["migrations", "status"], env)
        assert status.returncode == 0 and "pending: 20261101000001_init" in status.stdout
        with postgres.connect(db) as conn:  # a run that died mid-migration left this row
            conn.execute(
                "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) "
                "NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, "
                "rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(), "
                "applied_steps_count int NOT NULL DEFAULT 0)"
            )
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, migration_name) "
                "VALUES ('x', 'c', '20261101000001_init')"
            )
        refused = _run(["migrations", "status"], env)
        assert refused.returncode == 1 and "20261101000001_init was interrupted" in refused.stderr
        assert "sage-ops migrations resolve --rolled-back 20261101000001_init" in refused.stderr
        resolved = _run(["migrations", "resolve", "--rolled-back", "20261101000001_init"], env)
        assert resolved.returncode == 0, resolved.stderr
        assert "pending: 20261101000001_init" in _run(["migrations", "status"], env).stdout
        again = _run(["migrations", "resolve", "--rolled-back", "20261101000001_init"], env)
        assert again.returncode == 1 and "no unresolved failed migration" in again.stderr
