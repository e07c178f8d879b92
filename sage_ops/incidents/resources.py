"""The incidents resource, which is its settings: where alarms come from, what evidence to read,
whom to tell. The environment is read in `from_env` only; the methods open what the settings
name (alarm, metric and log sources, the platform's events, the notifier), small interfaces the
plain triage code takes: CloudWatch in production, local probes otherwise."""

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import ConfigurableResource, EnvVar

from sage_ops.env_settings import Parse, integer, listed, number, read
from sage_ops.errors import ConfigError
from sage_ops.incidents.alarms.alarm import AlarmSource
from sage_ops.incidents.classification.budget import ConnectionBudget
from sage_ops.incidents.evidence.changes import rollouts
from sage_ops.incidents.reports.llm_summary import DEFAULT_MODEL
from sage_ops.incidents.reports.notify import Notifier, RunLogNotifier, SnsNotifier
from sage_ops.incidents.window import Window
from sage_ops.lineage.changes import Change
from sage_ops.platforms.ecs import events as ecs_events
from sage_ops.platforms.ecs.target import service_url
from sage_ops.platforms.targets import open_deployer
from sage_ops.postgres import PgTarget
from sage_ops.state import state_dir

if TYPE_CHECKING:
    from sage_ops.incidents.evidence.base import LogSource, MetricSource
    from sage_ops.incidents.evidence.local_alarms import ProbeTargets
    from sage_ops.incidents.evidence.probe_history import ProbeHistory

# The sources of evidence read with pandas (about 1 s of imports): they load when a sensor tick or
# a triage opens one, not in every process that loads the definitions (each run's container).

CLOUDWATCH, LOCAL = "cloudwatch", "local"


class IncidentConfig(ConfigurableResource):
    """Where alarms come from, what evidence to read, whom to tell. See the README's table."""

    source: str = LOCAL
    alarm_prefix: str = "sage-"
    environment: str = "production"
    log_groups: list[str] = []
    sns_topic_arn: str | None = None
    # Name of the env var with the probed database's URL (URLs carry passwords).
    database_url_env: str = "DATABASE_URL"
    health_url: str | None = None
    service: str | None = None
    pg_log_file: str | None = None
    probe_period_s: int = 60
    lookback_minutes: int = 120
    deploy_window_minutes: int = 30
    service_tasks: int | None = None
    db_pool_size: int | None = None
    task_vcpus: float | None = None
    db_max_connections: int | None = None
    deploy_max_percent: int = 200
    dagster_url: str = "http://127.0.0.1:3000"
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None  # the Messages API's; Anthropic's own when unset
    llm_model: str = DEFAULT_MODEL
    llm_timeout_s: float = 20.0
    history_path: str | None = None
    # The environment's deploy target (SAGE_OPS_<ENV>_TARGET): its platform's own service
    # events are suspects too; ecs_service (CLUSTER/SERVICE) names another ECS service instead.
    deploy_target: str | None = None
    ecs_service: str | None = None
    ecs_events_log_group: str | None = None  # where an EventBridge rule ships ECS events

    @property
    def budget(self) -> ConnectionBudget:
        return ConnectionBudget(
            max_connections=self.db_max_connections,
            tasks=self.service_tasks,
            pool_size=self.db_pool_size,
            task_vcpus=self.task_vcpus,
            max_percent=self.deploy_max_percent,
        )

    @property
    def window(self) -> Window:
        return Window(
            lookback=timedelta(minutes=self.lookback_minutes),
            deploy=timedelta(minutes=self.deploy_window_minutes),
        )

    def alarm_source(self) -> AlarmSource:
        from sage_ops.incidents.evidence.cloudwatch import CloudWatchAlarms
        from sage_ops.incidents.evidence.local_alarms import LocalAlarms, local_rules

        if self._cloudwatch():
            return CloudWatchAlarms(self.alarm_prefix)
        targets = self.probe_targets()
        rules = local_rules(self.alarm_prefix, targets, self.probe_period_s)
        return LocalAlarms(targets, rules, self._history())

    def metric_source(self, alarms: AlarmSource) -> "MetricSource":
        from sage_ops.incidents.evidence.cloudwatch import CloudWatchMetrics
        from sage_ops.incidents.evidence.local_alarms import LocalMetrics

        if self._cloudwatch():
            return CloudWatchMetrics(alarms=alarms)
        return LocalMetrics(self._history())

    def log_sources(self) -> list["LogSource"]:
        from sage_ops.incidents.evidence.cloudwatch_logs import CloudWatchLogs
        from sage_ops.incidents.evidence.containers import ContainerLogs
        from sage_ops.incidents.evidence.postgres_log import PostgresLogFile

        if self._cloudwatch():
            groups = self.log_groups or default_log_groups(self.environment)
            return [CloudWatchLogs(g) for g in groups]
        found: list[LogSource] = []
        pg_log = self.pg_log_file or self._probed_database()[1]
        if pg_log:
            found.append(PostgresLogFile(pg_log))
        if self.service:
            found.append(ContainerLogs(self.service))
        return found

    def platform_changes(self, start: datetime, end: datetime) -> list[Change]:
        """Rollouts seen in the deploy target's own service events (its platform reads them),
        and in the ECS events an EventBridge rule ships to a log group."""
        from sage_ops.incidents.evidence.cloudwatch_logs import CloudWatchLogs

        target = service_url(self.ecs_service) if self.ecs_service else self.deploy_target
        events = open_deployer(target).service_events() if target else []
        if self.ecs_events_log_group:
            group = CloudWatchLogs(self.ecs_events_log_group, pattern=ecs_events.LOG_FILTER)
            lines = group.lines(start, end).itertuples()
            parsed = (ecs_events.parse_event(r.timestamp.to_pydatetime(), r.message) for r in lines)
            events += [e for e in parsed if e is not None]
        return rollouts(events, self.environment)

    def notifier(self, log: Callable[[str], None]) -> Notifier:
        return SnsNotifier(self.sns_topic_arn) if self.sns_topic_arn else RunLogNotifier(log)

    def probe_targets(self) -> "ProbeTargets":
        from sage_ops.incidents.evidence.local_alarms import ProbeTargets

        return ProbeTargets(self._probed_database()[0], self.health_url, self.service)

    def _cloudwatch(self) -> bool:
        if self.source not in (CLOUDWATCH, LOCAL):
            raise ConfigError(
                f"SAGE_OPS_ALARM_SOURCE must be {CLOUDWATCH} or {LOCAL} (got {self.source!r})"
            )
        return self.source == CLOUDWATCH

    def _history(self) -> "ProbeHistory":
        from sage_ops.incidents.evidence.probe_history import ProbeHistory

        return ProbeHistory(Path(self.history_path or state_dir() / "incidents" / "probes.sqlite"))

    def _probed_database(self) -> tuple[PgTarget | None, str | None]:
        """The probed database and its server's log: the URL in database_url_env, else the
        embedded server if it runs (with its log file)."""
        if self._cloudwatch():
            return None, None
        target = PgTarget.from_env(self.database_url_env)
        if target is not None:
            return target, None
        from sage_ops import embedded

        if not (embedded.data_dir() / "postmaster.pid").exists():
            return None, None  # never start a server from a sensor tick
        return embedded.embedded_target(), str(embedded.data_dir() / "log")

    @classmethod
    def from_env(cls) -> "IncidentConfig":
        """The one place incident settings are read from the environment (names in _ENV; an
        empty variable counts as unset)."""
        env = {name: value for name, value in os.environ.items() if value}
        values = read(_ENV, _PARSE, env)
        target = f"SAGE_OPS_{str(values.get('environment', 'production')).upper()}_TARGET"
        values.update(read({"deploy_target": target}, {}, env))
        return cls(**values)


