"""ECS target: a task-definition revision with only the image changed; follow THAT deployment.

Why not the `services_stable` waiter: after a circuit-breaker rollback the service is stable again
on the OLD task definition and the waiter succeeds. Here success is only the deployment that our
`update_service` started reaching rolloutState COMPLETED; FAILED, vanishing, or another task
definition becoming primary is a failure, and the wall clock bounds the wait (REFERENCE.md, 5).

Target URL: `ecs://CLUSTER/SERVICE[?container=NAME&health=https://host/health]`. `container`
picks the container whose image is replaced (default: the only one, or the one named like the
service). `smoke_check` judges health from AWS itself (rolloutState and the new tasks' ALB target
health, see ecs_health) and also GETs `health` when one is given (percent-encode any `&` in it);
`deploy` of a service behind an ALB also waits for that target health after COMPLETED.
"""

from __future__ import annotations

import copy
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.deploy.deployer import (
    Deployer,
    DeployError,
    DeployResult,
    DeployRolledBack,
    DeployTimeout,
    Log,
)
from sage_ops.deploy.ecs_health import Verdict, judge
from sage_ops.errors import ConfigError
from sage_ops.platforms import aws

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# Returned by DescribeTaskDefinition but refused (or meaningless) in RegisterTaskDefinition.
READ_ONLY_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)
DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
URL_OPTIONS = ("container", "health")
NORMAL_STOP = "EssentialContainerExited"  # a one-off task whose main container finished

COMPLETED, IN_PROGRESS, NOT_VISIBLE = "COMPLETED", "IN_PROGRESS", "NOT_VISIBLE"
ROLLED_BACK, FAILED, SUPERSEDED = "ROLLED_BACK", "FAILED", "SUPERSEDED"


class OneOffTaskFailed(DeployError):
    """A one-off task (e.g. migrations) did not start, or stopped with a non-zero exit."""


def ecs_client() -> Any:
    return aws.client("ecs")


# --- target URL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EcsTarget:
    cluster: str
    service: str
    container: str | None  # None: the only container, or the one named like the service
    health_url: str | None


def parse_target(url: str) -> EcsTarget:
    """Validate the whole URL up front so a typo fails at configuration time, not mid-deploy."""
    usage = "use ecs://CLUSTER/SERVICE[?container=NAME&health=https://host/health]"
    parts = urlsplit(url)
    service = parts.path.strip("/")
    if parts.scheme != "ecs" or not parts.netloc or not service or "/" in service:
        raise ConfigError(f"ECS target {url!r}: {usage}")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - set(URL_OPTIONS))
    repeated = sorted(k for k, v in options.items() if len(v) > 1)
    if unknown or repeated:
        raise ConfigError(f"ECS target {url!r}: unknown or repeated options {unknown + repeated}")
    health = options.get("health", [""])[0] or None
    if health:
        check = urlsplit(health)
        if check.scheme not in ("http", "https") or not check.netloc:
            raise ConfigError(f"ECS target {url!r}: health must be an http(s) URL, not {health!r}")
    container = options.get("container", [""])[0] or None
    return EcsTarget(parts.netloc, service, container, health)


# --- AWS calls ----------------------------------------------------------------------------------


def _invoke(client: Any, operation: str, where: str, **params: Any) -> dict[str, Any]:
    """One ECS call; AWS/botocore failures become a DeployError saying where and what."""
    try:
        result: dict[str, Any] = getattr(client, operation)(**params)
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"{where}: ECS {operation} failed: {aws.error_text(exc)}") from None
    return result


# --- task definitions ---------------------------------------------------------------------------


def pick_container(containers: list[dict[str, Any]], wanted: str | None, service: str) -> str:
    """Name of the container to update; refuse to guess between several."""
    names = [c["name"] for c in containers]
    if wanted:
        if wanted not in names:
            raise DeployError(f"no container {wanted!r} in the task definition (it has {names})")
        return wanted
    if len(names) == 1:
        return names[0]
    if service in names:
        return service
    raise DeployError(
        f"the task definition has containers {names} and none is named like the service "
        f"{service!r}: add ?container=NAME to the target URL"
    )


def revised_task_definition(task_def: Mapping[str, Any], container: str, image: str) -> dict:
    """The register_task_definition arguments: the current revision with one image replaced."""
    spec = {k: copy.deepcopy(v) for k, v in task_def.items() if k not in READ_ONLY_FIELDS}
    for definition in spec["containerDefinitions"]:
        if definition["name"] == container:
            definition["image"] = image
    return spec


