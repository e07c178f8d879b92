"""The production path's moving parts, shared by the daemon tests: the real dagster-daemon with
infra/dagster/dagster.yaml "in" an ECS task of its own on moto (EcsRunLauncher copies its subnets
and security groups, use_current_ecs_task_config, found through a task-metadata endpoint like the
agent's), the Fargate stand-in answering the launcher's RunTask for one run, and reads of the
runs, ticks and events the daemon leaves in the Postgres storage.
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
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from dagster import DagsterInstance, DagsterRun, RunsFilter
from dagster._core.scheduler.instigation import InstigatorState
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from tests.aws_sandbox import fargate, stack

BIN = Path(sys.executable).parent
TIMEOUT_S = 240
DEFINITIONS = "sage_ops.definitions"


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


@contextmanager
def running(dagster_home: str, workdir: Path) -> Iterator[dict[str, str]]:
    """dagster-daemon in its "task"; yields the environment of the daemon's container, with the
    task's cluster under "cluster". Runs its tasks left alone are canceled at the end."""
    cluster, task = _daemon_task(uuid.uuid4().hex[:8])
    _Metadata.task = {"Cluster": cluster, "TaskARN": task}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env["ECS_CONTAINER_METADATA_URI_V4"] = f"http://127.0.0.1:{server.server_port}/v4/daemon"
    log = (workdir / "daemon.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", DEFINITIONS],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield env | {"cluster": cluster, "log": str(workdir / "daemon.log")}
    finally:
        process.terminate()
        process.wait(timeout=30)
        server.shutdown()
        _end_the_night(dagster_home)


def _end_the_night(dagster_home: str) -> None:
    """Runs whose tasks this test left alone (a sensor's deploy, say) are canceled, so they do not
    hold the next test's concurrency slots (the default pool's limit is 1) in the shared storage."""
    with DagsterInstance.from_config(dagster_home) as instance:
        for run in instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES)):
            instance.report_run_canceled(run, "the sandbox test that launched it ended")


def dagster(*args: str, env: dict[str, str]) -> None:
    """The dagster CLI (the UI's toggles), on the instance `env` names."""
    subprocess.run(
        [str(BIN / "dagster"), *args, "-m", DEFINITIONS],
        env=env,
        capture_output=True,
        timeout=180,
        check=True,
    )


def fargate_run(
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
    raise AssertionError(f"no RunTask of {family} for run {run_id} in time")


def queued_run(
    instance: DagsterInstance, job: str, deadline: float, tags: dict[str, str] | None = None
) -> str:
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=RunsFilter(job_name=job, tags=tags or {}), limit=1)
        if runs:
            return runs[0].run_id
        time.sleep(1)
    raise AssertionError(f"no {job} run in the storage")


def finished(instance: DagsterInstance, run_id: str, deadline: float) -> DagsterRun:
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        time.sleep(2)
    raise AssertionError(f"run {run_id} not finished in time")


def instigator_state(instance: DagsterInstance, name: str) -> InstigatorState | None:
    return next((s for s in instance.all_instigator_state() if s.name == name), None)


def sensor_ticked(instance: DagsterInstance, name: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        state = instigator_state(instance, name)
        if state and instance.get_ticks(state.instigator_origin_id, state.selector_id):
            return
        time.sleep(2)
    raise AssertionError(f"{name} never ticked")


def event_types(instance: DagsterInstance, run_id: str) -> list[str]:
    """The run's Dagster events in the order the storage holds them."""
    return [e.dagster_event_type.value for e in instance.all_logs(run_id) if e.dagster_event_type]
