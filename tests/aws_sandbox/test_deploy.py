"""`deploy_backend` with the environment Terraform gives sage_ops, on the sandbox: a push is
built by CodeBuild, migrated on staging's and production's databases, rolled out to both ECS
services and recorded, as `sage-ops lineage` then tells.

moto serves every call: S3 (the source zip, the pre-migration backups), CodeBuild's start_build,
ECR (the digest by the SHA tag), CloudWatch Logs (the build's lines), ECS (task definitions,
update_service, the service's tasks) and ELBv2 (target health). What AWS does *between* those
calls - a build running, a deployment rolling out - moto does not, so `ControlPlane` plays it,
hooked onto every boto3 client this process makes: each hook amends moto's own answer at the
time of the call, from moto's state, and its comment names the gap. The databases are real
PostgreSQL, the Dagster instance the production dagster.yaml's.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context

from sage_ops import postgres
from sage_ops.lineage.names import DEPLOY_BACKEND
from sage_ops.migrations import bookkeeping
from sage_ops.platforms.targets import open_deployer
from tests.aws_sandbox import stack
from tests.aws_sandbox.conftest import Sandbox
from tests.aws_sandbox.test_doctor import SAGE_OPS
from tests.platforms.test_codebuild import play_push_on_start


@dataclass
class ControlPlane:
    """The part of CodeBuild and ECS that works between API calls, which moto does not run."""

    repository: str
    starts: list[dict[str, Any]] = field(default_factory=list)  # start_build's parameters
    builds: list[str] = field(default_factory=list)  # the ids CodeBuild gave them
    running: set[str] = field(default_factory=set)  # builds already seen running
    finished: set[str] = field(default_factory=set)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # service ARN -> ours

    def install(self, client: Any) -> None:
        events = client.meta.events
        service = client.meta.service_model.service_name
        if service == "codebuild":
            # moto runs no buildspec: the image the build pushes lands in moto's ECR at start.
            play_push_on_start(client, self.repository, self.starts)
            events.register("after-call.codebuild.StartBuild", self._build_started)
            events.register("after-call.codebuild.BatchGetBuilds", self._build_progress)
        elif service == "ecs":
            events.register("after-call.ecs.UpdateService", self._rollout_started)
            events.register("after-call.ecs.DescribeServices", self._rollouts_settled)

    # --- CodeBuild --------------------------------------------------------------------------

    def _build_started(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto writes no build log: the lines the build prints while it builds."""
        build = parsed["build"]
        self.builds.append(build["id"])
        group, stream = _log_location(build)
        boto3.client("logs").create_log_stream(logGroupName=group, logStreamName=stream)
        variables = {v["name"]: v["value"] for v in self.starts[-1]["environmentVariablesOverride"]}
        image = f"{variables['IMAGE_REPO_URI']}:{variables['IMAGE_TAG']}"
        _put_lines(
            group,
            stream,
            "[Container] Entering phase BUILD",
            f"[Container] Running command docker build --file {variables['DOCKERFILE']} "
            f"--tag {image} .",
            f"Successfully tagged {image}",
        )

    def _build_progress(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto completes a build at its first describe and names no log stream; a real build
        is seen running (phases up to BUILD, which has no status yet) before it succeeds, and
        prints its push lines on the way."""
        for build in parsed.get("builds", []):
            group, stream = _log_location(build)
            build["logs"] = {**build.get("logs", {}), "groupName": group, "streamName": stream}
            if build["id"] not in self.running:
                self.running.add(build["id"])
                kinds = [p["phaseType"] for p in build["phases"]]
                started = build["phases"][kinds.index("BUILD")]
                build["phases"] = [
                    *build["phases"][: kinds.index("BUILD")],
                    {"phaseType": "BUILD", "startTime": started["startTime"]},
                ]
                build.update(buildStatus="IN_PROGRESS", currentPhase="BUILD")
            elif build["id"] not in self.finished:
                self.finished.add(build["id"])
                _put_lines(group, stream, *self._push_lines())

    def _push_lines(self) -> list[str]:
        variables = {v["name"]: v["value"] for v in self.starts[-1]["environmentVariablesOverride"]}
        [image] = boto3.client("ecr").describe_images(
            repositoryName=self.repository, imageIds=[{"imageTag": variables["IMAGE_TAG"]}]
        )["imageDetails"]
        return [
            f"[Container] Running command docker push {variables['IMAGE_REPO_URI']}:"
            f"{variables['IMAGE_TAG']}",
            f"{variables['IMAGE_TAG']}: digest: {image['imageDigest']}",
            "[Container] Phase complete: POST_BUILD State: SUCCEEDED",
        ]

    # --- ECS --------------------------------------------------------------------------------

    def _rollout_started(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto records the new revision but starts no deployment (it keeps its one deployment,
        on the old revision) and launches no task: ECS starts a PRIMARY deployment of the
        revision, runs its task, registers it in the target group and retires the old task."""
        service = parsed["service"]
        previous = self.deployments.get(service["serviceArn"], service["deployments"][0])
        ours = {
            **previous,
            "id": f"ecs-svc/{uuid.uuid4().int % 10**18}",
            "status": "PRIMARY",
            "taskDefinition": service["taskDefinition"],
            "rolloutState": "IN_PROGRESS",
            "runningCount": 0,
            "pendingCount": service["desiredCount"],
        }
        service["deployments"] = [ours, {**previous, "status": "ACTIVE"}]
        self.deployments[service["serviceArn"]] = ours
        _replace_tasks(service, ours["id"])

    def _rollouts_settled(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto's deployment never progresses (rolloutState as created, running 0): the service's
        tasks run (started above, and by stack.start_service_task), so its latest deployment is
        COMPLETED and the old one drained."""
        for service in parsed.get("services", []):
            latest = self.deployments.get(service["serviceArn"], service["deployments"][0])
            desired = service["desiredCount"]
            service["deployments"] = [
                {
                    **latest,
                    "taskDefinition": service["taskDefinition"],
                    "rolloutState": "COMPLETED",
                    "rolloutStateReason": f"ECS deployment {latest['id']} completed.",
                    "runningCount": desired,
                    "pendingCount": 0,
                }
            ]
            service.update(runningCount=desired, pendingCount=0)


def _log_location(build: dict[str, Any]) -> tuple[str, str]:
    """Where CodeBuild streams a build: the project's log group, the build id's UUID part."""
    project, _, run = build["id"].partition(":")
    [config] = boto3.client("codebuild").batch_get_projects(names=[project])["projects"]
    return config["logsConfig"]["cloudWatchLogs"]["groupName"], run


def _put_lines(group: str, stream: str, *lines: str) -> None:
    now = int(time.time() * 1000)
    boto3.client("logs").put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now, "message": line} for line in lines],
    )


def _replace_tasks(service: dict[str, Any], deployment: str) -> None:
    ecs, elbv2 = boto3.client("ecs"), boto3.client("elbv2")
    cluster = service["clusterArn"]
    old = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    stack.start_service_task(service, service["taskDefinition"], started_by=deployment)
    for task in ecs.describe_tasks(cluster=cluster, tasks=old)["tasks"] if old else []:
        ecs.stop_task(cluster=cluster, task=task["taskArn"], reason=f"replaced by {deployment}")
        for balancer in service["loadBalancers"]:
            elbv2.deregister_targets(
                TargetGroupArn=balancer["targetGroupArn"],
                Targets=[{"Id": stack.task_address(task), "Port": balancer["containerPort"]}],
            )


@pytest.fixture
def control_plane(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ControlPlane:
    """Every boto3 client made from here on (sage_ops makes its own) gets the hooks."""
    plane = ControlPlane(sandbox.env["SAGE_OPS_IMAGE_REPOSITORY"])
    create = boto3.session.Session.client

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = create(self, *args, **kwargs)
        plane.install(made)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    return plane


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
