"""A push deployed through the production path: the real dagster-daemon's git_push_sensor sees
a `git push` to the watched repository, the QueuedRunCoordinator queues deploy_backend for the
pushed commit, EcsRunLauncher starts Terraform's run task definition and the Fargate stand-in
runs it. In that task the run builds through CodeBuild, migrates staging, then production, and
rolls both ECS services out to the new image. CodeBuild's build and ECS's rollouts are played on
the moto server (control_plane.py), so the run task's own boto3 calls see them. The run's events
are read back from the Postgres storage; the services' new task definitions from ECS.
(test_deploy.py runs the same job in process, and checks each step's record in detail.)
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.scheduler.instigation import SensorInstigatorData

from sage_ops import postgres
from sage_ops.lineage.names import DEPLOY_BACKEND
from sage_ops.lineage.tags import COMMIT_TAG
from sage_ops.migrations import bookkeeping
from sage_ops.platforms.ecs.target import parse_target
from tests.aws_sandbox import stack
from tests.aws_sandbox.conftest import Sandbox
from tests.aws_sandbox.control_plane import ControlPlane
from tests.aws_sandbox.daemon import (
    dagster,
    fargate_run,
    instigator_state,
    queued_run,
    sensor_ticked,
)
from tests.aws_sandbox.test_run_task import grants

SENSOR = "git_push_sensor"
TIMEOUT_S = 600  # a sensor interval (30 s), the run worker's start, a build and two rollouts
MIGRATION = "20261201000000_push_marker"


@pytest.fixture
def seen_head(sandbox: Sandbox) -> str:
    """git_push_sensor's state as a daemon that has watched the repository left it: running,
    its cursor on the head (so the head is not a push; the push below is)."""
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        if instigator_state(instance, SENSOR) is None:  # the UI's toggle, off and on, stores it
            for toggle in ("stop", "start"):
                dagster("sensor", toggle, SENSOR, env=dict(os.environ))
        state = instigator_state(instance, SENSOR)
        assert state is not None
        instance.update_instigator_state(
            state.with_data(SensorInstigatorData(cursor=sandbox.commit))
        )
    return sandbox.commit


def git_push(repo: Path, clone: Path) -> str:
    """A developer's push to the watched repository's main: a commit adding a migration to the
    backend. Returns its SHA."""
    git = ["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com"]
    # The watched repository has a work tree (stack.git_repo): a push updates it, as a bare
    # repository's branch would be.
    subprocess.run(
        [*git, "-C", str(repo), "config", "receive.denyCurrentBranch", "updateInstead"], check=True
    )
    subprocess.run([*git, "clone", "-q", str(repo), str(clone)], check=True)
    migration = clone / "apps/backend/prisma/migrations" / MIGRATION / "migration.sql"
    migration.parent.mkdir()
    migration.write_text('CREATE TABLE "PushMarker" ("id" SERIAL NOT NULL PRIMARY KEY);\n')
    subprocess.run([*git, "-C", str(clone), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(clone), "commit", "-qm", "backend: push marker"], check=True)
    subprocess.run([*git, "-C", str(clone), "push", "-q", "origin", "main"], check=True)
    head = subprocess.run(
        [*git, "-C", str(clone), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return head.stdout.strip()


def test_a_push_makes_the_daemons_sensor_deploy_it_through_the_run_launcher(
    sandbox: Sandbox,
    seen_head: str,
    control_plane: ControlPlane,
    daemon: dict[str, str],
    tmp_path: Path,
) -> None:
    env = sandbox.env
    deadline = time.monotonic() + TIMEOUT_S
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        sensor_ticked(instance, SENSOR, deadline)  # it has looked at the head: nothing new
        sha = git_push(Path(env["SAGE_OPS_REPO"]), tmp_path / "clone")
        assert sha != seen_head
        run_id = queued_run(instance, DEPLOY_BACKEND, deadline, {COMMIT_TAG: sha})
        family = env["SAGE_OPS_RUN_TASK_DEFINITION"]
        task = fargate_run(daemon["cluster"], family, run_id, grants(sandbox), deadline)
        assert task.exit_code == 0, task.stopped_reason + task.output + task.errors[-3000:]
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS, task.errors[-3000:]
        assert run.tags["dagster/sensor_name"] == SENSOR and run.tags["ecs/task_arn"]
        materialized = [
            e.asset_materialization.asset_key.to_user_string()
            for e in instance.all_logs(run_id)
            if e.asset_materialization
        ]
    # Built once, through CodeBuild, from the pushed commit's source.
    [start] = control_plane.starts
    assert start["projectName"] == env["SAGE_OPS_CODEBUILD_PROJECT"]
    assert start["sourceLocationOverride"].endswith(f"/builds/{sha}.zip")
    # Staging first, then production, each migrated before its rollout.
    order = [name for name in materialized if name.endswith(("_schema", "_deployment"))]
    assert order == [
        "staging_schema",
        "staging_deployment",
        "production_schema",
        "production_deployment",
    ], materialized
    [image] = boto3.client("ecr").describe_images(
        repositoryName=env["SAGE_OPS_IMAGE_REPOSITORY"], imageIds=[{"imageTag": sha}]
    )["imageDetails"]
    reference = (
        f"{env['SAGE_OPS_REGISTRY']}/{env['SAGE_OPS_IMAGE_REPOSITORY']}@{image['imageDigest']}"
    )
    committed = Path(env["SAGE_OPS_REPO"]) / "apps/backend/prisma/migrations"
    migrations = sorted(path.name for path in committed.iterdir() if path.is_dir())
    assert MIGRATION in migrations
    ecs = boto3.client("ecs")
    for environment in stack.ENVIRONMENTS:
        database = postgres.PgTarget.from_url(env[f"{environment.upper()}_DATABASE_URL"])
        with postgres.connect(database) as conn:
            assert [r.name for r in bookkeeping.read_rows(conn) if r.applied] == migrations
        target = parse_target(env[f"SAGE_OPS_{environment.upper()}_TARGET"])
        [service] = ecs.describe_services(cluster=target.cluster, services=[target.service])[
            "services"
        ]
        definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
        assert definition["taskDefinition"]["revision"] == 2  # a new revision...
        [container] = definition["taskDefinition"]["containerDefinitions"]
        assert container["image"] == reference  # ...of the pushed commit's image
