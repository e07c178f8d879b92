"""One-off ECS tasks (the prisma runner's migrations on ECS) through dagster-aws' Pipes ECS client.

`PipesECSClient` starts the task, tags it with the run, follows it with ECS's `tasks_stopped`
waiter, stops it if the run is terminated, and finds each container's awslogs stream. sage_ops
adds what the run needs on top: every log line goes to the run's own log (the caller's `log`,
e.g. `context.log.info`) while the task runs, and the last ones before the step goes on; the
end is judged by
`exit_codes` (a non-zero or missing exit code, or an abnormal stop, fails naming the
container and the reason); and the wall-clock limit leaves the task running and names it, since
stopping a migration midway is an operator's decision.

The task's command does not need to speak the Pipes protocol: Prisma does not, and the session
then simply carries no messages.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError
from dagster import DagsterInvariantViolationError, OpExecutionContext, PipesLogReader
from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesECSClient
from dagster_aws.pipes.clients.utils import WaiterConfig
from dagster_aws.pipes.message_readers import PipesCloudWatchLogReader

from sage_ops.platforms import aws
from sage_ops.platforms.deployer import DeployTimeout, Log, OneOffFailed

POLL_LOGS_S = 2.0
FINAL_READ_TIMEOUT_S = 30.0
NORMAL_STOP = "EssentialContainerExited"  # a one-off task whose main container finished


def run_one_off_task(
    cluster: str,
    task_definition: str,
    overrides: Mapping[str, Any] | None,
    timeout_s: float,
    log: Log,
    *,
    run_args: Mapping[str, Any] | None = None,  # placement, e.g. EcsDeployer.one_off_run_args()
    ecs: Any = None,
    logs: Any = None,
    poll_s: float = 6.0,
    context: OpExecutionContext | None = None,  # default: the step that is running now
) -> dict[str, int]:
    """Run one task to its end inside the current Dagster step; container name -> exit code.

    Raises OneOffFailed unless every container exited 0 after a normal stop, DeployTimeout
    (the task left running, named) after `timeout_s`.
    """
    where = f"one-off task of {task_definition} on cluster {cluster!r}"
    client = _Client(_Ecs(ecs or aws.client("ecs"), where), logs or aws.client("logs"), where, log)
    params = {
        **dict(run_args or {}),  # networkConfiguration, launchType, ...
        "cluster": cluster,
        "taskDefinition": task_definition,
        "overrides": dict(overrides or {}),
        "count": 1,
        "startedBy": "sage-ops",
    }
    delay = max(1, round(poll_s))
    client.run(
        context=context or _running_step(where),
        run_task_params=params,
        waiter_config=WaiterConfig(Delay=delay, MaxAttempts=max(1, math.ceil(timeout_s / delay))),
    )
    return client.codes


def _running_step(where: str) -> OpExecutionContext:
    """The Dagster step this task belongs to: Pipes tags the task with its run and stops it when
    the run is terminated, so a one-off ECS task only runs from inside a run's step."""
    try:
        return OpExecutionContext.get()
    except DagsterInvariantViolationError:
        raise OneOffFailed(
            f"{where}: ECS one-off tasks run inside a Dagster run's step (dagster-aws Pipes); "
            "launch the job that needs it, e.g. migrate_database, instead"
        ) from None


class _Client(PipesECSClient):
    """PipesECSClient with sage_ops' verdict on how the task ended."""

    def __init__(self, ecs: Any, logs: Any, where: str, log: Log) -> None:
        super().__init__(client=ecs, message_reader=_RunLogReader(logs, log))
        self.where = where
        self.codes: dict[str, int] = {}
        self._log = log

    def _wait_for_completion(
        self, start_response: Any, cluster: str | None = None, waiter_config: Any = None
    ) -> Any:
        task_arn = start_response["tasks"][0]["taskArn"]
        self._log(f"started {self.where}: {task_arn}")
        try:
            response = super()._wait_for_completion(start_response, cluster, waiter_config)
        except WaiterError as exc:
            if "Max attempts exceeded" not in str(exc):
                raise OneOffFailed(f"{self.where} ({task_arn}): {exc}") from None
            seconds = waiter_config["Delay"] * waiter_config["MaxAttempts"]
            raise DeployTimeout(
                f"task {task_arn} still running after {seconds:.0f}s; it was NOT stopped: check "
                f"it, or `aws ecs stop-task --cluster {cluster} --task {task_arn}`"
            ) from None
        # Before PipesECSClient's own check, whose message names runtime ids, not containers.
        self.codes = exit_codes(response["tasks"][0], self.where)
        self._log(f"{self.where} ({task_arn}) exited 0")
        return response


