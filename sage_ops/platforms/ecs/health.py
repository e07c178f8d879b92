"""Is an ECS service healthy on its newest revision? Judged from what AWS knows, no URL needed.

Healthy means: the service's PRIMARY deployment reached rolloutState COMPLETED, it runs as many
tasks as it wants, and every running task of that deployment's revision is `healthy` in each ALB
target group the service registers into (elbv2 DescribeTargetHealth, by the task's private IP and
the container port, which is how awsvpc tasks are registered). A service without a load balancer
is judged by the rollout alone. Any single answer is a Verdict; `EcsDeployer.smoke_check` polls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HEALTHY = "healthy"


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    detail: str


def judge(ecs: Any, elbv2: Any, cluster: str, service: Mapping[str, Any]) -> Verdict:
    """One look at `service` (a describe_services entry) and its new tasks' target health."""
    primary = next(
        (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None
    )
    if primary is None:
        return Verdict(False, "the service has no PRIMARY deployment")
    state = primary.get("rolloutState", "?")
    running, desired = primary.get("runningCount", 0), primary.get("desiredCount", 0)
    rollout = f"deployment {primary.get('id')} {state}, running {running}/{desired}"
    if state != "COMPLETED" or running < desired:
        return Verdict(False, rollout)
    balancers = [lb for lb in service.get("loadBalancers", []) if lb.get("targetGroupArn")]
    if not balancers:
        return Verdict(True, f"{rollout}; no load balancer, judged by the rollout alone")
    tasks = _new_tasks(ecs, cluster, service["serviceName"], primary["taskDefinition"])
    if len(tasks) < desired:
        return Verdict(False, f"{rollout}; {len(tasks)} running task(s) of the new revision")
    problems = [p for lb in balancers for p in _target_problems(elbv2, lb, tasks)]
    if problems:
        return Verdict(False, f"{rollout}; {'; '.join(problems)}")
    groups = ", ".join(_name(lb["targetGroupArn"]) for lb in balancers)
    return Verdict(True, f"{rollout}; {len(tasks)} new task(s) healthy in {groups}")


def _new_tasks(ecs: Any, cluster: str, service: str, revision: str) -> list[dict[str, Any]]:
    """RUNNING tasks of `revision` (the new tasks; old ones may still be draining)."""
    arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")
    if not arns.get("taskArns"):
        return []
    described = ecs.describe_tasks(cluster=cluster, tasks=arns["taskArns"][:100])
    return [
        t
        for t in described.get("tasks", [])
        if t.get("taskDefinitionArn") == revision and t.get("lastStatus") == "RUNNING"
    ]


def _target_problems(
    elbv2: Any, balancer: Mapping[str, Any], tasks: list[dict[str, Any]]
) -> list[str]:
    """What keeps the tasks from being healthy in one target group (empty: all healthy)."""
    port = balancer.get("containerPort")
    targets = {_private_ip(t): t["taskArn"] for t in tasks}
    missing = [arn for ip, arn in targets.items() if ip is None]
    ids = [{"Id": ip, "Port": port} for ip in targets if ip is not None]
    answer = elbv2.describe_target_health(TargetGroupArn=balancer["targetGroupArn"], Targets=ids)
    problems = [f"task {_name(arn)} has no private IP yet" for arn in missing]
    for entry in answer.get("TargetHealthDescriptions", []):
        health = entry.get("TargetHealth", {})
        if health.get("State") != HEALTHY:
            target = entry.get("Target", {})
            reason = health.get("Description") or health.get("Reason") or ""
            problems.append(
                f"{target.get('Id')}:{target.get('Port')} is {health.get('State')} in "
                f"{_name(balancer['targetGroupArn'])}" + (f" ({reason})" if reason else "")
            )
    return problems


def _private_ip(task: Mapping[str, Any]) -> str | None:
    """The awsvpc ENI's address, from the task's attachment (Fargate) or its containers."""
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail["value"])
    for container in task.get("containers", []):
        for interface in container.get("networkInterfaces", []):
            if interface.get("privateIpv4Address"):
                return str(interface["privateIpv4Address"])
    return None


def _name(arn: str) -> str:
    """targetgroup/sage-production/abc -> sage-production; task/c/123 -> 123."""
    parts = arn.split(":")[-1].split("/")
    return parts[1] if parts[0] == "targetgroup" and len(parts) > 1 else parts[-1]


def health_source(elbv2: Any, service: Mapping[str, Any], health_url: str | None) -> str:
    """What the smoke check judges by: the service's ALB target groups (with their health check
    paths), else the rollout alone, plus the health URL the target names."""
    arns = [
        lb["targetGroupArn"] for lb in service.get("loadBalancers", []) if lb.get("targetGroupArn")
    ]
    found = elbv2.describe_target_groups(TargetGroupArns=arns)["TargetGroups"] if arns else []
    groups = [
        f"target group {g['TargetGroupName']} ({g.get('HealthCheckPath', '')})" for g in found
    ]
    sources = groups or ["the rollout alone (no load balancer)"]
    return ", ".join(sources + ([f"GET {health_url}"] if health_url else []))
