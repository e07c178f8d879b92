"""One-off ECS tasks through dagster-aws' Pipes ECS client, inside a real Dagster step.

ECS is a botocore Stubber: moto starts tasks but never stops them, so it cannot produce an exit
code (each test's queued answers are the states moto cannot produce). CloudWatch Logs is a moto
server holding the container's awslogs stream, read back into the run's log.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from dagster import OpExecutionContext, job, op

from sage_ops.platforms.deployer import DeployTimeout, OneOffFailed
from sage_ops.platforms.ecs.tasks import run_one_off_task
from tests.backups.s3 import REGION, moto_server

ACCOUNT = "123456789012"
CLUSTER = "sage-production"
TD = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/sage-production-backend:8"
TASK_ID = "0123456789abcdef"
TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{TASK_ID}"
MIGRATE = {
    "containerOverrides": [{"name": "api", "command": ["npx", "prisma", "migrate", "deploy"]}]
}
PRISMA_OUTPUT = ["Applying migration `20261101000000_init`", "All migrations have been applied."]


@pytest.fixture(autouse=True)
def _no_pipes_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pipes waits 10 s after a task for Pipes messages Prisma never writes; not in tests."""
    monkeypatch.setattr("dagster._core.pipes.utils.WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 0)


@pytest.fixture(scope="module")
def logs() -> Iterator[Any]:
    with moto_server() as server:
        yield boto3.session.Session().client(
            "logs",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def log_group(logs: Any) -> str:
    """The backend's awslogs group with the one-off task's stream, holding Prisma's output."""
    # moto's state is per process: no name another test's prefix lookup could match
    group = f"/ecs/one-off-{uuid.uuid4().hex[:6]}/backend"
    logs.create_log_group(logGroupName=group)
    stream = f"backend/api/{TASK_ID}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    later = int(time.time() * 1000) + 5_000  # after the Pipes session opens
    events = [{"timestamp": later + i, "message": m} for i, m in enumerate(PRISMA_OUTPUT)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    return group


@pytest.fixture
def ecs() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.session.Session().client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def task_definition(group: str) -> dict:
    awslogs = {"awslogs-group": group, "awslogs-stream-prefix": "backend"}
    return {
        "taskDefinition": {
            "taskDefinitionArn": TD,
            "containerDefinitions": [
                {"name": "api", "logConfiguration": {"logDriver": "awslogs", "options": awslogs}}
            ],
        }
    }


def task(status: str, **extra: Any) -> dict:
    containers = extra.pop("containers", [{"name": "api", "lastStatus": status}])
    found = {"taskArn": TASK_ARN, "clusterArn": f"cluster/{CLUSTER}", "lastStatus": status}
    return {"tasks": [{**found, "containers": containers, **extra}], "failures": []}


def stopped(exit_code: int | None, stop_code: str = "EssentialContainerExited", **extra) -> dict:
    container: dict[str, Any] = {"name": "api", "lastStatus": "STOPPED", "runtimeId": "r1"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    container.update(extra.pop("container", {}))
    return task("STOPPED", stopCode=stop_code, containers=[container], **extra)


def queue(stub: Stubber, group: str, polls: list[dict], *, final: bool = True) -> None:
    """What PipesECSClient asks ECS: the task definition, run_task, the waiter's polls, the end."""
    stub.add_response("describe_task_definition", task_definition(group), {"taskDefinition": TD})
    stub.add_response("run_task", task("PROVISIONING"), ANY_RUN_TASK)
    describe = {"cluster": CLUSTER, "tasks": [TASK_ARN]}
    for answer in polls + ([polls[-1]] if final else []):
        stub.add_response("describe_tasks", answer, describe)


ANY_RUN_TASK = {
    "cluster": CLUSTER,
    "taskDefinition": TD,
    "overrides": ANY,  # MIGRATE plus the Pipes bootstrap variables
    "count": 1,
    "startedBy": "sage-ops",
    "tags": ANY,  # the Dagster run's tags
    "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
}


def in_a_step(call: Callable[[OpExecutionContext, list[str]], Any]) -> tuple[Any, list[str]]:
    """Run `call` inside a real Dagster op; (its result or the exception raised, log lines)."""
    outcome: dict[str, Any] = {}
    lines: list[str] = []

    @op
    def one_off(context) -> None:  # unannotated: Dagster reads the bare name
        try:
            outcome["value"] = call(context, lines)
        except Exception as exc:
            outcome["value"] = exc

    @job
    def migrate() -> None:
        one_off()

    assert migrate.execute_in_process().success
    return outcome["value"], lines


def run(ecs_client: Any, logs: Any, timeout_s: float = 60) -> tuple[Any, list[str]]:
    network = {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}
    return in_a_step(
        lambda context, lines: run_one_off_task(
            CLUSTER,
            TD,
            MIGRATE,
            timeout_s,
            lines.append,
            run_args=network,
            ecs=ecs_client,
            logs=logs,
            poll_s=1,
        )
    )


def test_exit_0_streams_the_containers_log_into_the_run(ecs, logs, log_group):
    client, stub = ecs
    queue(stub, log_group, [task("RUNNING"), stopped(0)])
    codes, lines = run(client, logs)
    assert codes == {"api": 0}
    assert lines[0] == f"started one-off task of {TD} on cluster {CLUSTER!r}: {TASK_ARN}"
    assert PRISMA_OUTPUT[0] in lines and PRISMA_OUTPUT[1] in lines
    assert lines.index(PRISMA_OUTPUT[1]) < len(lines)  # read before the step went on


def test_exit_1_fails_naming_the_container(ecs, logs, log_group):
    client, stub = ecs
    queue(stub, log_group, [stopped(1)])
    failure, lines = run(client, logs)
    assert isinstance(failure, OneOffFailed)
    assert "container 'api' exited 1" in str(failure)
    assert PRISMA_OUTPUT[0] in lines  # what Prisma said is in the run, too


def test_a_task_that_never_started_fails_with_the_reason(ecs, logs, log_group):
    client, stub = ecs
    answer = stopped(
        None,
        stop_code="TaskFailedToStart",
        stoppedReason="CannotPullContainerError: pull image manifest has been retried 5 times",
        container={"reason": "CannotPullContainerError: ref not found"},
    )
    queue(stub, log_group, [answer])
    failure, _ = run(client, logs)
    assert isinstance(failure, OneOffFailed)
    message = str(failure)
    assert "TaskFailedToStart" in message and "container 'api' has no exit code" in message
    assert "CannotPullContainerError: ref not found" in message


def test_refused_by_run_task(ecs, logs, log_group):
    client, stub = ecs
    stub.add_response(
        "describe_task_definition", task_definition(log_group), {"taskDefinition": TD}
    )
    refusal = {"tasks": [], "failures": [{"arn": "arn:cluster", "reason": "MISSING"}]}
    stub.add_response("run_task", refusal, ANY_RUN_TASK)
    failure, _ = run(client, logs)
    assert isinstance(failure, OneOffFailed)
    assert "did not start: arn:cluster MISSING" in str(failure)


def test_timeout_leaves_the_task_running_and_names_it(ecs, logs, log_group):
    # Stubber fails any call not queued here, so no stop_task can have happened.
    client, stub = ecs
    queue(stub, log_group, [task("RUNNING")] * 2, final=False)
    failure, _ = run(client, logs, timeout_s=2)
    assert isinstance(failure, DeployTimeout)
    assert f"{TASK_ARN} still running after 2s; it was NOT stopped" in str(failure)


def test_outside_a_dagster_step_is_refused_saying_why(ecs, logs):
    with pytest.raises(OneOffFailed, match="inside a Dagster run's step"):
        run_one_off_task(CLUSTER, TD, MIGRATE, 5, lambda _: None, ecs=ecs, logs=logs)
