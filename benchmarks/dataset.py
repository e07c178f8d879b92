"""Create, or reuse when complete, a chat-style database of at least the requested size.

The database is generated server-side in batches by two connections at once until
pg_database_size reaches the target; a comment on the database marks it complete so later
runs reuse it (an interrupted build has no marker and is rebuilt).
"""

from __future__ import annotations

import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
from psycopg import sql

from benchmarks import dataset_sql
from benchmarks.corpus import CHAT_TEXT
from sage_ops import postgres
from sage_ops.postgres import MAINTENANCE_DB, PgTarget

log = logging.getLogger(__name__)

GIB = 1024**3
POOL_SENTENCES = 500_000
USERS_PER_BATCH = 400
CONVERSATIONS_PER_BATCH = 4_000
WORKERS = 2


@dataclass(frozen=True)
class Dataset:
    target: PgTarget
    size_gb: float
    db_bytes: int
    reused: bool
    build_s: float


def database_name(size_gb: float) -> str:
    return "sage_bench_" + f"{size_gb:g}".replace(".", "_") + "gb"


def target_bytes(size_gb: float) -> int:
    return int(size_gb * GIB)


def ensure_database(server: PgTarget, size_gb: float) -> Dataset:
    """The benchmark database for `size_gb`, built first unless a complete one exists."""
    name = database_name(size_gb)
    start = time.monotonic()
    with _admin(server) as admin:
        size, complete = _existing(admin, name, size_gb)
        if complete:
            log.info("reusing %s (%.2f GiB)", name, size / GIB)
            return Dataset(server.with_database(name), size_gb, size, True, 0.0)
        _drop(admin, name)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    log.info("building %s up to %.2f GiB", name, size_gb)
    _build(server.with_database(name), target_bytes(size_gb))
    with _admin(server) as admin:
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(_marker(size_gb))
            )
        )
        size, _ = _existing(admin, name, size_gb)
    elapsed = time.monotonic() - start
    log.info("built %s: %.2f GiB in %.0f s", name, size / GIB, elapsed)
    return Dataset(server.with_database(name), size_gb, size, False, elapsed)


def drop_database(server: PgTarget, name: str) -> None:
    with _admin(server) as admin:
        _drop(admin, name)


def _admin(server: PgTarget) -> psycopg.Connection:
    return postgres.connect(server.with_database(MAINTENANCE_DB))


def _marker(size_gb: float) -> str:
    return f"sage_ops benchmark dataset v1, size_gb={size_gb:g}, complete"


def _existing(admin: psycopg.Connection, name: str, size_gb: float) -> tuple[int, bool]:
    """(size in bytes, complete?) of database `name`; (0, False) when it does not exist."""
    row = admin.execute(
        "SELECT pg_database_size(oid), shobj_description(oid, 'pg_database') "
        "FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return 0, False
    size, comment = int(row[0]), row[1]
    return size, comment == _marker(size_gb) and size >= target_bytes(size_gb)


def _drop(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _build(target: PgTarget, size_bytes: int) -> None:
    with _session(target) as conn:
        conn.execute(dataset_sql.SCHEMA)
        pool_bytes = _build_pool(conn)
    batches = itertools.count()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [
            pool.submit(_fill, target, size_bytes + pool_bytes, batches) for _ in range(WORKERS)
        ]
        for future in futures:
            future.result()
    with _session(target) as conn:
        conn.execute(dataset_sql.DROP_POOL)
        log.info("VACUUM (FREEZE, ANALYZE)")
        conn.execute("VACUUM (FREEZE, ANALYZE)")


def _session(target: PgTarget) -> psycopg.Connection:
    conn = postgres.connect(target)
    conn.execute("SET jit = off")
    conn.execute("SET synchronous_commit = off")
    return conn


def _build_pool(conn: psycopg.Connection) -> int:
    """Fill the sentence pool the batches draw text from; return its size on disk."""
    tokens = CHAT_TEXT.split()
    conn.execute(dataset_sql.POOL_TOKENS, {"tokens": tokens})
    conn.execute(dataset_sql.POOL_SENTENCES, {"ntokens": len(tokens), "nsentences": POOL_SENTENCES})
    for statement in dataset_sql.POOL_FINISH:
        conn.execute(statement)
    return _scalar(conn, dataset_sql.POOL_BYTES)


def _fill(target: PgTarget, stop_at: int, batches: itertools.count[int]) -> None:
    with _session(target) as conn:
        while (size := _scalar(conn, "SELECT pg_database_size(current_database())")) < stop_at:
            number = next(batches)
            log.info("batch %d (database at %.0f of %.0f MB)", number, size / 1e6, stop_at / 1e6)
            _insert_batch(conn, number)


def _insert_batch(conn: psycopg.Connection, number: int) -> None:
    params = {
        "u_lo": number * USERS_PER_BATCH + 1,
        "u_hi": (number + 1) * USERS_PER_BATCH,
        "c_lo": number * CONVERSATIONS_PER_BATCH + 1,
        "c_hi": (number + 1) * CONVERSATIONS_PER_BATCH,
        "nsentences": POOL_SENTENCES,
    }
    with conn.transaction():
        for statement in dataset_sql.BATCH:
            conn.execute(statement, params)


def _scalar(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
