"""Refuse unsafe or inconsistent migration runs before anything is changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from sage_ops import postgres
from sage_ops.errors import SageOpsError
from sage_ops.migrations import bookkeeping
from sage_ops.migrations.discovery import MigrationFile
from sage_ops.migrations.statements import needs_no_transaction
from sage_ops.postgres import PgTarget


class MigrationRefused(SageOpsError):
    """The database or the migration files are not in a state that is safe to migrate."""


@dataclass(frozen=True)
class Plan:
    server_version: str
    applied: list[str]
    pending: list[MigrationFile]


def plan(target: PgTarget, migrations: list[MigrationFile]) -> Plan:
    """Check connectivity, role, lock, failed rows and drift; return what is pending."""
    with postgres.connect(target) as conn:
        _, version = postgres.server_version(conn)
        _refuse_read_only(conn, target)
        holder = bookkeeping.lock_holder(conn)
        if holder != "nobody":
            raise MigrationRefused(f"another migration is running on {target.redacted}: {holder}")
        rows = bookkeeping.read_rows(conn)
    return pending_plan(version, rows, migrations)


def pending_plan(
    version: str, rows: list[bookkeeping.MigrationRow], migrations: list[MigrationFile]
) -> Plan:
    files = {m.name: m for m in migrations}
    failed = [r for r in rows if r.failed]
    if failed:
        raise MigrationRefused(unresolved(failed[0], files.get(failed[0].name)))
    applied = {r.name: r for r in rows if r.applied}
    drift = [
        f"{name} ({'missing on disk' if name not in files else 'edited after it was applied'})"
        for name, row in sorted(applied.items())
        if name not in files or not files[name].matches(row.checksum)
    ]
    if drift:
        raise MigrationRefused(
            "applied migrations differ from the files on disk: "
            + ", ".join(drift)
            + "; restore the original files (a new change needs a new migration)"
        )
    pending = [m for m in migrations if m.name not in applied]
    return Plan(version, sorted(applied), pending)


def unresolved(row: bookkeeping.MigrationRow, file: MigrationFile | None) -> str:
    """Why a started, never finished row blocks the run, and the sage-ops command that resolves
    it. A failure sage_ops or Prisma saw is logged in the row; a run that was killed (or lost
    its connection) mid-migration left no log: it was interrupted."""
    name = row.name
    rolled_back = f"`sage-ops migrations resolve --rolled-back {name}`"
    applied = f"`sage-ops migrations resolve --applied {name}`"
    if row.logs:
        reason = row.logs.strip().splitlines()[0]
        return (
            f"migration {name} failed earlier ({reason}) and is unresolved; fix it, then run "
            f"{rolled_back} (or, if it was completed by hand, {applied})"
        )
    if file is not None and not needs_no_transaction(file.sql):
        return (
            f"migration {name} was interrupted (its run died after {_utc(row.started_at)}) "
            "UTC before finishing) and, run in one transaction, left nothing applied; run "
            f"{rolled_back}, then migrate again"
        )
    return (
        f"migration {name} was interrupted (its run died after {_utc(row.started_at)}) "
        "before finishing) and ran outside a transaction: check which of its statements took "
        "effect (drop any INVALID index), then run "
        f"{rolled_back} to retry it, or {applied} if it is complete"
    )


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _refuse_read_only(conn: psycopg.Connection, target: PgTarget) -> None:
    row = conn.execute(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
    ).fetchone()
    if row and row[0]:
        raise MigrationRefused(f"{target.redacted} is a read-only replica; migrate the primary")
    if row and row[1] == "on":
        raise MigrationRefused(f"{target.redacted} only allows read-only transactions")
