"""Configuration picks the sources: CloudWatch in production, local probes otherwise.

Plain values in, small interfaces out (AlarmSource, MetricSource, LogSource, Notifier), so the
Dagster resource stays a thin holder of settings and everything here is testable without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sage_ops.errors import ConfigError
from sage_ops.incidents.budget import ConnectionBudget
from sage_ops.incidents.window import Window
from sage_ops.postgres import PgTarget

if TYPE_CHECKING:
    from sage_ops.incidents.alarms import AlarmSource
    from sage_ops.incidents.evidence import LogSource, MetricSource
    from sage_ops.incidents.local_alarms import ProbeTargets
    from sage_ops.incidents.notify import Notifier
    from sage_ops.lineage.changes import Change

# The sources (pandas, 1 s of imports) load when a sensor or a triage first asks for one, not with
# the settings in every process that loads the definitions.

CLOUDWATCH, LOCAL = "cloudwatch", "local"


@dataclass(frozen=True)
class IncidentSettings:
    source: str = LOCAL
    alarm_prefix: str = "sage-"
    environment: str = "production"
    log_groups: tuple[str, ...] = ()
    sns_topic_arn: str | None = None
    database: PgTarget | None = None
    health_url: str | None = None
    service: str | None = None
    pg_log_file: str | None = None
    probe_period_s: int = 60
    history_path: Path = Path(".state/incidents/probes.sqlite")
    budget: ConnectionBudget = field(default_factory=ConnectionBudget)
    window: Window = field(default_factory=Window)
    ecs_service: str | None = None  # cluster/service whose events are deploy suspects
    ecs_events_log_group: str | None = None  # where an EventBridge rule ships them, if anywhere

    def __post_init__(self) -> None:
        if self.source not in (CLOUDWATCH, LOCAL):
            raise ConfigError(
                f"SAGE_OPS_ALARM_SOURCE must be {CLOUDWATCH} or {LOCAL} (got {self.source!r})"
            )

    @property
    def targets(self) -> ProbeTargets:
        from sage_ops.incidents.local_alarms import ProbeTargets

        return ProbeTargets(self.database, self.health_url, self.service)


def alarm_source(s: IncidentSettings) -> AlarmSource:
    from sage_ops.incidents.cloudwatch import CloudWatchAlarms
    from sage_ops.incidents.local_alarms import LocalAlarms, local_rules
    from sage_ops.incidents.probe_history import ProbeHistory

    if s.source == CLOUDWATCH:
        return CloudWatchAlarms(s.alarm_prefix)
    rules = local_rules(s.alarm_prefix, s.targets, s.probe_period_s)
    return LocalAlarms(s.targets, rules, ProbeHistory(s.history_path))


def metric_source(s: IncidentSettings, alarms: AlarmSource) -> MetricSource:
    from sage_ops.incidents.cloudwatch import CloudWatchMetrics
    from sage_ops.incidents.local_alarms import LocalMetrics
    from sage_ops.incidents.probe_history import ProbeHistory

    if s.source == CLOUDWATCH:
        return CloudWatchMetrics(alarms=alarms)
    return LocalMetrics(ProbeHistory(s.history_path))


def log_sources(s: IncidentSettings) -> list[LogSource]:
    from sage_ops.incidents.cloudwatch_logs import CloudWatchLogs
    from sage_ops.incidents.containers import ContainerLogs
    from sage_ops.incidents.postgres_log import PostgresLogFile

    if s.source == CLOUDWATCH:
        return [CloudWatchLogs(g) for g in s.log_groups or default_log_groups(s.environment)]
    found: list[LogSource] = []
    if s.pg_log_file:
        found.append(PostgresLogFile(s.pg_log_file))
    if s.service:
        found.append(ContainerLogs(s.service))
    return found


def default_log_groups(environment: str) -> tuple[str, ...]:
    """The Terraform stack's names (infra/terraform/main.tf): the service's and the database's."""
    return (
        f"/ecs/sage-{environment}/backend",
        f"/aws/rds/instance/sage-{environment}-postgres/postgresql",
    )


def ecs_changes(s: IncidentSettings, start: datetime, end: datetime) -> list[Change]:
    """Rollouts seen in the ECS service's events (describe_services and the events log group)."""
    from sage_ops.incidents.cloudwatch_logs import ECS_EVENTS_PATTERN, CloudWatchLogs
    from sage_ops.incidents.ecs_events import parse_event, rollouts, service_events

    events = []
    if s.ecs_service:
        cluster, _, service = s.ecs_service.partition("/")
        events += service_events(cluster, service)
    if s.ecs_events_log_group:
        lines = CloudWatchLogs(s.ecs_events_log_group, pattern=ECS_EVENTS_PATTERN).lines(start, end)
        parsed = (parse_event(r.timestamp.to_pydatetime(), r.message) for r in lines.itertuples())
        events += [e for e in parsed if e is not None]
    return rollouts(events, s.environment)


def notifier(s: IncidentSettings, log: Callable[[str], None]) -> Notifier:
    from sage_ops.incidents.notify import RunLogNotifier, SnsNotifier

    return SnsNotifier(s.sns_topic_arn) if s.sns_topic_arn else RunLogNotifier(log)
