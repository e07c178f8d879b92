"""ECS service events, for incident triage: the rollouts ECS saw, whoever started them (a console
update, a terraform apply, another pipeline).

The events are ECS's own sentences, read from `describe_services` (the last 100 per service) or
from CloudWatch Logs where an EventBridge rule or a script ships them: "(service x) has started
2 tasks", "(deployment ecs-svc/1) deployment failed: ...", "rolling back to deployment ...",
"has reached a steady state", and EventBridge's "ECS Deployment State Change" JSON.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from sage_ops.errors import SageOpsError
from sage_ops.platforms.deployer import FAILED, ROLLED_BACK, SETTLED, STARTED, ServiceEvent

PLATFORM = "ecs"
# A CloudWatch Logs filter pattern keeping the sentences below, for a log group of shipped events.
LOG_FILTER = (
    '?"has started" ?"steady state" ?"deployment failed" ?"rolling back" '
    '?"deployment completed" ?"ECS Deployment State Change"'
)
_SERVICE = re.compile(r"\(service ([\w.-]+)\)")
_DEPLOYMENT_ID = re.compile(r"\b(ecs-svc/\d+)")
# (event, what it means for the rollout), first match wins.
_EVENTS = (
    (re.compile(r"rolling back to deployment|SERVICE_DEPLOYMENT_ROLLBACK"), ROLLED_BACK),
    (re.compile(r"deployment failed|SERVICE_DEPLOYMENT_FAILED"), FAILED),
    (
        re.compile(r"has reached a steady state|deployment completed|SERVICE_DEPLOYMENT_COMPLETED"),
        SETTLED,
    ),
    (re.compile(r"has started \d+ tasks?|SERVICE_DEPLOYMENT_IN_PROGRESS"), STARTED),
)


class EventsUnavailable(SageOpsError):
    """The service's events could not be read."""


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
                PLATFORM,
            )
    return None


def service_events(cluster: str, service: str, client: Any) -> list[ServiceEvent]:
    """The service's recent events from `describe_services`."""
    from sage_ops.platforms import aws  # boto3 only here: the triage CLI parses events without it

    try:
        answer = client.describe_services(cluster=cluster, services=[service])
    except aws.ERRORS as exc:
        raise EventsUnavailable(
            f"cannot read the events of ECS service {cluster}/{service}: "
            f"{aws.error_text(exc)} (check ecs:DescribeServices)"
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
