"""ECS target: a task-definition revision with only the image changed; follow THAT deployment.

Why not the `services_stable` waiter: after a circuit-breaker rollback the service is stable again
on the OLD task definition and the waiter succeeds. Here success is only the deployment that our
`update_service` started reaching rolloutState COMPLETED; FAILED, vanishing, or another task
definition becoming primary is a failure, and the wall clock bounds the wait. (Rollback semantics:
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html)

Target URL: `ecs://CLUSTER/SERVICE[?container=NAME&health=https://host/health]`. `container`
picks the container whose image is replaced (default: the only one, or the one named like the
service). `smoke_check` judges health from AWS itself (rolloutState and the new tasks' ALB target
health, see ecs_health) and also GETs `health` when one is given (percent-encode any `&` in it);
`deploy` of a service behind an ALB also waits for that target health after COMPLETED.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.platforms import aws
from sage_ops.platforms.deployer import (
    Deployer,
    DeployError,
    DeployResult,
    DeployRolledBack,
    DeployTimeout,
    Log,
    ServiceEvent,
)
from sage_ops.platforms.ecs import events
from sage_ops.platforms.ecs import tasks as ecs_tasks
from sage_ops.platforms.ecs.health import Verdict, health_source, judge
from sage_ops.platforms.ecs.revision import (
    image_of,
    pick_container,
    require_digest,
    revised_task_definition,
    user_tags,
)
from sage_ops.platforms.ecs.rollout import (
    COMPLETED,
    FAILED,
    NOT_VISIBLE,
    ROLLED_BACK,
    SUPERSEDED,
    Assessment,
    Rollout,
    assess,
)
from sage_ops.platforms.ecs.target import parse_target

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def ecs_client() -> Any:
    return aws.client("ecs")


# --- AWS calls ----------------------------------------------------------------------------------


def _invoke(client: Any, operation: str, where: str, **params: Any) -> dict[str, Any]:
    """One ECS call; AWS/botocore failures become a DeployError saying where and what."""
    try:
        result: dict[str, Any] = getattr(client, operation)(**params)
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"{where}: ECS {operation} failed: {aws.error_text(exc)}") from None
    return result


# --- deployer -----------------------------------------------------------------------------------


class EcsDeployer(Deployer):
    """Deploys one ECS service (deployment controller ECS, rolling update)."""

    takes_secrets = False  # run_task overrides show in describe_tasks

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
        return image_of(task_def, name)

    def release_of(self, image: str, log: Log) -> str:
        """Register (once per image and deployer) a copy of the service's current revision, so
        a migration one-off task runs the very revision `deploy` then rolls out."""
        require_digest(image)
        return self._register(self._require_service(), image, log)[0]

    def _register(self, service: Mapping[str, Any], image: str, log: Log) -> tuple[str, str]:
        """(new revision ARN, image it replaces)."""
        task_def, tags, container = self._current(service)
        previous_image = image_of(task_def, container)
        if image in self._registered:
            return self._registered[image], previous_image
        spec = revised_task_definition(task_def, container, image)
        self._check_registrable(spec)
        if user_tags(tags):
            spec["tags"] = user_tags(tags)
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
        require_digest(image)
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

    def health_source(self) -> str:
        service = self._require_service()
        return health_source(self._elbv2_for(service), service, self.target.health_url)

    def service_events(self) -> list[ServiceEvent]:
        return events.service_events(self.target.cluster, self.target.service, self.client)

    def _elbv2_for(self, service: Mapping[str, Any]) -> Any:
        if self._elbv2 is None and service.get("loadBalancers"):
            self._elbv2 = aws.client("elbv2")
        return self._elbv2

    def _judge(self) -> Verdict:
        service = self._require_service()
        self._elbv2_for(service)
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

    def run_once(
        self,
        command: Sequence[str],
        timeout_s: float,
        log: Log,
        *,
        release: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """A one-off task of `release` (a task definition; default: the service's own), placed
        like the service. `environment` lands in the task's overrides, which describe_tasks
        shows: secrets belong in the task definition's `secrets` instead."""
        service = self._require_service()
        task_definition = release or service["taskDefinition"]
        container = self.target.container or self._current(service)[2]
        override: dict[str, Any] = {"name": container, "command": list(command)}
        if environment:
            override["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
        ecs_tasks.run_one_off_task(
            self.target.cluster,
            task_definition,
            {"containerOverrides": [override]},
            timeout_s,
            log,
            run_args=self.one_off_run_args(),
        )

    def one_off_run_args(self) -> dict[str, Any]:
        """run_task placement copied from the service, so a one-off task reaches what it reaches."""
        service = self._require_service()
        keys = ("networkConfiguration", "launchType", "capacityProviderStrategy", "platformVersion")
        args = {k: service[k] for k in keys if service.get(k)}
        if "capacityProviderStrategy" in args:
            args.pop("launchType", None)  # run_task refuses both at once
        return args


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
