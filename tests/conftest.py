from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_ops.backups.store import LocalStore
from sage_ops.postgres import PgTarget
from tests import pg

# Fixtures that start a real server (PostgreSQL, moto, Docker, a registry, Dagster's UI, a
# browser): a test that uses none of them, directly or through another fixture, is `quick`.
SERVER_FIXTURES = frozenset(
    {
        "pg_server",
        "password_server",
        "small_pg",
        "moto",
        "moto_endpoint",
        "docker_env",
        "auth_registry",
        "gated_ui",
        "dagster_ui",
        "page",
        "stack_images",
        "sandbox_stack",
    }
)
# Tests that reach real systems (Docker, the embedded server) without a fixture, or take a minute.
SERVER_SUITES = (
    "faults",
    "ui",
    "infra",
    "aws_sandbox",
    "gate/test_gated_webserver.py",
    "gate/test_daemon_lifecycle.py",
    "incidents/test_containers.py",
    "incidents/test_corpus_server.py",
    "test_child_env.py::test_docker_credential_helper_sees_no_secret",
    "test_cli.py::test_demo_runs_nightly_backup_on_the_embedded_database",
    "incidents/test_triage_cli.py::test_100_mb_of_logs_in_flat_memory",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the pure-Python tests `quick`: `python3 dev.py test --quick` runs only those."""
    root = Path(__file__).parent
    for item in items:
        where = f"{item.path.relative_to(root).as_posix()}::{item.name}"
        uses_server = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if not uses_server and not where.startswith(SERVER_SUITES):
            item.add_marker(pytest.mark.quick)


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
