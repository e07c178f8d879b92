"""Apply pending migrations one at a time, each in its own transaction, with Prisma's bookkeeping.

The migration and its `finished_at` are committed together, so a failure leaves no schema
change and no half-recorded migration behind; the row is then marked rolled back (as
`prisma migrate resolve --rolled-back` would) so the next run can proceed once the file is fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors

from sage_ops import postgres
from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.migrations import bookkeeping
from sage_ops.migrations.discovery import MigrationFile
from sage_ops.migrations.preflight import pending_plan
from sage_ops.migrations.statements import needs_no_transaction, split_statements
from sage_ops.postgres import PgTarget

NON_TRANSACTIONAL_RISK = (
    "ran outside a transaction (it contains statements PostgreSQL refuses in one, such as "
    "CREATE INDEX CONCURRENTLY): a failure part-way leaves the earlier statements applied, and "
    "an interrupted concurrent index build leaves an INVALID index to drop before retrying"
)


@dataclass(frozen=True)
class RunOptions:
    lock_timeout: str = "5s"
    statement_timeout: str = "15min"
    lock_retries: int = 3
    retry_backoff_s: float = 2.0


@dataclass(frozen=True)
class AppliedMigration:
    name: str
    seconds: float
    transactional: bool
    attempts: int


class MigrationFailed(SageOpsError):
    def __init__(self, migration: str, statement: str, error: str, applied: list[AppliedMigration]):
        self.migration = migration
        self.statement = statement
        self.error = error
        self.applied = applied
        super().__init__(
            f"migration {migration} failed and was rolled back: {error} "
            f"(statement: {_shorten(statement)})"
        )


Event = Callable[[str], None]


def apply_pending(
    target: PgTarget,
    migrations: list[MigrationFile],
    options: RunOptions = RunOptions(),
    log: Event = lambda _: None,
) -> list[AppliedMigration]:
    """Apply every pending migration under Prisma's advisory lock; return what was applied."""
    with postgres.connect(target) as conn:
        _check_timeouts(conn, options)
        _end_with_client(conn)
        bookkeeping.acquire_lock(conn)
        try:
            bookkeeping.ensure_table(conn)
            # Re-plan under the lock: another run may have applied some in the meantime.
            _, version = postgres.server_version(conn)
            pending = pending_plan(version, bookkeeping.read_rows(conn), migrations).pending
            applied: list[AppliedMigration] = []
            for migration in pending:
                log(f"applying {migration.name}")
                applied.append(_apply_one(conn, migration, options, log, applied))
                log(f"applied {migration.name} in {applied[-1].seconds:.2f} s")
            return applied
        finally:
            bookkeeping.release_lock(conn)


# How often the server checks, while a statement runs, that this client is still connected: a
# killed run's statement (and the locks it holds) ends within this, not at statement_timeout.
CLIENT_CHECK_INTERVAL = "1s"


def _end_with_client(conn: psycopg.Connection) -> None:
    """client_connection_check_interval (PostgreSQL 14+; older servers notice only when they
    next write to the socket, at the statement's end)."""
    if conn.info.server_version >= 140000:
        conn.execute(
            "SELECT set_config('client_connection_check_interval', %s, false)",
            (CLIENT_CHECK_INTERVAL,),
        )


def _check_timeouts(conn: psycopg.Connection, options: RunOptions) -> None:
    for name, value in (
        ("lock_timeout", options.lock_timeout),
        ("statement_timeout", options.statement_timeout),
    ):
        try:
            with conn.transaction():
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        except psycopg.Error:
            raise ConfigError(
                f"{name} {value!r} is not a valid PostgreSQL duration (e.g. 5s, 2min)"
            ) from None


def _apply_one(
    conn: psycopg.Connection,
    migration: MigrationFile,
    options: RunOptions,
    log: Event,
    applied: list[AppliedMigration],
) -> AppliedMigration:
    transactional = not needs_no_transaction(migration.sql)
    statements = split_statements(migration.sql)
    row_id = bookkeeping.record_start(conn, migration.name, migration.checksum)
    start = time.monotonic()
    for attempt in range(1, options.lock_retries + 2):
        current = _Cursor()
        try:
            if transactional:
                with conn.transaction():
                    _set_timeouts(conn, options, local=True)
                    current.run(conn, statements)
                    bookkeeping.record_finish(conn, row_id)
            else:
                _run_outside_transaction(conn, statements, current, options, row_id)
            return AppliedMigration(
                migration.name, time.monotonic() - start, transactional, attempt
            )
        except pg_errors.LockNotAvailable as exc:
            if attempt > options.lock_retries:
                _fail(conn, row_id, migration, current.statement, exc, applied)
            wait = options.retry_backoff_s * attempt
            log(f"{migration.name}: lock timeout, retry {attempt} in {wait:.0f} s")
            time.sleep(wait)
        except psycopg.Error as exc:
            _fail(conn, row_id, migration, current.statement, exc, applied)
    raise AssertionError("unreachable")


class _Cursor:
    """Runs statements one at a time and remembers which one is running (for error reports)."""

    statement = ""

    def run(self, conn: psycopg.Connection, statements: list[str]) -> None:
        for statement in statements:
            self.statement = statement
            conn.execute(statement.encode())  # bytes: sent as-is, no client-side formatting


def _run_outside_transaction(
    conn: psycopg.Connection,
    statements: list[str],
    current: _Cursor,
    options: RunOptions,
    row_id: str,
) -> None:
    _set_timeouts(conn, options, local=False)
    try:
        current.run(conn, statements)
        bookkeeping.record_finish(conn, row_id)
    finally:
        conn.execute("RESET lock_timeout")
        conn.execute("RESET statement_timeout")


def _set_timeouts(conn: psycopg.Connection, options: RunOptions, local: bool) -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, %s)", (options.lock_timeout, local))
    conn.execute(
        "SELECT set_config('statement_timeout', %s, %s)", (options.statement_timeout, local)
    )


def _fail(
    conn: psycopg.Connection,
    row_id: str,
    migration: MigrationFile,
    statement: str,
    exc: psycopg.Error,
    applied: list[AppliedMigration],
) -> None:
    error = f"{exc.sqlstate or ''} {exc.diag.message_primary or str(exc)}".strip()
    bookkeeping.record_rolled_back(conn, row_id, f"{error}\nstatement: {statement}")
    raise MigrationFailed(migration.name, statement, error, list(applied)) from None


def _shorten(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
