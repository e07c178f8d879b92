from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_ops.backups.store import LocalStore
from sage_ops.postgres import PgTarget
from tests import pg


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's own sage_ops settings or state."""
    for name in (
        "DATABASE_URL",
        "SAGE_OPS_BACKUP_URL",
        "SAGE_OPS_SCRATCH_DATABASE_URL",
        "SAGE_OPS_SCRATCH",
        "SAGE_OPS_PG_BIN_DIR",
        "SAGE_OPS_BACKUP_KEEP",
        "SAGE_OPS_VERIFY_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAGE_OPS_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> PgTarget:
    """The machine's PostgreSQL when it answers, else an embedded PostgreSQL 16."""
    if pg.machine_server_up():
        return pg.MACHINE_SERVER
    return pg.embedded_server(tmp_path_factory.mktemp("embedded") / "pgdata")


@pytest.fixture
def source_db(pg_server: PgTarget) -> Iterator[PgTarget]:
    with pg.sample_database(pg_server) as db:
        yield db


@pytest.fixture(scope="session")
def password_server() -> Iterator[PgTarget]:
    with pg.password_server() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(f"file://{tmp_path / 'backups'}")