class _Ecs:
    """The ECS client; a task that did not start fails naming why (PipesECSClient would only
    index an empty task list)."""

    def __init__(self, client: Any, where: str) -> None:
        self._client = client
        self._where = where

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def run_task(self, **params: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self._client.run_task(**params)
        except (ClientError, BotoCoreError) as exc:
            problem = aws.error_text(exc)
            raise OneOffFailed(f"{self._where}: ECS run_task failed: {problem}") from None
        if answer.get("failures") or not answer.get("tasks"):
            failures = [
                f"{f.get('arn', '')} {f.get('reason', '')}".strip()
                for f in answer.get("failures", [])
            ]
            reason = "; ".join(failures) or "no task"
            raise OneOffFailed(f"{self._where} did not start: {reason}")
        return answer


class _RunLogReader(PipesCloudWatchMessageReader):
    """Pipes' CloudWatch reader, tailing each container's stream with `_StreamTail` instead."""

    def __init__(self, logs: Any, log: Log) -> None:
        super().__init__(client=logs)
        self._log = log

    def add_log_reader(self, log_reader: PipesLogReader) -> None:
        if isinstance(log_reader, PipesCloudWatchLogReader):
            log_reader = _StreamTail(
                self.client,
                str(log_reader.log_group),
                str(log_reader.log_stream),
                log_reader.start_time or 0,
                self._log,
            )
        super().add_log_reader(log_reader)


class _StreamTail(PipesLogReader):
    """One container's awslogs stream into the run's log while the task runs, read once more
    after it stopped, then done. (dagster-aws' own reader asks CloudWatch again without pause
    once a stream goes quiet, and never ends.)"""

    def __init__(self, logs: Any, group: str, stream: str, start_ms: int, log: Log) -> None:
        self._logs, self._group, self._stream = logs, group, stream
        self._start_ms = start_ms
        self._log = log
        self._thread: threading.Thread | None = None

    def target_is_readable(self, params: Mapping[str, Any]) -> bool:
        try:
            found = self._logs.describe_log_streams(
                logGroupName=self._group, logStreamNamePrefix=self._stream
            )
        except self._logs.exceptions.ResourceNotFoundException:
            return False
        return bool(found.get("logStreams"))

    def start(self, params: Mapping[str, Any], is_session_closed: threading.Event) -> None:
        self._thread = threading.Thread(target=self._tail, args=(is_session_closed,), daemon=True)
        self._thread.start()

    def _tail(self, closed: threading.Event) -> None:
        token = None
        while True:
            last_round = closed.is_set()  # the task has stopped: what follows is all there is
            token = self._read(token)
            if last_round:
                return
            closed.wait(POLL_LOGS_S)

    def _read(self, token: str | None) -> str | None:
        """Every event after `token`; returns the token to continue from."""
        while True:
            params: dict[str, Any] = {"logGroupName": self._group, "logStreamName": self._stream}
            params |= {"nextToken": token} if token else {"startTime": self._start_ms}
            answer = self._logs.get_log_events(startFromHead=True, **params)
            for event in answer.get("events", []):
                for line in str(event.get("message", "")).splitlines():
                    self._log(line)
            if answer.get("nextForwardToken") in (None, token):
                return token
            token = answer["nextForwardToken"]

    def stop(self) -> None:
        """Called when the Pipes session ends: wait for the last read to reach the run's log."""
        if self._thread is not None:
            self._thread.join(timeout=FINAL_READ_TIMEOUT_S)

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def exit_codes(task: Mapping[str, Any], where: str) -> dict[str, int]:
    """Exit codes of a STOPPED task; raise naming each container that did not exit 0."""
    problems = []
    stop_code = task.get("stopCode")
    if stop_code and stop_code != NORMAL_STOP:
        problems.append(f"task stopped with {stop_code}: {task.get('stoppedReason', '')}".rstrip())
    codes: dict[str, int] = {}
    for container in task.get("containers", []):
        name, code = container.get("name", "?"), container.get("exitCode")
        reason = container.get("reason") or ""
        if code is None:
            problems.append(f"container {name!r} has no exit code: {reason or 'it never ran'}")
        elif code != 0:
            problems.append(f"container {name!r} exited {code}" + (f": {reason}" if reason else ""))
        else:
            codes[name] = code
    if not task.get("containers"):
        problems.append("the task lists no containers")
    if problems:
        raise OneOffFailed(f"{where} ({task.get('taskArn', '')}) failed: {'; '.join(problems)}")
    return codes
