"""Provoke PostgreSQL's own errors on a real server, so the corpus's message texts are checked
against what the server really says (and its log, in every log format it writes).

Each provocation returns (SQLSTATE, primary message) as the client received them.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

import psycopg

from sage_ops.postgres import PgTarget

Provoked = tuple[str, str]


def _connect(target: PgTarget, **options: str) -> psycopg.Connection:
    conn = psycopg.connect(**target.conninfo(), autocommit=True)  # type: ignore[arg-type]
    for name, value in options.items():
        conn.execute(f"SET {name} = '{value}'")
    return conn


def _error(action: Callable[[], object]) -> Provoked:
    try:
        action()
    except psycopg.Error as exc:
        # A refused connection has no diagnostics: libpq's message is the text.
        return exc.sqlstate or "", exc.diag.message_primary or str(exc)
    raise AssertionError("the server did not refuse")


def _table(conn: psycopg.Connection) -> str:
    name = f"sage_provoke_{secrets.token_hex(4)}"
    conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, n int)")
    conn.execute(f"INSERT INTO {name} VALUES (1, 0), (2, 0)")
    return name


def lock_timeout(target: PgTarget) -> list[Provoked]:
    """55P03 twice: a lock_timeout while waiting (after a logged lock wait), and NOWAIT."""
    with _connect(target) as holder, _connect(target, lock_timeout="400ms") as waiter:
        table = _table(holder)
        try:
            with holder.transaction():
                holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                waited = _error(lambda: waiter.execute(f"SELECT * FROM {table}"))
            with holder.transaction():
                holder.execute(f"SELECT * FROM {table} WHERE id = 1 FOR UPDATE")
                nowait = _error(
                    lambda: waiter.execute(f"SELECT * FROM {table} WHERE id = 1 FOR UPDATE NOWAIT")
                )
        finally:
            holder.execute(f"DROP TABLE {table}")
    return [waited, nowait]


def statement_timeout(target: PgTarget) -> list[Provoked]:
    with _connect(target, statement_timeout="50ms") as conn:
        return [_error(lambda: conn.execute("SELECT pg_sleep(2)"))]


def user_cancel(target: PgTarget) -> list[Provoked]:
    """57014 that is not a timeout: pg_cancel_backend."""
    with _connect(target) as victim, _connect(target) as admin:
        pid = victim.info.backend_pid
        timer = threading.Timer(0.3, lambda: admin.execute(f"SELECT pg_cancel_backend({pid})"))
        timer.start()
        try:
            return [_error(lambda: victim.execute("SELECT pg_sleep(5)"))]
        finally:
            timer.join()


def deadlock(target: PgTarget) -> list[Provoked]:
    with _connect(target) as a, _connect(target) as b:
        table = _table(a)
        found: list[Provoked] = []
        try:
            a.execute("BEGIN")
            b.execute("BEGIN")
            a.execute(f"UPDATE {table} SET n = 1 WHERE id = 1")
            b.execute(f"UPDATE {table} SET n = 1 WHERE id = 2")

            def second() -> None:
                try:
                    b.execute(f"UPDATE {table} SET n = 2 WHERE id = 1")
                except psycopg.Error as exc:
                    found.append((exc.sqlstate or "", exc.diag.message_primary or ""))

            other = threading.Thread(target=second)
            other.start()
            time.sleep(0.2)
            try:
                a.execute(f"UPDATE {table} SET n = 2 WHERE id = 2")
            except psycopg.Error as exc:
                found.append((exc.sqlstate or "", exc.diag.message_primary or ""))
            other.join()
        finally:
            a.execute("ROLLBACK")
            b.execute("ROLLBACK")
            a.execute(f"DROP TABLE {table}")
    return found


def role_connection_limit(target: PgTarget) -> list[Provoked]:
    """53300 from a role's CONNECTION LIMIT (the others need the server's slots exhausted)."""
    role = f"sage_provoke_{secrets.token_hex(4)}"
    with _connect(target) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
        try:
            limited = PgTarget(target.host, target.port, role, target.dbname)
            return [_error(lambda: _connect(limited).close())]
        finally:
            admin.execute(f"DROP ROLE {role}")


def idle_in_transaction(target: PgTarget) -> list[Provoked]:
    """25P03: a session timeout, not a statement timeout."""
    with _connect(target, idle_in_transaction_session_timeout="100ms") as conn:
        conn.execute("BEGIN")
        time.sleep(0.4)
        return [_error(lambda: conn.execute("SELECT 1"))]


def terminated(target: PgTarget) -> list[Provoked]:
    """57P01: an administrator's pg_terminate_backend."""
    with _connect(target) as victim, _connect(target) as admin:
        admin.execute(f"SELECT pg_terminate_backend({victim.info.backend_pid})")
        time.sleep(0.1)
        return [_error(lambda: victim.execute("SELECT 1"))]


ALL = (
    lock_timeout,
    statement_timeout,
    user_cancel,
    deadlock,
    role_connection_limit,
    idle_in_transaction,
    terminated,
)
