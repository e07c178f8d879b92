"""The embedded default database: PostgreSQL 16 from `pgserver`, seeded with sample data.

Used when DATABASE_URL is unset, so that a new machine with nothing but Python can run the
backup pipeline. The server keeps running between processes (like a local dev database) and
is stopped with `sage-ops embedded-stop`.
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
from sage_ops.settings import state_dir

DATABASE = "sage"


def data_dir() -> Path:
    return state_dir() / "pgdata"


def embedded_target() -> PgTarget:
    """Start (or join) the embedded server and make sure the sample database exists."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver's platformdirs warns about XDG_RUNTIME_DIR
        import pgserver

    data_dir().mkdir(parents=True, exist_ok=True)
    # The socket may live outside the data dir when that path is too long for a socket.
    server = PgTarget.from_url(pgserver.get_server(data_dir(), cleanup_mode=None).get_uri())
    with postgres.connect(server) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    target = server.with_database(DATABASE)
    with postgres.connect(target) as conn:
        seeded = conn.execute("SELECT to_regclass('public.messages')").fetchone()
        if not (seeded and seeded[0]):
            conn.execute(resources.files("sage_ops").joinpath("sample_data.sql").read_text())
    return target


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
