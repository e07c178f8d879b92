"""A PostgreSQL 16 of our own with few connection slots, so 53300 really happens.

Started from the pgserver binaries (as the unprivileged `pgserver` user when we are root, as
tests/pg.py does), trust auth on a free 127.0.0.1 port, stderr logging in UTC to a file we read
as the incident's log source. max_connections=12 with 3 superuser-reserved slots: the 10th
ordinary connection is refused with "remaining connection slots are reserved", the 13th of all
with "sorry, too many clients already".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sage_ops.postgres import PgTarget
from tests.pg import free_port

MAX_CONNECTIONS = 12
RESERVED = 3
APP_ROLE = "app"
APP_DB = "sage"


@dataclass(frozen=True)
class SmallServer:
    admin: PgTarget  # superuser, database postgres
    app: PgTarget  # ordinary role on the application database
    log_file: Path


@contextmanager
def small_server(extra_opts: str = "") -> Iterator[SmallServer]:
    import pgserver
    from pgserver.utils import ensure_user_exists

    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"
    user = "pgserver" if os.geteuid() == 0 else None
    if user:
        ensure_user_exists(user)
    base = Path(tempfile.mkdtemp(prefix="sage_ops_small_pg_"))
    base.chmod(0o755)
    data, log = base / "data", base / "server.log"
    if user:
        shutil.chown(base, user)
    run = {"user": user, "check": True, "capture_output": True}
    try:
        subprocess.run([bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust"], **run)  # type: ignore[arg-type]
        port = free_port()
        opts = (
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={MAX_CONNECTIONS} -c superuser_reserved_connections={RESERVED} "
            f"-c log_timezone=UTC -c fsync=off {extra_opts}"
        )
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data, "-o", opts, "-l", log, "-w", "start"], **run
        )  # type: ignore[arg-type]
        admin = PgTarget(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        _create_app(admin)
        yield SmallServer(admin, PgTarget("127.0.0.1", port, APP_ROLE, APP_DB), log)
    finally:
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], **{**run, "check": False}
        )  # type: ignore[arg-type]
        shutil.rmtree(base, ignore_errors=True)


def _create_app(admin: PgTarget) -> None:
    from sage_ops import postgres

    with postgres.connect(admin) as conn:
        conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
        conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
