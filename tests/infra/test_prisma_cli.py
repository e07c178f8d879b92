"""The real Prisma CLI (6.19.3, in the sample backend's migrate image) against sage_ops, both ways.

The prisma runner (on the local Engine) runs `npx prisma migrate deploy` in sage-backend:migrate
(the runtime image, sage-backend:local, has no Prisma CLI); other Prisma commands run in the same
image with the test's migrations mounted in place of the baked ones. Prisma reaches PostgreSQL
through @prisma/adapter-pg, which runs a migration's statements one by one outside a transaction:
a failing migration leaves its earlier statements applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from sage_ops import postgres
from sage_ops.migrations import bookkeeping
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.preflight import MigrationRefused, plan
from sage_ops.migrations.prisma_runner import ContainerMigrationFailed, PrismaRunner
from sage_ops.migrations.runner import apply_pending
from sage_ops.platforms.docker_engine.engine import docker_client
from sage_ops.postgres import PgTarget
from tests.infra.conftest import MIGRATE_IMAGE, REPO
from tests.migrations.conftest import ADD_NAME, ADD_POSTS, INIT, migration_rows, schema_snapshot
from tests.migrations.test_resolve import sage_ops

pytestmark = pytest.mark.stack
SAMPLE_MIGRATIONS = REPO / "infra" / "sample-backend" / "prisma" / "migrations"
# The first statement succeeds, the second fails: through the adapter the first stays applied.
HALF_BROKEN = (
    'CREATE TABLE "Tag" ("id" SERIAL PRIMARY KEY);\nALTER TABLE "Nope" ADD COLUMN "x" INT;\n'
)
HALF_FIXED = 'CREATE TABLE IF NOT EXISTS "Tag" ("id" SERIAL PRIMARY KEY);\n'

Prisma = Callable[..., tuple[int, str]]


@pytest.fixture
def prisma(stack_images, empty_db: PgTarget) -> Prisma:
    """prisma(migrations_dir, "migrate", "status") -> (exit code, output), in the migrate image."""
    client = docker_client()

    def run(migrations: Path, *args: str) -> tuple[int, str]:
        container = client.containers.run(
            MIGRATE_IMAGE,
            ["npx", "prisma", *args],
            environment={"DATABASE_URL": empty_db.secret_url()},
            network_mode="host",
            # pytest's temporary directories are root-only; the mount is read-only.
            user="root",
            volumes={str(migrations): {"bind": "/app/prisma/migrations", "mode": "ro"}},
            detach=True,
        )
        try:
            code = int(container.wait(timeout=120)["StatusCode"])
            return code, container.logs().decode(errors="replace")
        finally:
            container.remove(force=True)

    return run


@pytest.fixture
def resolve() -> Callable[..., None]:
    """resolve(db, migrations, "--applied", NAME): `sage-ops migrations resolve`, must succeed."""

    def run(db: PgTarget, migrations: Path, *args: str) -> None:
        result = sage_ops("migrations", "resolve", *args, db=db, migrations=migrations)
        assert result.returncode == 0, result.stderr

    return run


def checksums(db: PgTarget) -> dict[str, str]:
    with postgres.connect(db) as conn:
        return {r.name: r.checksum for r in bookkeeping.read_rows(conn) if r.applied}


def file_checksums(migrations: Path) -> dict[str, str]:
    return {m.name: m.checksum for m in load_migrations(migrations)}


def test_prisma_docker_runner_applies_the_sample_migrations(stack_images, empty_db):
    files = load_migrations(SAMPLE_MIGRATIONS)
    lines: list[str] = []
    applied = PrismaRunner(release=MIGRATE_IMAGE).apply(empty_db, files, lines.append)
    assert [a.name for a in applied] == [m.name for m in files]
    assert "All migrations have been successfully applied." in lines
    assert checksums(empty_db) == file_checksums(SAMPLE_MIGRATIONS)
    assert plan(empty_db, files).pending == []
    again = PrismaRunner(release=MIGRATE_IMAGE).apply(empty_db, files, lines.append)
    assert again == []


def test_applied_by_sage_ops_is_applied_for_prisma(prisma, write_migrations, empty_db):
    migrations = write_migrations(("init", INIT), ("posts", ADD_POSTS))
    apply_pending(empty_db, load_migrations(migrations))
    code, out = prisma(migrations, "migrate", "status")
    assert code == 0 and "Database schema is up to date!" in out, out
    snapshot = schema_snapshot(empty_db)
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 0 and "No pending migrations to apply." in out, out
    assert schema_snapshot(empty_db) == snapshot


def test_applied_by_prisma_is_applied_for_sage_ops(prisma, write_migrations, empty_db):
    migrations = write_migrations(("init", INIT), ("posts", ADD_POSTS))
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 0, out
    assert checksums(empty_db) == file_checksums(migrations)  # same sha256 as sage_ops'
    assert plan(empty_db, load_migrations(migrations)).pending == []
    assert apply_pending(empty_db, load_migrations(migrations)) == []


def test_failed_under_prisma_is_failed_for_sage_ops_and_resolved_by_either(
    prisma, write_migrations, empty_db
):
    migrations = write_migrations(("init", INIT), ("tag", HALF_BROKEN))
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 1 and "No such table: Nope" in out, out
    assert migration_rows(empty_db)[-1][:3] == ("20261101000002_tag", False, False)
    assert ("col", "Tag", "id") in {c[:3] for c in schema_snapshot(empty_db)}  # not rolled back
    with pytest.raises(MigrationRefused, match="20261101000002_tag failed earlier"):
        plan(empty_db, load_migrations(migrations))
    code, out = prisma(migrations, "migrate", "status")
    assert code == 1 and "20261101000002_tag" in out and "failed" in out, out

    # Fixed and completed by hand, then resolved with Prisma: sage_ops accepts the new row.
    (migrations / "20261101000002_tag" / "migration.sql").write_text(HALF_FIXED)
    code, out = prisma(migrations, "migrate", "resolve", "--applied", "20261101000002_tag")
    assert code == 0, out
    assert plan(empty_db, load_migrations(migrations)).pending == []
    assert (
        checksums(empty_db)["20261101000002_tag"] == hashlib.sha256(HALF_FIXED.encode()).hexdigest()
    )


def test_failed_under_prisma_resolved_by_sage_ops_satisfies_prisma(
    prisma, write_migrations, empty_db, resolve
):
    migrations = write_migrations(("init", INIT), ("tag", HALF_BROKEN))
    assert prisma(migrations, "migrate", "deploy")[0] == 1
    (migrations / "20261101000002_tag" / "migration.sql").write_text(HALF_FIXED)
    resolve(empty_db, migrations, "--applied", "20261101000002_tag")
    code, out = prisma(migrations, "migrate", "status")
    assert code == 0 and "Database schema is up to date!" in out, out
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 0 and "No pending migrations to apply." in out, out


def test_failed_under_sage_ops_is_failed_for_prisma_and_rolled_back_by_either(
    prisma, write_migrations, empty_db, resolve
):
    """The sql runner marks its own failures rolled back; a run killed mid-migration leaves the
    row unfinished, as Prisma's deploy does. That row is written here by sage_ops' bookkeeping."""
    migrations = write_migrations(("init", INIT), ("name", ADD_NAME))
    [init, name] = load_migrations(migrations)
    apply_pending(empty_db, [init])
    with postgres.connect(empty_db) as conn:
        bookkeeping.record_start(conn, name.name, name.checksum)
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 1 and "P3009" in out and name.name in out, out

    code, out = prisma(migrations, "migrate", "resolve", "--rolled-back", name.name)
    assert code == 0, out
    assert [m.name for m in plan(empty_db, load_migrations(migrations)).pending] == [name.name]
    with postgres.connect(empty_db) as conn:
        bookkeeping.record_start(conn, name.name, name.checksum)  # fails again
    resolve(empty_db, migrations, "--rolled-back", name.name)
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 0 and name.name in out, out
    assert plan(empty_db, load_migrations(migrations)).pending == []


def test_edited_applied_migration_is_refused_by_sage_ops_and_only_noted_by_prisma(
    prisma, write_migrations, empty_db
):
    migrations = write_migrations(("init", INIT), ("name", ADD_NAME))
    apply_pending(empty_db, load_migrations(migrations))
    edited = migrations / "20261101000002_name" / "migration.sql"
    edited.write_text(ADD_NAME.replace('"name" TEXT', '"name" VARCHAR(80)'))
    with pytest.raises(MigrationRefused, match="20261101000002_name .edited after it was applied"):
        plan(empty_db, load_migrations(migrations))
    # What Prisma 6.19 does through the Wasm engine: status and deploy both exit 0 and say the
    # schema is up to date; the edit is only noted inside its engine, never reported.
    code, out = prisma(migrations, "migrate", "status")
    assert code == 0 and "Database schema is up to date!" in out, out
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 0 and "No pending migrations to apply." in out, out


def test_crlf_only_change_is_drift_for_neither(prisma, write_migrations, empty_db):
    migrations = write_migrations(("init", INIT), ("posts", ADD_POSTS))
    code, out = prisma(migrations, "migrate", "deploy")
    assert code == 0, out
    for sql_file in migrations.glob("*/migration.sql"):
        sql_file.write_bytes(sql_file.read_bytes().replace(b"\n", b"\r\n"))
    assert plan(empty_db, load_migrations(migrations)).pending == []
    code, out = prisma(migrations, "migrate", "status")
    assert code == 0 and "Database schema is up to date!" in out, out


def test_failing_prisma_runner_fails_the_migration(stack_images, empty_db):
    """The runner with the image's baked migrations, against a database where the first one
    cannot apply: Prisma exits 1, the runner raises with its output and without the password,
    and the failed row then makes sage_ops' preflight refuse the next run."""
    files = load_migrations(SAMPLE_MIGRATIONS)
    with postgres.connect(empty_db) as conn:  # (with no history Prisma would refuse: P3005)
        bookkeeping.ensure_table(conn)
        conn.execute('CREATE TABLE "User" ("id" INT)')
    runner = PrismaRunner(release=MIGRATE_IMAGE)
    with pytest.raises(ContainerMigrationFailed) as err:
        runner.apply(empty_db, files, lambda _: None)
    assert "already exists" in str(err.value)
    assert empty_db.secret_url() not in str(err.value)
    assert migration_rows(empty_db) == [(files[0].name, False, False, 0)]
    with pytest.raises(MigrationRefused, match=f"{files[0].name} failed earlier"):
        runner.apply(empty_db, files, lambda _: None)
