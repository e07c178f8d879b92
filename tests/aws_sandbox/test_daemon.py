"""A run through the production path: the real dagster-daemon with infra/dagster/dagster.yaml
(Postgres storage on the machine's server, QueuedRunCoordinator, EcsRunLauncher against moto),
launching Terraform's run task definition; the Fargate stand-in (fargate.py) starts each task
RunTask created, with the launcher's command override, the definition's environment and the
secrets the execution role may read, and reports the task's end through DescribeTasks, where
the daemon's run monitoring reads it. The run's events are read back from the Postgres storage.

The daemon runs "in" a task of its own on moto (the launcher copies its subnets and security
groups, use_current_ecs_task_config), found through a task-metadata endpoint like the agent's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.scheduler.instigation import InstigatorState, ScheduleInstigatorData
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from sage_ops.lineage.tags import SCHEDULED_DAY_TAG
from tests.aws_sandbox import fargate, stack
from tests.aws_sandbox.conftest import Sandbox
from tests.aws_sandbox.test_run_task import grants
from tests.incidents import seed_alarms as seed

BIN = Path(sys.executable).parent
TIMEOUT_S = 240
DEFINITIONS = "sage_ops.definitions"
SCHEDULE = "nightly_backup_schedule"


def _daemon_task(suffix: str) -> tuple[str, str]:
    """The daemon's own task on moto, placed in a private subnet: (cluster, task ARN)."""
    network = stack._private_network(f"ops-{suffix}")
    ecs = boto3.client("ecs")
    cluster = ecs.create_cluster(clusterName=f"sage-production-ops-{suffix}")["cluster"][
        "clusterArn"
    ]
    family = ecs.register_task_definition(
        family=f"sage-production-sage-ops-daemon-{suffix}",
        containerDefinitions=[{"name": "daemon", "image": "sage-ops", "memory": 512}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    [task] = ecs.run_task(
        cluster=cluster,
        taskDefinition=family,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": network["awsvpcConfiguration"]},
    )["tasks"]
    return cluster, str(task["taskArn"])


class _Metadata(BaseHTTPRequestHandler):
    task: dict[str, str] = {}

    def do_GET(self) -> None:
        body = json.dumps(self.task).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module", autouse=True)
def no_push_watch(sandbox_stack: Sandbox) -> None:
    """git_push_sensor off (the UI's toggle), so that the sandbox repository's head is not a push:
    its deploy_backend run, whose task these tests leave alone, would hold the default pool's one
    slot and keep the runs under test queued. (A push is test_deploy.py's.)"""
    subprocess.run(
        [str(BIN / "dagster"), "sensor", "stop", "git_push_sensor", "-m", DEFINITIONS],
        env=dict(os.environ) | sandbox_stack.env,
        capture_output=True,
        timeout=180,
        check=True,
    )


@pytest.fixture
def daemon(sandbox: Sandbox, tmp_path: Path) -> Iterator[dict[str, str]]:
    """dagster-daemon in its "task"; yields the environment of the daemon's container."""
    cluster, task = _daemon_task(uuid.uuid4().hex[:8])
    _Metadata.task = {"Cluster": cluster, "TaskARN": task}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env["ECS_CONTAINER_METADATA_URI_V4"] = f"http://127.0.0.1:{server.server_port}/v4/daemon"
    log = (tmp_path / "daemon.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", DEFINITIONS],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield env | {"cluster": cluster, "log": str(tmp_path / "daemon.log")}
    finally:
        process.terminate()
        process.wait(timeout=30)
        server.shutdown()
        _end_the_night(sandbox)


def _end_the_night(sandbox: Sandbox) -> None:
    """Runs whose tasks this test left alone (a sensor's deploy, say) are canceled, so they do not
    hold the next test's concurrency slots (the default pool's limit is 1) in the shared storage."""
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        for run in instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES)):
            instance.report_run_canceled(run, "the sandbox test that launched it ended")