def default_log_groups(environment: str) -> tuple[str, ...]:
    """The Terraform stack's names (infra/terraform/main.tf): the service's and the database's."""
    return (
        f"/ecs/sage-{environment}/backend",
        f"/aws/rds/instance/sage-{environment}-postgres/postgresql",
    )


_ENV = {
    "source": "SAGE_OPS_ALARM_SOURCE",
    "alarm_prefix": "SAGE_OPS_ALARM_PREFIX",
    "environment": "SAGE_OPS_ENVIRONMENT",
    "log_groups": "SAGE_OPS_LOG_GROUPS",
    "sns_topic_arn": "SAGE_OPS_SNS_TOPIC_ARN",
    "health_url": "SAGE_OPS_HEALTH_URL",
    "service": "SAGE_OPS_SERVICE",
    "pg_log_file": "SAGE_OPS_PG_LOG_FILE",
    "probe_period_s": "SAGE_OPS_PROBE_PERIOD_S",
    "deploy_window_minutes": "SAGE_OPS_DEPLOY_WINDOW_MINUTES",
    "service_tasks": "SAGE_OPS_SERVICE_TASKS",
    "db_pool_size": "SAGE_OPS_DB_POOL_SIZE",
    "task_vcpus": "SAGE_OPS_TASK_VCPUS",
    "db_max_connections": "SAGE_OPS_DB_MAX_CONNECTIONS",
    "deploy_max_percent": "SAGE_OPS_DEPLOY_MAX_PERCENT",
    "dagster_url": "SAGE_OPS_DAGSTER_URL",
    "llm_model": "SAGE_OPS_LLM_MODEL",
    "ecs_service": "SAGE_OPS_ECS_SERVICE",
    "ecs_events_log_group": "SAGE_OPS_ECS_EVENTS_LOG_GROUP",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
}


_PARSE: dict[str, Parse] = {
    "log_groups": listed,
    "probe_period_s": integer,
    "deploy_window_minutes": integer,
    "service_tasks": integer,
    "db_pool_size": integer,
    "task_vcpus": number,
    "db_max_connections": integer,
    "deploy_max_percent": integer,
    # An EnvVar is resolved in the run; the UI shows its name, never its value.
    "anthropic_api_key": lambda raw: EnvVar("ANTHROPIC_API_KEY"),
}
