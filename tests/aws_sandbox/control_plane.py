"""What AWS does *between* API calls and moto does not - a CodeBuild build running, an ECS
deployment rolling out - played on the sandbox's moto server, for every process that calls it
(a run task's as well as the test's own).

`ServerHooks` sits in front of moto's WSGI app (MotoS3.wrap) and hands the JSON of chosen
operations, by their X-Amz-Target, to the `ControlPlane` of the test under way: "before" hooks
see the request's parameters, "after" hooks amend moto's own answer at the time of the call, from
moto's state; each hook's comment names the gap it fills.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3

from tests.aws_sandbox import stack
from tests.platforms.test_codebuild import push_what_the_buildspec_pushes

CODEBUILD = "CodeBuild_20161006"  # the services' JSON target prefixes
ECS = "AmazonEC2ContainerServiceV20141113"
Hook = Callable[[dict[str, Any]], None]


@dataclass
class ControlPlane:
    """The part of CodeBuild and ECS that works between API calls, which moto does not run."""

    repository: str
    starts: list[dict[str, Any]] = field(default_factory=list)  # start_build's parameters
    builds: list[str] = field(default_factory=list)  # the ids CodeBuild gave them
    running: set[str] = field(default_factory=set)  # builds already seen running
    finished: set[str] = field(default_factory=set)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # service ARN -> ours

    def before(self) -> dict[str, Hook]:
        # moto runs no buildspec: the image the build pushes lands in moto's ECR at start.
        return {f"{CODEBUILD}.StartBuild": self._build_requested}

    def after(self) -> dict[str, Hook]:
        return {
            f"{CODEBUILD}.StartBuild": self._build_started,
            f"{CODEBUILD}.BatchGetBuilds": self._build_progress,
            f"{ECS}.UpdateService": self._rollout_started,
            f"{ECS}.DescribeServices": self._rollouts_settled,
        }

    # --- CodeBuild --------------------------------------------------------------------------

    def _build_requested(self, params: dict[str, Any]) -> None:
        self.starts.append(params)
        push_what_the_buildspec_pushes(self.repository, params)

    def _build_started(self, parsed: dict[str, Any]) -> None:
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

    def _build_progress(self, parsed: dict[str, Any]) -> None:
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

    def _rollout_started(self, parsed: dict[str, Any]) -> None:
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

    def _rollouts_settled(self, parsed: dict[str, Any]) -> None:
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


class ServerHooks:
    """WSGI middleware in front of moto's app: the current plane's hooks around its operations
    (none while `plane` is None)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.plane: ControlPlane | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target, plane = environ.get("HTTP_X_AMZ_TARGET", ""), self.plane
        if plane is None or target not in plane.before() | plane.after():
            return self.app(environ, start_response)
        request = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(request)
        if target in plane.before():
            plane.before()[target](json.loads(request))
        answered: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            answered.update(status=status, headers=headers)

        body = b"".join(self.app(environ, keep))
        if target in plane.after() and answered["status"].startswith("200"):
            parsed = json.loads(body)
            plane.after()[target](parsed)
            body = json.dumps(parsed).encode()
        headers = [(k, v) for k, v in answered["headers"] if k.lower() != "content-length"]
        start_response(answered["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]
