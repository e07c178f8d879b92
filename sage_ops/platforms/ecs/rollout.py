"""Where OUR ECS deployment stands in one describe_services answer.

Only our deployment's COMPLETED is success: after a circuit-breaker rollback the service is
stable again on the OLD task definition, which the `services_stable` waiter would accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

COMPLETED, IN_PROGRESS, NOT_VISIBLE = "COMPLETED", "IN_PROGRESS", "NOT_VISIBLE"
ROLLED_BACK, FAILED, SUPERSEDED = "ROLLED_BACK", "FAILED", "SUPERSEDED"


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
