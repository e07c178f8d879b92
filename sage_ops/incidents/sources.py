"""Configuration picks the sources: CloudWatch in production, local probes otherwise.

Plain values in, small interfaces out (AlarmSource, MetricSource, LogSource, Notifier), so the
Dagster resource stays a thin holder of settings and everything here is testable without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sage_ops.errors import ConfigError
from sage_ops.incidents.alarms.alarm import AlarmSource
from sage_ops.incidents.classification.budget import ConnectionBudget
from sage_ops.incidents.evidence.base import LogSource, MetricSource
from sage_ops.incidents.evidence.changes import rollouts
from sage_ops.incidents.evidence.cloudwatch import CloudWatchAlarms, CloudWatchMetrics
from sage_ops.incidents.evidence.cloudwatch_logs import CloudWatchLogs
from sage_ops.incidents.evidence.containers import ContainerLogs
from sage_ops.incidents.evidence.local_alarms import (
    LocalAlarms,
    LocalMetrics,
    ProbeTargets,
    local_rules,
)
from sage_ops.incidents.evidence.postgres_log import PostgresLogFile
from sage_ops.incidents.evidence.probe_history import ProbeHistory
from sage_ops.incidents.reports.notify import Notifier, RunLogNotifier, SnsNotifier
from sage_ops.incidents.triage import Window
from sage_ops.lineage.changes import Change
from sage_ops.platforms.ecs import events as ecs_events
from sage_ops.platforms.ecs.target import service_url
from sage_ops.platforms.targets import open_deployer
from sage_ops.postgres import PgTarget

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
    deploy_target: str | None = None  # the environment's target: its platform's events
    ecs_service: str | None = None  # CLUSTER/SERVICE whose ECS events are read instead
    ecs_events_log_group: str | None = None  # where an EventBridge rule ships them, if anywhere

    def __post_init__(self) -> None:
        if self.source not in (CLOUDWATCH, LOCAL):
            raise ConfigError(
                f"SAGE_OPS_ALARM_SOURCE must be {CLOUDWATCH} or {LOCAL} (got {self.source!r})"
            )

    @property
    def targets(self) -> ProbeTargets:
        return ProbeTargets(self.database, self.health_url, self.service)


def alarm_source(s: IncidentSettings) -> AlarmSource:
    if s.source == CLOUDWATCH:
        return CloudWatchAlarms(s.alarm_prefix)
    rules = local_rules(s.alarm_prefix, s.targets, s.probe_period_s)
    return LocalAlarms(s.targets, rules, ProbeHistory(s.history_path))


def metric_source(s: IncidentSettings, alarms: AlarmSource) -> MetricSource:
    if s.source == CLOUDWATCH:
        return CloudWatchMetrics(alarms=alarms)
    return LocalMetrics(ProbeHistory(s.history_path))


def log_sources(s: IncidentSettings) -> list[LogSource]:
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


def platform_changes(s: IncidentSettings, start: datetime, end: datetime) -> list[Change]:
    """Rollouts seen in the deploy target's own service events (its platform reads them), and
    in the ECS events an EventBridge rule ships to a log group."""
    target = service_url(s.ecs_service) if s.ecs_service else s.deploy_target
    events = open_deployer(target).service_events() if target else []
    if s.ecs_events_log_group:
        lines = CloudWatchLogs(s.ecs_events_log_group, pattern=ecs_events.LOG_FILTER).lines(
            start, end
        )
        parsed = (
            ecs_events.parse_event(r.timestamp.to_pydatetime(), r.message)
            for r in lines.itertuples()
        )
        events += [e for e in parsed if e is not None]
    return rollouts(events, s.environment)


def notifier(s: IncidentSettings, log: Callable[[str], None]) -> Notifier:
    return SnsNotifier(s.sns_topic_arn) if s.sns_topic_arn else RunLogNotifier(log)
