"""Docker swarm-mode services as a deploy target: `swarm://<service>[?options]`.

This is the local stand-in for ECS with the same failure semantics. Every rollout is start-first
(a new task must be healthy before an old one stops), health-gated (a task with a HEALTHCHECK only
counts as running once healthy) and rolls back automatically when a new task fails.

`docker service update` exits 0 and prints "converged" even after swarm rolled the update back, so
the outcome is read only from the service itself: success means `UpdateStatus.State == completed`
for THIS update AND every running task runs the new digest. `rollback_completed` and the paused
states raise DeployRolledBack; no final state before the wall-clock deadline raises DeployTimeout.

Options (query string): `replicas` (for a new service, default 1), `monitor` (how long a new task
must stay up to count, default 5s), `health_interval` (overrides the image's HEALTHCHECK interval,
e.g. 1s in tests), `health_url` (what the smoke check fetches inside a task's container, default
http://127.0.0.1:8080/health - the routing mesh's published ports do not answer on every host).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors
from docker.types import (
    ContainerSpec,
    Healthcheck,
    RollbackConfig,
    ServiceMode,
    TaskTemplate,
    UpdateConfig,
)

from sage_ops.platforms.deployer import (
    Deployer,
    DeployError,
    DeployResult,
    DeployRolledBack,
    DeployTimeout,
    Log,
)
from sage_ops.platforms.docker_engine.engine import docker_client, run_container
from sage_ops.platforms.swarm.target import parse_target
from sage_ops.platforms.swarm.tasks import (
    ENDED_TASK_STATES,
    EXITED_TASK_STATES,
    HealthProbe,
    TaskView,
    TaskWatcher,
    converged,
    digest_of,
    short,
)

ROLLED_BACK = "rollback_completed"
PAUSED_STATES = frozenset({"paused", "rollback_paused"})
BUSY_STATES = frozenset({"updating", "rollback_started"})
CREATE_FAILURES_ALLOWED = 3  # a brand-new service whose tasks fail this often is removed
NS = 1_000_000_000
MANAGED_LABEL = "sage_ops.managed"


class SwarmDeployer(Deployer):
    """Deployer for one swarm service on the local Docker Engine (which must be a swarm manager)."""

    def __init__(self, url: str, *, client: docker.DockerClient | None = None, poll_s: float = 0.5):
        self.url = url
        self.target = parse_target(url)
        self.poll_s = poll_s
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        """Connect lazily, so building a deployer (e.g. in Definitions) never needs Docker."""
        if self._client is None:
            self._client = docker_client()
        return self._client

    # -- Deployer interface ----------------------------------------------------------------------

    def current_image(self) -> str | None:
        service = self._inspect()
        return _spec_image(service) if service else None

    def deploy(self, image: str, timeout_s: float, log: Log) -> DeployResult:
        """Create or update the service to `image` and wait for the outcome of this rollout."""
        if "@sha256:" not in image:
            raise DeployError(
                f"refusing to deploy {image!r}: use an immutable repo@sha256 reference"
            )
        started = time.monotonic()
        deadline = started + timeout_s
        service = self._inspect()
        if service is None:
            version = self._create_and_wait(image, deadline, log)
            previous = None
        else:
            previous = _spec_image(service)
            version = self._update_and_wait(service, image, deadline, log)
        seconds = round(time.monotonic() - started, 3)
        log(f"{self.url}: {short(image)} serving (service version {version}, {seconds:.1f} s)")
        return DeployResult(self.url, image, str(version), previous, seconds)

    def smoke_check(self, timeout_s: float) -> None:
        """Fetch the health URL inside every running task's container until all answer 200."""
        deadline = time.monotonic() + timeout_s
        while True:
            probes = self.probe_health()
            failed = [p for p in probes if not p.ok]
            if probes and not failed:
                return
            if time.monotonic() >= deadline:
                reasons = "; ".join(f"task {p.task_id[:12]}: {p.detail}" for p in failed)
                raise DeployError(
                    f"smoke check of {self.url} failed: {reasons or 'no running task'} "
                    f"({self.target.health_url} did not answer 200 within {timeout_s:g} s)"
                )
            time.sleep(1.0)

    def health_source(self) -> str:
        return "swarm healthcheck"

    def run_once(
        self,
        command: Sequence[str],
        timeout_s: float,
        log: Log,
        *,
        release: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """A container of `release` (default: the image the service runs) on this Engine."""
        image = release or self.current_image()
        if image is None:
            raise DeployError(f"{self.url}: no service, so no image to run {command[0]!r} in")
        run_container(image, command, timeout_s, log, environment, self.client)

    # -- what else operators and tests need ------------------------------------------------------

    def tasks(self) -> list[TaskView]:
        try:
            tasks = self.client.api.tasks(filters={"service": self.target.service})
        except docker.errors.APIError as exc:
            raise DeployError(f"cannot list tasks of {self.url}: {exc.explanation}") from exc
        return [TaskView.from_api(task) for task in tasks]

    def serving_images(self) -> list[str]:
        """The image of each running task: what actually answers traffic right now."""
        return sorted(task.image for task in self.tasks() if task.running)

    def probe_health(self) -> list[HealthProbe]:
        return [self._probe(task) for task in self.tasks() if task.running]

    def remove(self) -> None:
        """Delete the service (tests, demo teardown); a missing service is fine."""
        try:
            self.client.api.remove_service(self.target.service)
        except docker.errors.NotFound:
            return

    # -- create ----------------------------------------------------------------------------------

    def _create_and_wait(self, image: str, deadline: float, log: Log) -> int:
        """First deploy: create the service; there is nothing to roll back to, so fail = remove."""
        log(
            f"{self.url}: creating service with {self.target.replicas} replica(s) of {short(image)}"
        )
        try:
            self.client.api.create_service(
                TaskTemplate(container_spec=self._container_spec(image)),
                name=self.target.service,
                labels={MANAGED_LABEL: "true"},
                mode=ServiceMode("replicated", replicas=self.target.replicas),
                update_config=self._update_config(),
                rollback_config=self._rollback_config(),
            )
        except docker.errors.APIError as exc:
            raise DeployError(
                f"cannot create swarm service for {self.url}: {exc.explanation}"
            ) from exc
        watcher = TaskWatcher(log)
        while True:
            service = self._require()
            tasks = self.tasks()
            watcher.update(tasks)
            if converged(tasks, image, _replicas(service)):
                return _version(service)
            self._give_up_if_crashing(tasks, image)
            self._wait(deadline, "creating", image)

    def _give_up_if_crashing(self, tasks: list[TaskView], image: str) -> None:
        failures = [t for t in tasks if t.state in EXITED_TASK_STATES and t.image == image]
        if len(failures) < CREATE_FAILURES_ALLOWED:
            return
        reason = self._failure_reason(tasks, image, "")
        self.remove()
        raise DeployError(
            f"new service {self.url} never became healthy: {len(failures)} tasks of "
            f"{short(image)} ended ({reason}); the service was removed - check the image's logs "
            "and HEALTHCHECK"
        )

    # -- update ----------------------------------------------------------------------------------

    def _update_and_wait(
        self, service: Mapping[str, Any], image: str, deadline: float, log: Log
    ) -> int:
        previous = _spec_image(service)
        status = service.get("UpdateStatus") or {}
        if status.get("State") in BUSY_STATES:
            raise DeployError(
                f"{self.url} is already rolling out ({status.get('State')}): wait for it to finish"
            )
        if digest_of(previous) == digest_of(image) and converged(
            self.tasks(), image, _replicas(service)
        ):
            log(f"{self.url}: already serving {short(image)}; nothing to roll out")
            return _version(service)
        log(f"{self.url}: updating {short(previous)} -> {short(image)} (start-first, health-gated)")
        self._update(service, image)
        return self._follow_update(status.get("StartedAt"), image, previous, deadline, log)

    def _update(self, service: Mapping[str, Any], image: str) -> None:
        """Change only the image (and our rollout policy); the same digest again forces new tasks,
        since swarm ignores an update that changes nothing and we would wait for it in vain."""
        container: dict[str, Any] = {"Image": image}
        if self.target.health_interval_s is not None:
            container["Healthcheck"] = self._healthcheck()
        template: dict[str, Any] = {"ContainerSpec": container}
        if digest_of(_spec_image(service)) == digest_of(image):
            current = service["Spec"]["TaskTemplate"].get("ForceUpdate") or 0
            template["ForceUpdate"] = int(current) + 1
        try:
            self.client.api.update_service(
                self.target.service,
                _version(service),
                task_template=template,
                update_config=self._update_config(),
                rollback_config=self._rollback_config(),
                fetch_current_spec=True,
            )
        except docker.errors.APIError as exc:
            raise DeployError(f"swarm refused the update of {self.url}: {exc.explanation}") from exc

    def _follow_update(
        self, before: str | None, image: str, previous: str, deadline: float, log: Log
    ) -> int:
        """Poll until THIS update (a new UpdateStatus.StartedAt) succeeds, rolls back or times out.

        A rollback counts once the previous image runs again, so the message can say it serves.
        """
        watcher = TaskWatcher(log)
        messages: list[str] = []
        while True:
            service = self._require()
            status = service.get("UpdateStatus") or {}
            tasks = self.tasks()
            watcher.update(tasks)
            state = status.get("State") if status.get("StartedAt") != before else None
            message = str(status.get("Message") or "")
            if state and (not messages or messages[-1] != f"{state}: {message}"):
                messages.append(f"{state}: {message}")
                log(f"{self.url}: update {state}: {message}")
            if state == "completed" and converged(tasks, image, _replicas(service)):
                return _version(service)
            if state in PAUSED_STATES or (
                state == ROLLED_BACK
                and (converged(tasks, previous, _replicas(service)) or _past(deadline))
            ):
                raise self._rolled_back(state, image, previous, tasks, messages)
            self._wait(deadline, state or "pending", image)

    def _rolled_back(
        self, state: str, image: str, previous: str, tasks: list[TaskView], messages: list[str]
    ) -> DeployRolledBack:
        why = self._failure_reason(tasks, image, " ".join(messages))
        running_prev = sum(
            1 for t in tasks if t.running and digest_of(t.image) == digest_of(previous)
        )
        if state == ROLLED_BACK:
            outcome = (
                f"swarm rolled back and the previous image {short(previous)} keeps serving "
                f"({running_prev} task(s) running it)"
            )
        else:
            serving = sorted({short(t.image) for t in tasks if t.running}) or ["nothing"]
            outcome = (
                f"swarm {state.replace('_', ' ')} the rollout; serving now: {', '.join(serving)} - "
                f"check `docker service ps {self.target.service}`"
            )
        return DeployRolledBack(
            f"rollout of {short(image)} to {self.url} failed ({why}); {outcome}"
        )

    def _failure_reason(self, tasks: list[TaskView], image: str, messages: str) -> str:
        """Name the new task that failed and why: its error, else its container's health log."""
        ended = [t for t in tasks if t.image == image and t.state in ENDED_TASK_STATES]
        culprit = next((t for t in ended if t.id in messages), ended[-1] if ended else None)
        if culprit is None:
            return messages or "no reason given"
        reason = culprit.error or self._last_health(culprit.container_id) or culprit.state
        return f"new task {culprit.id[:12]}: {reason}"

    def _last_health(self, container_id: str | None) -> str | None:
        """`unhealthy: <last probe output>` while swarm still keeps the stopped container."""
        if not container_id:
            return None
        try:
            state = self.client.api.inspect_container(container_id).get("State") or {}
        except docker.errors.APIError:
            return None
        health = state.get("Health") or {}
        probes = health.get("Log") or []
        if not probes:
            return None
        output = str(probes[-1].get("Output") or "").strip() or f"exit {probes[-1].get('ExitCode')}"
        return f"{health.get('Status', 'health')}: {output}"

    # -- shared ----------------------------------------------------------------------------------

    def _wait(self, deadline: float, state: str, image: str) -> None:
        """Sleep one poll interval, or raise DeployTimeout once the wall-clock budget is spent."""
        if _past(deadline):
            raise DeployTimeout(
                f"rollout of {short(image)} to {self.url} still '{state}' at the deadline; swarm "
                "carries on by itself (and rolls back if new tasks fail) - watch "
                f"`docker service ps {self.target.service}`"
            )
        time.sleep(self.poll_s)

    def _inspect(self) -> dict[str, Any] | None:
        try:
            return dict(self.client.api.inspect_service(self.target.service))
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise DeployError(
                f"cannot inspect {self.url}: {exc.explanation} (is this Docker Engine a swarm "
                "manager? `docker swarm init`)"
            ) from exc

    def _require(self) -> dict[str, Any]:
        service = self._inspect()
        if service is None:
            raise DeployError(f"swarm service {self.target.service} disappeared during the rollout")
        return service

    def _container_spec(self, image: str) -> ContainerSpec:
        health = self._healthcheck() if self.target.health_interval_s is not None else None
        return ContainerSpec(image=image, healthcheck=health)

    def _healthcheck(self) -> Healthcheck:
        """Only the interval: test, timeout and retries stay the image's (Docker merges them)."""
        assert self.target.health_interval_s is not None
        return Healthcheck(interval=int(self.target.health_interval_s * NS))

    def _update_config(self) -> UpdateConfig:
        return UpdateConfig(
            parallelism=1,
            delay=0,
            failure_action="rollback",
            monitor=int(self.target.monitor_s * NS),
            max_failure_ratio=0,
            order="start-first",
        )

    def _rollback_config(self) -> RollbackConfig:
        return RollbackConfig(
            parallelism=0,
            delay=0,
            failure_action="pause",
            monitor=int(self.target.monitor_s * NS),
            max_failure_ratio=0,
            order="start-first",
        )

    def _probe(self, task: TaskView) -> HealthProbe:
        if not task.container_id:
            return HealthProbe(task.id, False, "task has no container yet")
        command = ["wget", "-S", "-q", "-O", "-", self.target.health_url]
        try:
            exec_id = self.client.api.exec_create(task.container_id, command)["Id"]
            stdout, stderr = self.client.api.exec_start(exec_id, demux=True)
            code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        except docker.errors.APIError as exc:
            return HealthProbe(task.id, False, f"cannot exec in its container: {exc.explanation}")
        body = (stdout or b"").decode(errors="replace").strip()
        headers = (stderr or b"").decode(errors="replace")
        if code == 0 and re.search(r"HTTP/1\.[01] 200", headers):
            return HealthProbe(task.id, True, body)
        reason = headers.strip().splitlines()[-1] if headers.strip() else f"exit code {code}"
        return HealthProbe(task.id, False, reason)


def _spec_image(service: Mapping[str, Any]) -> str:
    return str(service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])


def _replicas(service: Mapping[str, Any]) -> int:
    return int(((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1))


def _version(service: Mapping[str, Any]) -> int:
    return int(service["Version"]["Index"])


def _past(deadline: float) -> bool:
    return time.monotonic() >= deadline
