"""A run through the production path: the real dagster-daemon with infra/dagster/dagster.yaml
(Postgres storage on the machine's server, QueuedRunCoordinator, EcsRunLauncher against moto),
launching Terraform's run task definition; the Fargate stand-in (fargate.py) starts each task
RunTask created, with the launcher's command override, the definition's environment and the
secrets the execution role may read, and reports the task's end through DescribeTasks, where
the daemon's run monitoring reads it. The run's events are read back from the Postgres storage.

The daemon, its task and the stand-in's start of a run's task: daemon.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.scheduler.instigation import ScheduleInstigatorData

from sage_ops.lineage.tags import SCHEDULED_DAY_TAG
from tests.aws_sandbox import stack
from tests.aws_sandbox.conftest import Sandbox
from tests.aws_sandbox.daemon import (
    BIN,
    DEFINITIONS,
    TIMEOUT_S,
    dagster,
    event_types,
    fargate_run,
    finished,
    instigator_state,
    queued_run,
    sensor_ticked,
)
from tests.aws_sandbox.test_run_task import grants
from tests.incidents import seed_alarms as seed

SCHEDULE = "nightly_backup_schedule"


@pytest.fixture(scope="module", autouse=True)
def no_push_watch(sandbox_stack: Sandbox) -> None:
    """git_push_sensor off (the UI's toggle), so that the sandbox repository's head is not a push:
    its deploy_backend run, whose task these tests leave alone, would hold the default pool's one
    slot and keep the runs under test queued. (A push is test_daemon_deploy.py's.)"""
    dagster("sensor", "stop", "git_push_sensor", env=dict(os.environ) | sandbox_stack.env)


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
        state = instigator_state(instance, SCHEDULE)
        if state is None:  # no daemon has stored it yet: the UI's toggle, off and on, does
            for toggle in ("stop", "start"):
                dagster("schedule", toggle, SCHEDULE, env=dict(os.environ))
            state = instigator_state(instance, SCHEDULE)
        assert state is not None and isinstance(state.instigator_data, ScheduleInstigatorData)
        cron = state.instigator_data.cron_schedule
        at = before.timestamp()
        instance.update_instigator_state(state.with_data(ScheduleInstigatorData(cron, at, at)))
    return before


def test_nightly_backup_schedule_fires_in_the_daemon_and_its_run_task_backs_up(
    sandbox: Sandbox, night_before: datetime, daemon: dict[str, str]
) -> None:
    """The daemon's scheduler evaluates the real 03:00 tick; the run it requests is queued by the
    QueuedRunCoordinator, launched by EcsRunLauncher, and backs up to S3 (KMS) in its task."""
    day = (night_before + timedelta(seconds=10)).date().isoformat()
    family = sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
    deadline = time.monotonic() + TIMEOUT_S
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        run_id = queued_run(instance, "nightly_backup", deadline, {SCHEDULED_DAY_TAG: day})
        task = fargate_run(daemon["cluster"], family, run_id, grants(sandbox), deadline)
        assert task.exit_code == 0, task.stopped_reason + task.output[-3000:]
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/schedule_name"] == SCHEDULE
        events = set(event_types(instance, run_id))
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
        run_id = queued_run(instance, "nightly_backup", deadline)
        task = fargate_run(daemon["cluster"], family, run_id, grants(sandbox), deadline)
        assert task.exit_code == 0, task.stopped_reason + task.output + task.errors
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS, task.errors[-3000:]
        assert run.tags["ecs/task_arn"].split("/")[1] == daemon["cluster"].split("/")[1]
        events = set(event_types(instance, run_id))
    assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_SUCCESS"} <= events
    assert "ASSET_MATERIALIZATION" in events and "ASSET_CHECK_EVALUATION" in events


def test_an_alarm_makes_the_daemons_sensor_launch_triage_which_publishes_to_sns(
    sandbox: Sandbox, daemon: dict[str, str]
) -> None:
    sqs = boto3.client("sqs")
    queue = stack.sns_inbox(sandbox.env["SAGE_OPS_SNS_TOPIC_ARN"])
    deadline = time.monotonic() + TIMEOUT_S
    with DagsterInstance.from_config(sandbox.env["DAGSTER_HOME"]) as instance:
        sensor_ticked(instance, "alarm_sensor", deadline)  # it has seen the alarms in OK
        boto3.client("cloudwatch").set_alarm_state(
            AlarmName=seed.RDS_CONNECTIONS, StateValue="ALARM", StateReason="Threshold Crossed"
        )
        run_id = queued_run(instance, "incident_triage", deadline)
        family = sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
        task = fargate_run(daemon["cluster"], family, run_id, grants(sandbox), deadline)
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
        run_id = queued_run(instance, "nightly_backup", deadline)

        def started() -> bool:
            run = instance.get_run_by_id(run_id)
            return run is not None and run.status == DagsterRunStatus.STARTED

        task = fargate_run(daemon["cluster"], family, run_id, grants(sandbox), deadline, started)
        assert task.exit_code == 137, task.output[-3000:]
        run = finished(instance, run_id, deadline)
        assert run.status == DagsterRunStatus.FAILURE
        [failure] = [
            e.dagster_event.message or ""
            for e in instance.all_logs(run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
        ]
    assert "Container 'run' failed - exit code 137" in failure, failure
    assert "Stop reason: Essential container in task exited" in failure, failure
