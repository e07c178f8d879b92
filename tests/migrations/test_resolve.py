"""`sage-ops migrations resolve` as the README's failed-migration flow uses it, and as Prisma's own
`migrate resolve` does it (the real CLI's rows are compared in tests/infra/test_prisma_cli.py)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sage_ops import postgres
from sage_ops.migrations import bookkeeping
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.preflight import plan
from tests.migrations.conftest import ADD_NAME, INIT

SAGE_OPS = str(Path(sys.executable).parent / "sage-ops")
BROKEN = 'ALTER TABLE "User" ADD COLUMN "name" TEXTT;\n'


def sage_ops(*args: str, db, migrations: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DAGSTER"))}
    env.update(DATABASE_URL=db.redacted, SAGE_OPS_MIGRATIONS_DIR=str(migrations))
    return subprocess.run([SAGE_OPS, *args], env=env, capture_output=True, text=True, timeout=120)


def rows(db) -> list[tuple]:
    with postgres.connect(db) as conn:
        return conn.execute(
            "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL "
            "FROM _prisma_migrations ORDER BY started_at, finished_at NULLS FIRST"
        ).fetchall()


@pytest.fixture
def failed_name(write_migrations, empty_db) -> tuple[Path, str]:
    """init applied; add_name failed under Prisma's deploy with the broken file's checksum."""
    migrations = write_migrations(("init", INIT), ("add_name", BROKEN))
    [init, add_name] = load_migrations(migrations)
    with postgres.connect(empty_db) as conn:
        bookkeeping.ensure_table(conn)
        conn.execute(INIT)
        bookkeeping.record_finish(conn, bookkeeping.record_start(conn, init.name, init.checksum))
        bookkeeping.record_start(conn, add_name.name, add_name.checksum)
    return migrations, add_name.name


def test_resolve_applied_records_the_fixed_file_like_prisma(failed_name, empty_db):
    migrations, name = failed_name
    broken_checksum = hashlib.sha256(BROKEN.encode()).hexdigest()
    (migrations / name / "migration.sql").write_text(ADD_NAME)  # fixed ...
    with postgres.connect(empty_db) as conn:  # ... and completed by hand
        conn.execute(ADD_NAME)

    result = sage_ops(
        "migrations", "resolve", "--applied", name, db=empty_db, migrations=migrations
    )

    assert result.returncode == 0, result.stderr
    fixed_checksum = hashlib.sha256(ADD_NAME.encode()).hexdigest()
    assert rows(empty_db)[1:] == [
        (name, broken_checksum, False, True),  # the failed attempt, kept and marked rolled back
        (name, fixed_checksum, True, False),  # a new finished row: the file as it is now
    ]
    status = sage_ops("migrations", "status", db=empty_db, migrations=migrations)
    assert status.returncode == 0, status.stderr  # no "edited after it was applied"
    assert "applied: 2" in status.stdout and "pending" not in status.stdout


def test_resolve_applied_refuses_an_applied_or_unknown_migration(failed_name, empty_db):
    migrations, _ = failed_name
    again = sage_ops(
        "migrations",
        "resolve",
        "--applied",
        "20261101000001_init",
        db=empty_db,
        migrations=migrations,
    )
    assert again.returncode == 1 and "already recorded as applied" in again.stderr
    typo = sage_ops(
        "migrations",
        "resolve",
        "--applied",
        "20261101000002_add_nam",
        db=empty_db,
        migrations=migrations,
    )
    assert typo.returncode == 1 and "no migration named '20261101000002_add_nam'" in typo.stderr
    assert [r[2:] for r in rows(empty_db)] == [(True, False), (False, False)]  # nothing changed


def test_resolve_applied_baselines_a_migration_that_never_ran(write_migrations, empty_db):
    """Prisma's baselining: an existing database adopts its first migration without running it."""
    migrations = write_migrations(("init", INIT))
    with postgres.connect(empty_db) as conn:
        conn.execute(INIT)
    result = sage_ops(
        "migrations",
        "resolve",
        "--applied",
        "20261101000001_init",
        db=empty_db,
        migrations=migrations,
    )
    assert result.returncode == 0, result.stderr
    assert plan(empty_db, load_migrations(migrations)).pending == []


def test_resolve_rolled_back_lets_the_fixed_file_run_next(failed_name, empty_db):
    migrations, name = failed_name
    (migrations / name / "migration.sql").write_text(ADD_NAME)
    result = sage_ops(
        "migrations", "resolve", "--rolled-back", name, db=empty_db, migrations=migrations
    )
    assert result.returncode == 0, result.stderr
    assert [m.name for m in plan(empty_db, load_migrations(migrations)).pending] == [name]
