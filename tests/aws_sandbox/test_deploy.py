"""`deploy_backend` with the environment Terraform gives sage_ops, on the sandbox: a push is
built by CodeBuild, migrated on staging's and production's databases, rolled out to both ECS
services and recorded, as `sage-ops lineage` then tells.

moto serves every call: S3 (the source zip, the pre-migration backups), CodeBuild's start_build,
ECR (the digest by the SHA tag), CloudWatch Logs (the build's lines), ECS (task definitions,
update_service, the service's tasks) and ELBv2 (target health). What AWS does *between* those
calls - a build running, a deployment rolling out - moto does not, so `ControlPlane` plays it
on the moto server (control_plane.py). The databases are real PostgreSQL, the Dagster instance
the production dagster.yaml's. (test_daemon_deploy.py: the same chain started by the real
daemon's git_push_sensor, through EcsRunLauncher and the Fargate stand-in.)
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context

from sage_ops import postgres
from sage_ops.lineage.names import DEPLOY_BACKEND
from sage_ops.migrations import bookkeeping
from sage_ops.platforms.targets import open_deployer
from tests.aws_sandbox import stack
from tests.aws_sandbox.conftest import Sandbox
from tests.aws_sandbox.control_plane import ControlPlane
from tests.aws_sandbox.test_doctor import SAGE_OPS


def code_location() -> Definitions:
    """sage_ops.definitions as the run task loads it: every resource read from this
    environment (a fresh module, so an earlier import under another environment is no help)."""
    spec = importlib.util.find_spec("sage_ops.definitions")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


@pytest.fixture
def instance(sandbox: Sandbox) -> Iterator[DagsterInstance]:
    """The sandbox's instance: DAGSTER_HOME's production dagster.yaml."""
    with DagsterInstance.get() as instance:
        yield instance


def test_a_push_is_built_by_codebuild_migrated_rolled_out_on_ecs_and_recorded(
    sandbox: Sandbox, control_plane: ControlPlane, instance: DagsterInstance
) -> None:
    env, sha = sandbox.env, sandbox.commit
    defs = code_location()
    tick = defs.resolve_sensor_def("git_push_sensor")(
        build_sensor_context(instance=instance, resources=defs.resources)
    )
    assert isinstance(tick, SensorResult)
    for request in tick.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    [run] = tick.run_requests or []
    assert (run.job_name, run.partition_key) == (DEPLOY_BACKEND, sha)

    result = defs.resolve_job_def(DEPLOY_BACKEND).execute_in_process(
        partition_key=sha, instance=instance, tags=run.tags
    )

    assert result.success
    lines = [entry.user_message for entry in instance.all_logs(result.run_id)]
    s3 = boto3.client("s3")
    # The build: the commit's context zipped to the artifacts bucket, CodeBuild started on it,
    # seen running, then SUCCEEDED, its phases and log lines in the run.
    bucket, key = env["SAGE_OPS_BUILD_SOURCE_URL"].split("/")[2], f"builds/{sha}.zip"
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    [start] = control_plane.starts
    assert start["projectName"] == env["SAGE_OPS_CODEBUILD_PROJECT"]
    assert (start["sourceTypeOverride"], start["sourceLocationOverride"]) == (
        "S3",
        f"{bucket}/{key}",
    )
    [build] = control_plane.builds
    assert control_plane.running == control_plane.finished == {build}
    for phase in ("PRE_BUILD", "BUILD", "POST_BUILD"):
        assert any(line.startswith(f"phase {phase}: SUCCEEDED") for line in lines), phase
    # The digest: ECR's, by the SHA tag.
    [image] = boto3.client("ecr").describe_images(
        repositoryName=env["SAGE_OPS_IMAGE_REPOSITORY"], imageIds=[{"imageTag": sha}]
    )["imageDetails"]
    digest = image["imageDigest"]
    assert f"{sha}: digest: {digest}" in lines  # the build's own log line
    reference = f"{env['SAGE_OPS_REGISTRY']}/{env['SAGE_OPS_IMAGE_REPOSITORY']}@{digest}"
    [pushed] = result.asset_materializations_for_node("registry_image")
    assert pushed.metadata["image"].value == reference

    committed = Path(env["SAGE_OPS_REPO"]) / "apps" / "backend" / "prisma" / "migrations"
    migrations = sorted(path.name for path in committed.iterdir() if path.is_dir())
    started = {deployment["id"] for deployment in control_plane.deployments.values()}
    for environment in stack.ENVIRONMENTS:
        # Guarded migrations of the commit's own files, after a verified backup in the bucket.
        database = postgres.PgTarget.from_url(env[f"{environment.upper()}_DATABASE_URL"])
        with postgres.connect(database) as conn:
            assert [r.name for r in bookkeeping.read_rows(conn) if r.applied] == migrations
        [schema] = result.asset_materializations_for_node(f"{environment}_schema")
        backup = str(schema.metadata["pre_migration_backup"].value)
        assert backup.startswith(env["SAGE_OPS_BACKUP_URL"])
        s3.head_object(Bucket=bucket, Key=backup.split("/", 3)[3])
        # The rollout: the digest on a new revision, the deployment update_service started
        # judged COMPLETED with its new task healthy in the service's target group.
        target = env[f"SAGE_OPS_{environment.upper()}_TARGET"]
        assert open_deployer(target).current_image() == reference
        [deployed] = result.asset_materializations_for_node(f"{environment}_deployment")
        assert deployed.metadata["image"].value == reference
        verdict = re.compile(
            rf"{re.escape(target)}: deployment (\S+) COMPLETED, running 1/1; "
            rf"1 new task\(s\) healthy in sage-{environment}-"
        )
        [rollout] = [found[1] for line in lines if (found := verdict.match(line))]
        assert rollout in started
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"image_policy": True, "staging_healthy": True, "production_healthy": True}
    [production] = result.asset_materializations_for_node("production_deployment")
    assert production.metadata["staging_run"].value == result.run_id  # staging's proof

    # The record, as the operator asks for it, from the sandbox's DAGSTER_HOME.
    answer = subprocess.run(
        [SAGE_OPS, "lineage", "what-is-deployed", "production", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    recorded = json.loads(answer.stdout)
    assert (recorded["commit"], recorded["image"]) == (sha, reference)
    assert recorded["migrations"] == migrations and recorded["run_id"] == result.run_id