def _fargate(
    cluster: str,
    family: str,
    run_id: str,
    given: fargate.Grants,
    deadline: float,
    kill_when: Callable[[], bool] | None = None,
) -> fargate.StoppedTask:
    """What Fargate does for the launcher's RunTask of run `run_id` (its command names it), its
    end reported to ECS; other runs' tasks (the daemon's sensors launch their own) are left
    alone."""
    ecs = boto3.client("ecs")
    while time.monotonic() < deadline:
        arns = ecs.list_tasks(cluster=cluster, family=family)["taskArns"]
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []:
            [override] = task["overrides"]["containerOverrides"]
            if run_id in json.dumps(override["command"]):
                return fargate.run_task(
                    task["taskDefinitionArn"],
                    given,
                    override["command"],
                    task_arn=task["taskArn"],
                    kill_when=kill_when,
                )
        time.sleep(2)
    raise AssertionError(f"no RunTask of {family} for run {run_id} in {TIMEOUT_S} s")


def _queued_run(
    instance: DagsterInstance, job: str, deadline: float, tags: dict[str, str] | None = None
) -> str:
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=RunsFilter(job_name=job, tags=tags or {}), limit=1)
        if runs:
            return runs[0].run_id
        time.sleep(1)
    raise AssertionError(f"no {job} run in the storage")


@pytest.fixture
def night_before(sandbox: Sandbox) -> datetime:
    """nightly_backup_schedule's state as a daemon that ran until 02:59:50 UTC (the last such
    moment) left it: the scheduler resumes from its last iteration, so when the daemon starts the
    schedule's own 03:00 tick is due. The schedule, its cron and its evaluation are untouched."""
    now = datetime.now(UTC)
    before = now.replace(hour=2, minute=59, second=50, microsecond=0)
    if before + timedelta(seconds=10) > now:
        before -= timedelta(days=1)
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        state = _schedule_state(instance, SCHEDULE)
        if state is None:  # no daemon has stored it yet: the UI's toggle, off and on, does
            for toggle in ("stop", "start"):
                subprocess.run(
                    [str(BIN / "dagster"), "schedule", toggle, SCHEDULE, "-m", DEFINITIONS],
                    env=dict(os.environ),
                    capture_output=True,
                    timeout=180,
                    check=True,
                )
            state = _schedule_state(instance, SCHEDULE)
        assert state is not None and isinstance(state.instigator_data, ScheduleInstigatorData)
        cron = state.instigator_data.cron_schedule
        at = before.timestamp()
        instance.update_instigator_state(state.with_data(ScheduleInstigatorData(cron, at, at)))
    return before


def _schedule_state(instance: DagsterInstance, name: str) -> InstigatorState | None:
    return next((s for s in instance.all_instigator_state() if s.name == name), None)


