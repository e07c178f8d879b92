"""The embedded default database: PostgreSQL 16 from `pgserver`, seeded with sample data.

Used when DATABASE_URL is unset, so that a new machine with nothing but Python can run the
backup pipeline. The server keeps running between processes (like a local dev database) and
is stopped with `sage-ops embedded-stop`.
"""

from __future__ import annotations

import subprocess
import warnings
from importlib import resources
from pathlib import Path

from sage_ops import postgres
from sage_ops.pgtools import embedded_bin_dir
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
    pgserver.get_server(data_dir(), cleanup_mode=None)
    server = PgTarget(host=str(data_dir()), port=5432, user="postgres", dbname="postgres")
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


def stop() -> bool:
    """Stop the embedded server if it runs; True if one was stopped."""
    bin_dir = embedded_bin_dir()
    if bin_dir is None or not (data_dir() / "postmaster.pid").exists():
        return False
    pg_ctl = str(bin_dir / "pg_ctl")
    subprocess.run([pg_ctl, "-D", str(data_dir()), "-m", "fast", "stop"], check=True)
    return True
