"""Embedded PostgreSQL 16 servers from `pgserver`: the default database and a scratch server.

The default database, seeded with sample data, is used when DATABASE_URL is unset, so that a new
machine with nothing but Python can run the backup pipeline. It keeps running between processes
(like a local dev database) and is stopped with `sage-ops embedded-stop`.

The scratch server (SAGE_OPS_SCRATCH=embedded) is a separate server in its own data directory
for verification restores: on ECS it runs inside the run's own task, on the ephemeral storage
Terraform sizes to the database, so a full restore never touches the production instance. It
stops when the process that started it exits.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from importlib import resources
from pathlib import Path

from sage_ops import postgres
from sage_ops.postgres import PgTarget
from sage_ops.state import state_dir

DATABASE = "sage"


def data_dir() -> Path:
    return state_dir() / "pgdata"


def scratch_data_dir() -> Path:
    return state_dir() / "scratch-pgdata"


def _server(directory: Path, cleanup_mode: str | None) -> PgTarget:
    """Start (or join) the pgserver PostgreSQL 16 in `directory`; its `postgres` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver's platformdirs warns about XDG_RUNTIME_DIR
        import pgserver

    directory.mkdir(parents=True, exist_ok=True)
    # The socket may live outside the data dir when that path is too long for a socket.
    return PgTarget.from_url(pgserver.get_server(directory, cleanup_mode=cleanup_mode).get_uri())


def scratch_server() -> PgTarget:
    """The embedded scratch server for verification restores, started in this process."""
    return _server(scratch_data_dir(), cleanup_mode="stop")


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
