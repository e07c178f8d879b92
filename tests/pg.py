"""PostgreSQL servers for tests: the machine's own server when it answers, else embedded.

Also a password-checking server (the machine's trusts every local login, so it cannot show an
authentication failure).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from sage_ops import postgres
from sage_ops.errors import DatabaseError
from sage_ops.postgres import PgTarget

MACHINE_SERVER = PgTarget(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")


def machine_server_up() -> bool:
    try:
        postgres.connect(MACHINE_SERVER).close()
        return True
    except DatabaseError:
        return False


def embedded_server(data_dir: Path) -> PgTarget:
    import pgserver

    pgserver.get_server(data_dir, cleanup_mode="stop")
    return PgTarget(host=str(data_dir), port=5432, user="postgres", dbname="postgres")


@contextmanager
def sample_database(server: PgTarget) -> Iterator[PgTarget]:
    """A new database seeded with the embedded default's sample schema; dropped afterwards."""
    with postgres.scratch_database(server, prefix="sage_ops_test") as db:
        with postgres.connect(db) as conn:
            conn.execute(resources.files("sage_ops").joinpath("sample_data.sql").read_text())
        yield db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def password_server() -> Iterator[PgTarget]:
    """A PostgreSQL 16 that checks passwords (scram-sha-256), on a free TCP port."""
    # Not under pytest's 0700 tmp dir: the server runs as an unprivileged user.
    base = Path(tempfile.mkdtemp(prefix="sage_ops_pwserver_"))
    base.chmod(0o755)
    try:
        yield from _password_server(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _password_server(base: Path) -> Iterator[PgTarget]:
    import pgserver
    from pgserver.utils import ensure_user_exists

    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"
    user = "pgserver" if os.geteuid() == 0 else None  # postgres refuses to run as root
    if user:
        ensure_user_exists(user)
    data = base / "pwdata"
    data.mkdir(parents=True)
    password = secrets.token_urlsafe(16)
    pwfile = base / "pw"
    pwfile.write_text(password)
    if user:
        shutil.chown(base, user)
        shutil.chown(data, user)
        shutil.chown(pwfile, user)
    port = free_port()
    run = {"user": user, "check": True, "capture_output": True}
    subprocess.run(
        [
            bin_dir / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
        ],
        **run,  # type: ignore[arg-type]
    )
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [bin_dir / "pg_ctl", "-D", data, "-o", opts, "-l", data / "log", "-w", "start"], **run
    )  # type: ignore[arg-type]
    try:
        yield PgTarget(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", password=password
        )
    finally:
        subprocess.run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], **run)  # type: ignore[arg-type]
