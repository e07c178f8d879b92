"""Prisma's own bookkeeping, so `prisma migrate status/deploy` agree with what sage_ops did.

Table `_prisma_migrations` as Prisma creates it, and the session advisory lock Prisma takes
(72707369) so that sage_ops and Prisma never migrate the same database at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg

from sage_ops.errors import DatabaseError

PRISMA_LOCK_KEY = 72707369
LOCK_WAIT_S = 10.0  # Prisma's own wait before P1002

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class MigrationRow:
    id: str
    name: str
    checksum: str
    started_at: datetime
    finished_at: datetime | None
    rolled_back_at: datetime | None
    logs: str | None

    @property
    def applied(self) -> bool:
        return self.finished_at is not None and self.rolled_back_at is None

    @property
    def failed(self) -> bool:
        """Started, never finished, never resolved: blocks every later deploy (Prisma P3009)."""
        return self.finished_at is None and self.rolled_back_at is None


def table_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('_prisma_migrations') IS NOT NULL").fetchone()
    return bool(row and row[0])


def ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(CREATE_TABLE)


def read_rows(conn: psycopg.Connection) -> list[MigrationRow]:
    if not table_exists(conn):
        return []
    rows = conn.execute(
        "SELECT id, migration_name, checksum, started_at, finished_at, rolled_back_at, logs "
        "FROM _prisma_migrations ORDER BY started_at, migration_name"
    ).fetchall()
    return [MigrationRow(*row) for row in rows]


def record_start(conn: psycopg.Connection, name: str, checksum: str) -> str:
    row_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) "
        "VALUES (%s, %s, %s, now())",
        (row_id, checksum, name),
    )
    return row_id


def record_finish(conn: psycopg.Connection, row_id: str) -> None:
    conn.execute(
        "UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = %s",
        (row_id,),
    )


def record_rolled_back(conn: psycopg.Connection, row_id: str, logs: str) -> None:
    """What `prisma migrate resolve --rolled-back` does: the next deploy may retry it."""
    conn.execute(
        "UPDATE _prisma_migrations SET rolled_back_at = now(), logs = %s WHERE id = %s",
        (logs, row_id),
    )


def acquire_lock(conn: psycopg.Connection, wait_s: float = LOCK_WAIT_S) -> None:
    """Take Prisma's migration lock, waiting up to `wait_s`; raise naming the holder if busy."""
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (PRISMA_LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        if time.monotonic() >= deadline:
            raise DatabaseError(
                f"another migration holds the migration lock ({lock_holder(conn)}) "
                f"for more than {wait_s:.0f} s; wait for it or find it in pg_stat_activity"
            )
        time.sleep(0.2)


def release_lock(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (PRISMA_LOCK_KEY,))


def lock_holder(conn: psycopg.Connection) -> str:
    """Who holds the migration lock, e.g. 'pid 4242 (prisma, 00:00:12)', or 'nobody'."""
    row = conn.execute(
        """
        SELECT a.pid, coalesce(nullif(a.application_name, ''), a.usename), now() - a.backend_start
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s AND l.database = (
            SELECT oid FROM pg_database WHERE datname = current_database())
          AND a.pid <> pg_backend_pid()
        LIMIT 1
        """,
        (PRISMA_LOCK_KEY,),
    ).fetchone()
    if not row:
        return "nobody"
    return f"pid {row[0]} ({row[1]}, connected {str(row[2]).split('.')[0]})"


def resolve_rolled_back(conn: psycopg.Connection, name: str) -> None:
    """`prisma migrate resolve --rolled-back`: the failed row stays, the next deploy retries."""
    updated = conn.execute(
        "UPDATE _prisma_migrations SET rolled_back_at = now() "
        "WHERE migration_name = %s AND finished_at IS NULL AND rolled_back_at IS NULL",
        (name,),
    ).rowcount
    if updated == 0:
        raise DatabaseError(f"no unresolved failed migration named {name!r}")


def resolve_applied(conn: psycopg.Connection, name: str, checksum: str) -> None:
    """`prisma migrate resolve --applied`: failed rows of `name` are marked rolled back and a new
    finished row records `checksum`, the file as it is now. Setting finished_at on the failed row
    instead would keep the checksum of the file before its fix, and both sage_ops and Prisma
    would then see the migration as edited after it was applied. Like Prisma, a migration that
    never ran may be marked applied (baselining), but one already applied is refused (P3008)."""
    acquire_lock(conn)
    try:
        with conn.transaction():
            ensure_table(conn)
            rows = [row for row in read_rows(conn) if row.name == name]
            if any(row.finished_at is not None for row in rows):
                raise DatabaseError(f"migration {name!r} is already recorded as applied")
            for row in rows:
                if row.failed:
                    conn.execute(
                        "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE id = %s",
                        (row.id,),
                    )
            # The row Prisma 6.19 writes: empty logs, no steps counted, finished as it starts.
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, "
                "finished_at, applied_steps_count) VALUES (%s, %s, %s, '', now(), now(), 0)",
                (str(uuid.uuid4()), checksum, name),
            )
    finally:
        release_lock(conn)