def test_nightly_backup_schedule_fires_in_the_daemon_and_its_run_task_backs_up(
    sandbox: Sandbox, night_before: datetime, daemon: dict[str, str]
) -> None:
    """The daemon's scheduler evaluates the real 03:00 tick; the run it requests is queued by the
    QueuedRunCoordinator, launched by EcsRunLauncher, and backs up to S3 (KMS) in its task."""
    day = (night_before + timedelta(seconds=10)).date().isoformat()
    family = sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
    deadline = time.monotonic() + TIMEOUT_S
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        run_id = _queued_run(instance, "nightly_backup", deadline, {SCHEDULED_DAY_TAG: day})
        task = _fargate(daemon["cluster"], family, run_id, grants(sandbox), deadline)
        assert task.exit_code == 0, task.stopped_reason + task.output[-3000:]
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/schedule_name"] == SCHEDULE
        events = {
            e.dagster_event_type.value for e in instance.all_logs(run_id) if e.is_dagster_event
        }
    assert {"PIPELINE_ENQUEUED", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"} <= events
    bucket, prefix = sandbox.env["SAGE_OPS_BACKUP_URL"].removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert keys and all(
        s3.head_object(Bucket=bucket, Key=k)["ServerSideEncryption"] == "aws:kms" for k in keys
    )


def _launch(daemon: dict[str, str], job: str) -> None:
    """The UI's Launch: the run is queued in the Postgres storage."""
    launched = subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-m", DEFINITIONS, "-j", job],
        env=daemon,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr


def test_a_launched_run_goes_through_the_daemon_and_ecs_run_launcher(
    sandbox: Sandbox, daemon: dict[str, str]
) -> None:
    _launch(daemon, "nightly_backup")
    family = sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
    deadline = time.monotonic() + TIMEOUT_S
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        run_id = _queued_run(instance, "nightly_backup", deadline)
        task = _fargate(daemon["cluster"], family, run_id, grants(sandbox), deadline)
        assert task.exit_code == 0, task.stopped_reason + task.output + task.errors
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS, task.errors[-3000:]
        assert run.tags["ecs/task_arn"].split("/")[1] == daemon["cluster"].split("/")[1]
        events = {
            e.dagster_event_type.value for e in instance.all_logs(run_id) if e.is_dagster_event
        }
    assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_SUCCESS"} <= events
    assert "ASSET_MATERIALIZATION" in events and "ASSET_CHECK_EVALUATION" in events


def test_an_alarm_makes_the_daemons_sensor_launch_triage_which_publishes_to_sns(
    sandbox: Sandbox, daemon: dict[str, str]
) -> None:
    sqs = boto3.client("sqs")
    queue = stack.sns_inbox(sandbox.env["SAGE_OPS_SNS_TOPIC_ARN"])
    deadline = time.monotonic() + TIMEOUT_S
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        _sensor_ticked(instance, "alarm_sensor", deadline)  # it has seen the alarms in OK
        boto3.client("cloudwatch").set_alarm_state(
            AlarmName=seed.RDS_CONNECTIONS, StateValue="ALARM", StateReason="Threshold Crossed"
        )
        run_id = _queued_run(instance, "incident_triage", deadline)
        family = sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
        task = _fargate(daemon["cluster"], family, run_id, grants(sandbox), deadline)
        assert task.exit_code == 0, task.stopped_reason + task.output + task.errors[-3000:]
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags["sage_ops/alarm"] == seed.RDS_CONNECTIONS
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    notes = [json.loads(m["Body"]) for m in messages]
    assert any(n["Message"].startswith(f"{seed.RDS_CONNECTIONS} in ALARM") for n in notes)


def test_a_run_task_killed_mid_run_is_seen_by_run_monitoring_and_the_run_fails(
    sandbox: Sandbox, daemon: dict[str, str]
) -> None:
    """The run worker dies with its task (nothing left to report the run's end): the daemon's run
    monitoring reads the stopped task through EcsRunLauncher.check_run_worker_health and fails
    the run, naming the exit code and ECS's stop reason."""
    _launch(daemon, "nightly_backup")
    family = sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
    deadline = time.monotonic() + TIMEOUT_S
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        run_id = _queued_run(instance, "nightly_backup", deadline)

        def started() -> bool:
            run = instance.get_run_by_id(run_id)
            return run is not None and run.status == DagsterRunStatus.STARTED

        task = _fargate(daemon["cluster"], family, run_id, grants(sandbox), deadline, started)
        assert task.exit_code == 137, task.output[-3000:]
        run = _finished(instance, run_id, deadline)
        assert run.status == DagsterRunStatus.FAILURE
        [failure] = [
            e.dagster_event.message or ""
            for e in instance.all_logs(run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
        ]
    assert "Container 'run' failed - exit code 137" in failure, failure
    assert "Stop reason: Essential container in task exited" in failure, failure


def _finished(instance: DagsterInstance, run_id: str, deadline: float) -> DagsterRun:
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        time.sleep(2)
    raise AssertionError(f"run {run_id} not finished in {TIMEOUT_S} s")


def _sensor_ticked(instance: DagsterInstance, name: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        states = [s for s in instance.all_instigator_state() if s.name == name]
        ticks = (
            instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id)
            if states
            else []
        )
        if ticks:
            return
        time.sleep(2)
    raise AssertionError(f"{name} never ticked")
