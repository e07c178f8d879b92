"""Databases sage_ops created on a server and a killed run left behind: found by their comment
or their name's own tag (postgres.own_database), dropped only when unclaimed and without
sessions, oldest first.

A database is a leftover when its creator's claim (an advisory lock held by the creating
process's session) is gone and no session is connected to it. The claim is taken here too while
dropping, so a run starting on the same name in between cannot lose its database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql

from sage_ops import postgres
from sage_ops.postgres import MAINTENANCE_DB, OWN_MARK, PgTarget

UNMARKED = "unmarked"


@dataclass(frozen=True)
class OwnDatabase:
    name: str
    kind: str  # postgres.SCRATCH or postgres.RESTORE; UNMARKED: killed before its comment
    run_id: str | None
    created_at: str
    size: int  # bytes
    sessions: int
    claimed: bool  # its creator is alive

    @property
    def leftover(self) -> bool:
        return not self.claimed and self.sessions == 0

    def describe(self) -> str:
        run = f"run {self.run_id}" if self.run_id else "no run"
        state = (
            "in use by a live run"
            if self.claimed
            else f"{self.sessions} session(s) connected"
            if self.sessions
            else "leftover"
        )
        return (
            f"{self.name}  {self.kind}  {self.size / 1e6:,.1f} MB  created {self.created_at}  "
            f"{run}  {state}"
        )


def own_databases(server: PgTarget) -> list[OwnDatabase]:
    """Every database on `server` that sage_ops created and marked, oldest first."""
    with postgres.connect(server.with_database(MAINTENANCE_DB)) as conn:
        rows = conn.execute(
            "SELECT d.datname, shobj_description(d.oid, 'pg_database'), "
            "CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_database_size(d.oid) END, "
            "(SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) "
            "FROM pg_database d WHERE shobj_description(d.oid, 'pg_database') LIKE %s "
            "OR d.datname ~ '_[0-9a-f]{12}$'",
            (OWN_MARK + "%",),
        ).fetchall()
        found = []
        for name, comment, size, sessions in rows:
            mark = _mark(comment)
            if mark is None and postgres.has_own_tag(name):
                mark = {"kind": UNMARKED, "run_id": None, "created_at": ""}
            if mark is not None:
                claimed = _claimed(conn, name)
                found.append(
                    OwnDatabase(
                        name=name,
                        kind=str(mark.get("kind")),
                        run_id=mark.get("run_id"),
                        created_at=str(mark.get("created_at")),
                        size=int(size or 0),
                        sessions=int(sessions),
                        claimed=claimed,
                    )
                )
    return sorted(found, key=lambda d: (d.created_at, d.name))


def drop_leftovers(server: PgTarget, kinds: tuple[str, ...] | None = None) -> list[OwnDatabase]:
    """Drop the leftovers (of `kinds`, if given) on `server`, oldest first; the ones dropped."""
    dropped = []
    for db in own_databases(server):
        wanted = kinds is None or db.kind in (*kinds, UNMARKED)
        if db.leftover and wanted and _drop_unclaimed(server, db):
            dropped.append(db)
    return dropped


def _mark(comment: str | None) -> dict[str, str | None] | None:
    if not (comment or "").startswith(OWN_MARK):
        return None
    try:
        mark = json.loads((comment or "").removeprefix(OWN_MARK))
    except ValueError:
        return None
    return mark if isinstance(mark, dict) else None


def _claimed(conn: psycopg.Connection, name: str) -> bool:
    """Whether another session holds `name`'s claim (tried and released at once)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (postgres.claim_key(name),)).fetchone()
    if row and row[0]:
        conn.execute("SELECT pg_advisory_unlock(%s)", (postgres.claim_key(name),))
        return False
    return True


def _drop_unclaimed(server: PgTarget, db: OwnDatabase) -> bool:
    """Drop `db` while holding its claim, unless a session appeared since it was listed."""
    with postgres.connect(server.with_database(MAINTENANCE_DB)) as conn:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s)", (postgres.claim_key(db.name),)
        ).fetchone()
        if not (row and row[0]):
            return False
        try:  # without FORCE: a database someone connected to is not ours to take away
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db.name)))
        except psycopg.errors.ObjectInUse:
            return False
    return True
