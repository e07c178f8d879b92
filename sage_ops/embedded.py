"""Embedded PostgreSQL 16 servers from `pgserver`: the default database and a scratch server.

The default database, seeded with sample data, is used when DATABASE_URL is unset, so that a new
machine with nothing but Python can run the backup pipeline. It keeps running between processes
(like a local dev database) and is stopped with `sage-ops embedded-stop`.

The scratch server (SAGE_OPS_SCRATCH=embedded) is a separate server in its own data directory
for verification restores: on ECS it runs inside the run's own task, on the ephemeral storage
Terraform sizes to the database, so a full restore never touches the production instance. It
stops when the process that started it exits. Everything in it is thrown away after the restore,
so it runs without durability (scratch_settings()): a crash loses nothing that matters, and with
wal_level=minimal a table created and loaded in one transaction writes no WAL for its rows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import warnings
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql

from sage_ops import postgres
from sage_ops.errors import ConfigError
from sage_ops.postgres import PgTarget
from sage_ops.state import state_dir

DATABASE = "sage"
# The scratch server's own settings (ALTER SYSTEM in its data directory, never on a server an
# operator configured). wal_level=minimal requires max_wal_senders=0.
DURABILITY_OFF = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


def data_dir() -> Path:
    return state_dir() / "pgdata"


def scratch_data_dir() -> Path:
    return state_dir() / "scratch-pgdata"


def _server(directory: Path, cleanup_mode: str | None) -> PgTarget:
    """Start (or join) the pgserver PostgreSQL 16 in `directory`; its `postgres` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver's platformdirs warns about XDG_RUNTIME_DIR
        import pgserver

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only root (Fargate) without a state volume, for instance
        raise ConfigError(
            f"cannot create the embedded PostgreSQL's data directory {directory}: "
            f"{exc.strerror}; set DATABASE_URL, or SAGE_OPS_STATE_DIR to a writable directory"
        ) from None
    # The socket may live outside the data dir when that path is too long for a socket.
    return PgTarget.from_url(pgserver.get_server(directory, cleanup_mode=cleanup_mode).get_uri())


def scratch_server() -> PgTarget:
    """The embedded scratch server for verification restores, started in this process with
    scratch_settings() (restarted once if a setting needs it, e.g. on a new data directory)."""
    server = _server(scratch_data_dir(), cleanup_mode="stop")
    if _apply_scratch_settings(server):
        _stop_own(scratch_data_dir())
        server = _server(scratch_data_dir(), cleanup_mode="stop")
    return server


def scratch_settings() -> dict[str, str]:
    return DURABILITY_OFF | {"maintenance_work_mem": f"{scratch_maintenance_mem_mb()}MB"}


def _apply_scratch_settings(server: PgTarget) -> bool:
    """ALTER SYSTEM the scratch settings and reload; True if some need a restart to apply."""
    settings = scratch_settings()
    with postgres.connect(server) as conn:
        for name, value in settings.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
        conn.execute("SELECT pg_reload_conf()")
        return [n for n, v in settings.items() if _show(conn, n) != _normal(v)] != []


def _show(conn: psycopg.Connection, name: str) -> str:
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    return str(row[0]) if row else ""


def _normal(value: str) -> str:
    """A setting as SHOW prints it (memory in MB up to 1 TB: SHOW prints whole GB as GB)."""
    if value.endswith("MB") and int(value[:-2]) % 1024 == 0:
        return f"{int(value[:-2]) // 1024}GB"
    return value


def _stop_own(directory: Path) -> None:
    """Stop the server this process started in `directory` through pgserver's own handle."""
    import pgserver

    pgserver.get_server(directory, cleanup_mode="stop").cleanup()


def scratch_maintenance_mem_mb() -> int:
    """A quarter of the task's memory (cgroup limit, else the machine's), 64 MB to 2 GB: a
    plain restore builds one index at a time, and the dump and this process need the rest."""
    return max(64, min(2048, task_memory_bytes() // 4 // 2**20))


def task_memory_bytes() -> int:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            limit = int(Path(path).read_text().strip())
            if limit < 2**50:  # "max" or a huge number: no limit
                return limit
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def embedded_target() -> PgTarget:
    """Start (or join) the embedded server and make sure the sample database exists."""
    server = _server(data_dir(), cleanup_mode=None)
    with postgres.connect(server) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    target = server.with_database(DATABASE)
    seed_sample_data(target)
    return target


def seed_sample_data(target: PgTarget) -> bool:
    """Load the sample schema and data into `target` unless it has them; True if it loaded them.
    The embedded default's seed, also used for the docker-compose stack's database."""
    with postgres.connect(target) as conn:
        seeded = conn.execute("SELECT to_regclass('public.messages')").fetchone()
        if seeded and seeded[0]:
            return False
        conn.execute(resources.files("sage_ops").joinpath("sample_data.sql").read_text())
    return True


def stop(timeout_s: float = 30.0) -> bool:
    """Stop the embedded server if it runs (fast shutdown); True if one was stopped."""
    pid_file = data_dir() / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # postgres' "fast" shutdown; works whoever owns the server
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return False
    deadline = time.monotonic() + timeout_s
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return True
