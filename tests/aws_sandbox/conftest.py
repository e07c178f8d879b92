"""One sandbox stack per test module: its AWS resources on a moto server, its databases on the
machine's PostgreSQL, and Terraform's task environment naming them (see stack.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from sage_ops import postgres
from sage_ops.postgres import PgTarget
from tests import pg
from tests.aws_sandbox import network, stack
from tests.aws_sandbox.control_plane import ControlPlane, ServerHooks
from tests.aws_sandbox.daemon import running
from tests.aws_sandbox.network import Place
from tests.backups.s3 import apply_env, aws_env, moto_server
from tests.infra.test_terraform_contract import rendered_value, sage_ops_stack


@dataclass(frozen=True)
class Sandbox:
    env: dict[str, str]  # exactly Terraform's names
    source_db: PgTarget  # DATABASE_URL's database (PostgreSQL 16 with a password, over TCP)
    commit: str  # the repository's head
    places: dict[str, Place]  # each endpoint the sandbox serves -> what it stands for (network.py)


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[str, ServerHooks]]:
    """The moto server (its endpoint) with the control plane's hooks in front of it."""
    with moto_server() as server:
        yield server.endpoint, server.wrap(ServerHooks)


@pytest.fixture(scope="module")
def moto_endpoint(moto: tuple[str, ServerHooks]) -> str:
    return moto[0]


@pytest.fixture
def control_plane(sandbox: Sandbox, moto: tuple[str, ServerHooks]) -> Iterator[ControlPlane]:
    """CodeBuild's builds and ECS's rollouts, for every caller of the sandbox's moto server
    while the test runs."""
    hooks = moto[1]
    hooks.plane = ControlPlane(sandbox.env["SAGE_OPS_IMAGE_REPOSITORY"])
    try:
        yield hooks.plane
    finally:
        hooks.plane = None


@pytest.fixture(scope="module")
def sandbox_stack(
    moto_endpoint: str,
    pg_server: PgTarget,
    password_server: PgTarget,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("sandbox")
    with pytest.MonkeyPatch.context() as mp, ExitStack() as databases:
        _aws(moto_endpoint, mp)
        stack.keep_service_tasks_running(moto_endpoint)
        repo, commit = stack.git_repo(root / "repo")
        source = databases.enter_context(pg.sample_database(password_server))
        # Dagster's storage of its own, so what the sandbox's runs record is all it holds.
        storage = databases.enter_context(postgres.scratch_database(pg_server, "sage_ops_dagster"))
        local = {
            "DATABASE_URL": source.secret_url(),
            "SAGE_OPS_STATE_DIR": str(root / "task-volume"),  # the task's ephemeral volume
            "DAGSTER_HOME": str(stack.dagster_home(root / "dagster-home")),
            "DAGSTER_PG_HOST": storage.host,
            "DAGSTER_PG_PORT": str(storage.port),
            "DAGSTER_PG_DB": storage.dbname,
            "DAGSTER_PG_USER": storage.user,
            # Terraform's "require" is for RDS; the machine's servers speak no TLS.
            "PGSSLMODE": "prefer",
            # In the image: the backend's migrations baked at /opt/dagster/migrations.
            "SAGE_OPS_MIGRATIONS_DIR": str(
                stack.REPO_ROOT / "infra/sample-backend/prisma/migrations"
            ),
        }
        home = sage_ops_stack()  # DATABASE_URL's and Dagster's: the stack's own RDS
        places = {_endpoint(db): network.rds(home) for db in (source, storage)}
        for env in stack.ENVIRONMENTS:
            db = databases.enter_context(pg.sample_database(pg_server))
            local[f"{env.upper()}_DATABASE_URL"] = db.secret_url()
            places[_endpoint(db)] = network.rds(env)
        env = stack.terraform_environment(stack.aws_resources(repo), local)
        env["SAGE_OPS_RUN_TASK_DEFINITION"] = stack.register_run_task_definition(env)
        places[moto_endpoint.removeprefix("http://")] = network.AWS_APIS
        places[str(repo)] = network.git_host(rendered_value("SAGE_OPS_REPO") or "")
        yield Sandbox(env, source, commit, places)


def _endpoint(db: PgTarget) -> str:
    return f"{db.host}:{db.port}/{db.dbname}"


def _aws(endpoint: str, mp: pytest.MonkeyPatch) -> None:
    """boto3 on moto (AWS_DEFAULT_REGION too, which Fargate sets beside Terraform's AWS_REGION)."""
    apply_env(aws_env(endpoint), mp.setenv, lambda k: mp.delenv(k, False))


@pytest.fixture
def daemon(sandbox: Sandbox, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The real dagster-daemon in its task on moto (daemon.py); yields its container's
    environment, with its cluster under "cluster"."""
    with running(sandbox.env["DAGSTER_HOME"], tmp_path) as env:
        yield env


@pytest.fixture
def sandbox(sandbox_stack: Sandbox, moto_endpoint: str, monkeypatch) -> Sandbox:
    """This process with exactly the task's variables (nothing of sage_ops' from this machine)."""
    for name in list(os.environ):
        if name.startswith(("SAGE_OPS_", "DAGSTER_")) or name.endswith("DATABASE_URL"):
            monkeypatch.delenv(name)
    _aws(moto_endpoint, monkeypatch)
    for name, value in sandbox_stack.env.items():
        monkeypatch.setenv(name, value)
    return sandbox_stack
