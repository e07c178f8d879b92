from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sage_ops import postgres
from sage_ops.postgres import PgTarget

INIT = """-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
"""
ADD_POSTS = """-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "authorId" INTEGER NOT NULL,
    "title" TEXT NOT NULL,
    CONSTRAINT "Post_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id")
);
"""
ADD_NAME = """-- AlterTable
ALTER TABLE "User" ADD COLUMN "name" TEXT;
"""

WriteMigrations = Callable[..., Path]


@pytest.fixture
def write_migrations(tmp_path: Path) -> WriteMigrations:
    """Write a Prisma migrations directory: write_migrations(("init", sql), ...) -> path."""
    root = tmp_path / "prisma" / "migrations"

    def _write(*migrations: tuple[str, str]) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        (root / "migration_lock.toml").write_text('provider = "postgresql"\n')
        for index, (name, sql) in enumerate(migrations, start=1):
            folder = root / f"202611010000{index:02d}_{name}"
            folder.mkdir(exist_ok=True)
            (folder / "migration.sql").write_text(sql)
        return root

    return _write


@pytest.fixture
def empty_db(pg_server: PgTarget) -> Iterator[PgTarget]:
    with postgres.scratch_database(pg_server, prefix="sage_ops_migrate") as db:
        yield db


def schema_snapshot(target: PgTarget) -> list[tuple]:
    """Every column, constraint and index of the public schema: equal snapshots = same schema."""
    with postgres.connect(target) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return (
        [("col", *c) for c in columns]
        + [("con", *c) for c in constraints]
        + [("idx", *i) for i in indexes]
    )


def migration_rows(target: PgTarget) -> list[tuple]:
    with postgres.connect(target) as conn:
        return conn.execute(
            "SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, "
            "applied_steps_count FROM _prisma_migrations ORDER BY started_at, migration_name"
        ).fetchall()