def _user_tags(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """Tags to carry over; `aws:` tags belong to AWS and cannot be set."""
    return [t for t in tags if not t.get("key", "").startswith("aws:")]


# --- rollout assessment -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rollout:
    deployment_id: str
    task_definition: str  # the new revision
    previous_task_definition: str
    earlier_deployments: frozenset[str]  # deployment ids that existed before update_service


@dataclass(frozen=True)
class Assessment:
    state: str  # COMPLETED, IN_PROGRESS, NOT_VISIBLE, ROLLED_BACK, FAILED, SUPERSEDED
    detail: str


def progress(deployment: Mapping[str, Any]) -> str:
    return (
        f"{deployment.get('rolloutState', '?')}: running {deployment.get('runningCount', 0)}"
        f"/{deployment.get('desiredCount', 0)}, pending {deployment.get('pendingCount', 0)}, "
        f"failed tasks {deployment.get('failedTasks', 0)}"
    )


def _rollback_configured(service: Mapping[str, Any]) -> bool:
    config = service.get("deploymentConfiguration", {})
    breaker = config.get("deploymentCircuitBreaker", {})
    alarms = config.get("alarms", {})
    return bool(breaker.get("enable") and breaker.get("rollback")) or bool(
        alarms.get("enable") and alarms.get("rollback")
    )


def assess(service: Mapping[str, Any], rollout: Rollout, seen: bool) -> Assessment:
    """Where OUR deployment stands in one describe_services answer; `seen`: it was listed before.

    Only our deployment's COMPLETED is success. A service that is steady on another deployment
    (what `services_stable` accepts) is a rollback or a takeover, never success.
    """
    deployments = service.get("deployments", [])
    ours = next((d for d in deployments if d.get("id") == rollout.deployment_id), None)
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if ours is not None:
        if ours.get("rolloutState") == "COMPLETED":
            return Assessment(COMPLETED, progress(ours))
        if ours.get("rolloutState") == "FAILED":
            return _failed(service, ours, primary)
        if primary is not None and primary.get("id") == rollout.deployment_id:
            return Assessment(IN_PROGRESS, progress(ours))
    elif not seen and primary is not None and primary.get("id") in rollout.earlier_deployments:
        return Assessment(NOT_VISIBLE, "update not visible in describe_services yet")
    return _replaced(ours, primary, rollout)


def _failed(
    service: Mapping[str, Any], ours: Mapping[str, Any], primary: Mapping[str, Any] | None
) -> Assessment:
    """Our deployment FAILED: rolled back when ECS restores (or is set to restore) the old one."""
    reason = ours.get("rolloutStateReason") or "no reason given"
    taken_over = primary is not None and primary.get("id") != ours.get("id")
    if taken_over or _rollback_configured(service):
        return Assessment(ROLLED_BACK, f"{reason} ({progress(ours)})")
    return Assessment(FAILED, f"{reason} ({progress(ours)}); no automatic rollback is set")


def _replaced(
    ours: Mapping[str, Any] | None, primary: Mapping[str, Any] | None, rollout: Rollout
) -> Assessment:
    """Our deployment vanished or lost PRIMARY: a rollback to the old revision, or a takeover."""
    gone = "is gone" if ours is None else f"is no longer primary ({progress(ours)})"
    if primary is None:
        return Assessment(FAILED, f"deployment {gone} and the service has no primary deployment")
    reason = (ours or {}).get("rolloutStateReason") or primary.get("rolloutStateReason") or ""
    serving = primary.get("taskDefinition", "?")
    rolling_back = "rolling back" in reason.lower() or "rollback" in reason.lower()
    if serving == rollout.previous_task_definition or rolling_back:
        return Assessment(ROLLED_BACK, f"deployment {gone}; {serving} is primary again: {reason}")
    return Assessment(SUPERSEDED, f"deployment {gone}; another deployment of {serving} took over")


# --- deployer -----------------------------------------------------------------------------------


class EcsDeployer(Deployer):
    """Deploys one ECS service (deployment controller ECS, rolling update)."""

    def __init__(
        self,
        url: str,
        client: Any = None,
        poll_s: float = 5.0,
        *,
        elbv2: Any = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.target = parse_target(url)
        self.url = url
        self.client = client if client is not None else ecs_client()
        self._elbv2 = elbv2  # created on first use: only services behind an ALB need it
        self.poll_s = poll_s
        self._sleep = sleep
        self._clock = clock
        self._registered: dict[str, str] = {}  # image -> revision this deployer registered

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        return _invoke(self.client, operation, self.url, **params)

    def _service(self) -> dict[str, Any] | None:
        """The ACTIVE service, or None when it (or its cluster) does not exist."""
        try:
            answer = self.client.describe_services(
                cluster=self.target.cluster, services=[self.target.service]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
                return None
            raise DeployError(
                f"{self.url}: ECS describe_services failed: {aws.error_text(exc)}"
            ) from None
        except BotoCoreError as exc:
            raise DeployError(f"{self.url}: ECS describe_services failed: {exc}") from None
        active = [s for s in answer.get("services", []) if s.get("status") == "ACTIVE"]
        return active[0] if active else None

    def _require_service(self) -> dict[str, Any]:
        service = self._service()
        if service is None:
            raise DeployError(
                f"{self.url}: no ACTIVE service {self.target.service!r} in cluster "
                f"{self.target.cluster!r} (create it first, e.g. with the project's Terraform)"
            )
        controller = service.get("deploymentController", {}).get("type", "ECS")
        if controller != "ECS":
            raise DeployError(
                f"{self.url}: the service uses the {controller} deployment controller; "
                "only rolling updates (ECS) are supported"
            )
        return service

    def _task_definition(self, arn: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
        answer = self._call("describe_task_definition", taskDefinition=arn, include=["TAGS"])
        return answer["taskDefinition"], answer.get("tags", [])

    def _current(self, service: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any], str]:
        """The service's task definition, its tags, and the name of the container to update."""
        task_def, tags = self._task_definition(service["taskDefinition"])
        containers = task_def["containerDefinitions"]
        return (
            task_def,
            tags,
            pick_container(containers, self.target.container, self.target.service),
        )

    def current_image(self) -> str | None:
        """The image of the chosen container in the service's current task definition."""
        service = self._service()
        if service is None:
            return None
        task_def, _, name = self._current(service)
        return _image_of(task_def, name)

    def register_revision(self, image: str, log: Log) -> str:
        """Register (once per image and deployer) a copy of the service's current revision.

        Public so a migration one-off task can run the very revision `deploy` then rolls out.
        """
        _require_digest(image)
        return self._register(self._require_service(), image, log)[0]

    def _register(self, service: Mapping[str, Any], image: str, log: Log) -> tuple[str, str]:
        """(new revision ARN, image it replaces)."""
        task_def, tags, container = self._current(service)
        previous_image = _image_of(task_def, container)
        if image in self._registered:
            return self._registered[image], previous_image
        spec = revised_task_definition(task_def, container, image)
        self._check_registrable(spec)
        if _user_tags(tags):
            spec["tags"] = _user_tags(tags)
        answer = self._call("register_task_definition", **spec)
        arn: str = answer["taskDefinition"]["taskDefinitionArn"]
        log(f"{self.url}: registered {arn}: container {container!r} {previous_image} -> {image}")
        self._registered[image] = arn
        return arn, previous_image

    def _check_registrable(self, spec: Mapping[str, Any]) -> None:
        """Refuse, rather than silently drop, settings this botocore cannot send back."""
        operation = self.client.meta.service_model.operation_model("RegisterTaskDefinition")
        unknown = sorted(set(spec) - set(operation.input_shape.members))
        if unknown:
            raise DeployError(
                f"{self.url}: the current task definition has fields {unknown} that this "
                "botocore cannot register; upgrade boto3 rather than lose them"
            )

    def deploy(self, image: str, timeout_s: float, log: Log) -> DeployResult:
        """Register the new revision, update the service, follow that deployment to its end;
        behind an ALB, also until the new tasks are healthy in its target groups."""
        started = self._clock()
        _require_digest(image)
        service = self._require_service()
        new_arn, previous_image = self._register(service, image, log)
        rollout = self._update_service(service, new_arn)
        log(f"{self.url}: update_service started deployment {rollout.deployment_id}")
        self._follow(rollout, started + timeout_s, timeout_s, log)
        if service.get("loadBalancers"):  # ECS counts a task before the ALB has checked it
            log(f"{self.url}: {self._wait_healthy(started + timeout_s, timeout_s).detail}")
        seconds = round(self._clock() - started, 3)
        log(f"{self.url}: deployment {rollout.deployment_id} COMPLETED in {seconds:.0f}s")
        return DeployResult(self.url, image, new_arn, previous_image, seconds)

    def _update_service(self, service: Mapping[str, Any], new_arn: str) -> Rollout:
        """Start the rollout and take ITS deployment id from the response."""
        answer = self._call(
            "update_service",
            cluster=self.target.cluster,
            service=self.target.service,
            taskDefinition=new_arn,
        )
        for deployment in answer["service"].get("deployments", []):
            if (
                deployment.get("status") == "PRIMARY"
                and deployment.get("taskDefinition") == new_arn
            ):
                earlier = frozenset(d["id"] for d in service.get("deployments", []))
                return Rollout(deployment["id"], new_arn, service["taskDefinition"], earlier)
        raise DeployError(
            f"{self.url}: update_service to {new_arn} was accepted, but its response names no "
            "PRIMARY deployment of that revision, so the rollout cannot be followed; check the "
            "service's deployments in ECS"
        )

    def _follow(self, rollout: Rollout, deadline: float, timeout_s: float, log: Log) -> None:
        """Poll until our deployment COMPLETED; raise on any other ending or at the deadline."""
        seen, last = False, ""
        while True:
            verdict = assess(self._require_service(), rollout, seen)
            seen = seen or verdict.state != NOT_VISIBLE
            if verdict.detail != last:
                log(f"{self.url}: deployment {rollout.deployment_id} {verdict.detail}")
                last = verdict.detail
            if verdict.state == COMPLETED:
                return
            self._raise_if_final(verdict, rollout)
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise DeployTimeout(
                    f"{self.url}: deployment {rollout.deployment_id} of {rollout.task_definition} "
                    f"did not finish within {timeout_s:.0f}s ({verdict.detail}); ECS keeps "
                    "rolling it out: watch it, or roll back"
                )
            self._sleep(min(self.poll_s, remaining))

    def _raise_if_final(self, verdict: Assessment, rollout: Rollout) -> None:
        where = f"{self.url}: deployment {rollout.deployment_id} of {rollout.task_definition}"
        if verdict.state == ROLLED_BACK:
            raise DeployRolledBack(f"{where} was rolled back by ECS: {verdict.detail}")
        if verdict.state == FAILED:
            raise DeployError(f"{where} failed: {verdict.detail}")
        if verdict.state == SUPERSEDED:
            raise DeployError(f"{where} was superseded: {verdict.detail}")

    def smoke_check(self, timeout_s: float) -> None:
        """Healthy as AWS judges it (see ecs_health), then the health URL if one is configured.

        Both are polled until they pass, together within `timeout_s` seconds.
        """
        deadline = self._clock() + timeout_s
        self._wait_healthy(deadline, timeout_s)
        if self.target.health_url:
            self._wait_url(self.target.health_url, deadline, timeout_s)

    def _wait_healthy(self, deadline: float, timeout_s: float) -> Verdict:
        while True:
            verdict = self._judge()
            if verdict.healthy:
                return verdict
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise DeployError(
                    f"{self.url}: not healthy after {timeout_s:.0f}s: {verdict.detail}"
                )
            self._sleep(min(self.poll_s, remaining))

    def _judge(self) -> Verdict:
        service = self._require_service()
        if self._elbv2 is None and service.get("loadBalancers"):
            self._elbv2 = aws.client("elbv2")
        try:
            return judge(self.client, self._elbv2, self.target.cluster, service)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(
                f"{self.url}: cannot read the service's health: {aws.error_text(exc)}"
            ) from None

    def _wait_url(self, url: str, deadline: float, timeout_s: float) -> None:
        """GET `url` until it answers 200 or the deadline passes."""
        while True:
            attempt_s = min(10.0, max(deadline - self._clock(), 0.5))
            problem = http_problem(url, timeout_s=attempt_s)
            if problem is None:
                return
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise DeployError(
                    f"{self.url}: {url} did not answer 200 in {timeout_s:.0f}s: {problem}"
                )
            self._sleep(min(self.poll_s, remaining))

    def one_off_run_args(self) -> dict[str, Any]:
        """run_task placement copied from the service, so a one-off task reaches what it reaches."""
        service = self._require_service()
        keys = ("networkConfiguration", "launchType", "capacityProviderStrategy", "platformVersion")
        args = {k: service[k] for k in keys if service.get(k)}
        if "capacityProviderStrategy" in args:
            args.pop("launchType", None)  # run_task refuses both at once
        return args


def _image_of(task_def: Mapping[str, Any], container: str) -> str:
    return str(next(c["image"] for c in task_def["containerDefinitions"] if c["name"] == container))


def _require_digest(image: str) -> None:
    """Deploy immutable references only, so what ran can always be redeployed exactly."""
    if not DIGEST_REF.match(image):
        raise DeployError(f"refusing to deploy {image!r}: use an immutable repo@sha256:<digest>")


def http_problem(url: str, timeout_s: float) -> str | None:
    """None when `url` answers 200, else what went wrong (status or connection error)."""
    try:
        # The scheme is http(s), checked by parse_target.
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except OSError as exc:  # timeouts, resets
        return str(exc) or type(exc).__name__


# --- one-off tasks (run by sage_ops.platforms.ecs_tasks) --------------------------------------


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
        raise OneOffTaskFailed(f"{where} ({task.get('taskArn', '')}) failed: {'; '.join(problems)}")
    return codes
