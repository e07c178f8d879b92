"""ECS service events as changes: the rollouts sage_ops did not make (a console update, a
terraform apply, another pipeline) are suspects too.

The events are ECS's own sentences, read from `describe_services` (the last 100 per service) or
from CloudWatch Logs where an EventBridge rule or a script ships them: "(service x) has started
2 tasks", "(deployment ecs-svc/1) deployment failed: ...", "rolling back to deployment ...",
"has reached a steady state", and EventBridge's "ECS Deployment State Change" JSON. A rollout
starts with the first of them after a steady state and ends at the next steady state or
completion; until then it is in progress.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sage_ops.incidents.errors import EvidenceError
from sage_ops.lineage.changes import DEPLOYMENT, FAILURE, IN_PROGRESS, ROLLED_BACK, SUCCESS, Change

_SERVICE = re.compile(r"\(service ([\w.-]+)\)")
_DEPLOYMENT_ID = re.compile(r"\b(ecs-svc/\d+)")
# (event, what it means for the rollout), first match wins.
_EVENTS = (
    (re.compile(r"rolling back to deployment|SERVICE_DEPLOYMENT_ROLLBACK"), ROLLED_BACK),
    (re.compile(r"deployment failed|SERVICE_DEPLOYMENT_FAILED"), FAILURE),
    (
        re.compile(r"has reached a steady state|deployment completed|SERVICE_DEPLOYMENT_COMPLETED"),
        SUCCESS,
    ),
    (re.compile(r"has started \d+ tasks?|SERVICE_DEPLOYMENT_IN_PROGRESS"), IN_PROGRESS),
)


@dataclass(frozen=True)
class ServiceEvent:
    at: datetime
    service: str
    meaning: str  # IN_PROGRESS (tasks started), FAILURE, ROLLED_BACK, SUCCESS (steady state)
    deployment: str  # ecs-svc/... when the event names one


def parse_event(at: datetime, message: str) -> ServiceEvent | None:
    """One event from its text (or EventBridge JSON); None when it says nothing of a rollout."""
    text = _eventbridge_text(message) or message
    for pattern, meaning in _EVENTS:
        if pattern.search(text):
            service = _SERVICE.search(text)
            deployment = _DEPLOYMENT_ID.search(text)
            return ServiceEvent(
                at,
                service.group(1) if service else "",
                meaning,
                deployment.group(1) if deployment else "",
            )
    return None


def rollouts(events: Iterable[ServiceEvent], environment: str = "") -> list[Change]:
    """The rollouts the events describe, oldest first, per service."""
    open_: dict[str, Change] = {}
    done: list[Change] = []
    for event in sorted(events, key=lambda e: e.at):
        current = open_.get(event.service)
        if event.meaning == SUCCESS:
            if current is not None:
                status = current.status if current.status != IN_PROGRESS else SUCCESS
                done.append(replace(current, finished_at=event.at, status=status))
                del open_[event.service]
            continue
        if current is None:
            current = Change(
                DEPLOYMENT,
                event.service or "ECS service",
                None,
                event.deployment or f"{event.service}@{event.at:%Y-%m-%dT%H:%M:%SZ}",
                IN_PROGRESS,
                environment,
                started_at=event.at,
                source="ecs",
            )
        if event.meaning != IN_PROGRESS and current.status != ROLLED_BACK:
            current = replace(current, status=event.meaning)
        open_[event.service] = current
    return done + list(open_.values())


def not_made_by_sage_ops(ecs: list[Change], ours: list[Change], now: datetime) -> list[Change]:
    """ECS rollouts that overlap none of sage_ops' own deployments (those are listed already)."""
    spans = [
        (c.started_at or c.at, c.finished_at or now)
        for c in ours
        if c.kind == DEPLOYMENT and c.source != "ecs"
    ]
    return [
        change
        for change in ecs
        if not any(
            (change.started_at or change.at) <= end and start <= (change.finished_at or now)
            for start, end in spans
        )
    ]


def service_events(cluster: str, service: str, client: Any = None) -> list[ServiceEvent]:
    """The service's recent events from `describe_services`."""
    from sage_ops.incidents.aws import AWS_ERRORS, aws_client, describe  # boto3: only here

    try:
        answer = (client or aws_client("ecs")).describe_services(
            cluster=cluster, services=[service]
        )
    except AWS_ERRORS as exc:
        raise EvidenceError(
            f"cannot read the events of ECS service {cluster}/{service}: {describe(exc)} "
            "(check SAGE_OPS_ECS_SERVICE and ecs:DescribeServices)"
        ) from None
    found = answer.get("services") or []
    events = found[0].get("events", []) if found else []
    parsed = (parse_event(_utc(e["createdAt"]), e["message"]) for e in events)
    return [e for e in parsed if e is not None]


def _eventbridge_text(message: str) -> str:
    if not message.startswith("{") or "ECS Deployment State Change" not in message:
        return ""
    try:
        event = json.loads(message)
    except ValueError:
        return ""
    detail, resources = event.get("detail", {}), event.get("resources") or [""]
    service = str(resources[0]).rsplit("/", 1)[-1]  # arn:aws:ecs:...:service/cluster/name
    return f"(service {service}) {detail.get('eventName', '')} {detail.get('deploymentId', '')}"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
