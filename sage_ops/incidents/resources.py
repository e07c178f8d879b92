"""The incidents resource, which is its settings: where alarms come from, what evidence to read,
whom to tell. The environment is read here only (`from_env`); `settings()` resolves it into the
IncidentSettings value the plain triage code takes."""

import os
from datetime import timedelta
from pathlib import Path

from dagster import ConfigurableResource, EnvVar

from sage_ops.incidents.budget import ConnectionBudget
from sage_ops.incidents.llm_summary import DEFAULT_MODEL
from sage_ops.incidents.sources import IncidentSettings
from sage_ops.incidents.window import Window
from sage_ops.postgres import PgTarget
from sage_ops.state import state_dir


class IncidentConfig(ConfigurableResource):
    """Where alarms come from, what evidence to read, whom to tell. See the README's table."""

    source: str = "local"
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
    llm_model: str = DEFAULT_MODEL
    llm_timeout_s: float = 20.0
    history_path: str | None = None
    ecs_service: str | None = None  # cluster/service; default: SAGE_OPS_<ENV>_TARGET if ecs://
    ecs_events_log_group: str | None = None

    def settings(self) -> IncidentSettings:
        database, pg_log = self._database()
        return IncidentSettings(
            source=self.source,
            alarm_prefix=self.alarm_prefix,
            environment=self.environment,
            log_groups=tuple(self.log_groups),
            sns_topic_arn=self.sns_topic_arn,
            database=database,
            health_url=self.health_url,
            service=self.service,
            pg_log_file=self.pg_log_file or pg_log,
            probe_period_s=self.probe_period_s,
            history_path=Path(self.history_path or state_dir() / "incidents" / "probes.sqlite"),
            budget=ConnectionBudget(
                max_connections=self.db_max_connections,
                tasks=self.service_tasks,
                pool_size=self.db_pool_size,
                task_vcpus=self.task_vcpus,
                max_percent=self.deploy_max_percent,
            ),
            window=Window(
                lookback=timedelta(minutes=self.lookback_minutes),
                deploy=timedelta(minutes=self.deploy_window_minutes),
            ),
            ecs_service=self.ecs_service,
            ecs_events_log_group=self.ecs_events_log_group,
        )

    def _database(self) -> tuple[PgTarget | None, str | None]:
        """The probed database: the URL in database_url_env, else the embedded one if it runs."""
        if self.source != "local":
            return None, None
        url = os.environ.get(self.database_url_env)
        if url:
            return PgTarget.from_url(url, self.database_url_env), None
        from sage_ops import embedded

        if not (embedded.data_dir() / "postmaster.pid").exists():
            return None, None  # never start a server from a sensor tick
        return embedded.embedded_target(), str(embedded.data_dir() / "log")

    @classmethod
    def from_env(cls) -> "IncidentConfig":
        env = os.environ
        values: dict[str, object] = {
            "source": env.get("SAGE_OPS_ALARM_SOURCE", "local"),
            "alarm_prefix": env.get("SAGE_OPS_ALARM_PREFIX", "sage-"),
            "environment": env.get("SAGE_OPS_ENVIRONMENT", "production"),
            "log_groups": [g for g in env.get("SAGE_OPS_LOG_GROUPS", "").split(",") if g],
        }
        optional = {
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
        }
        values.update({k: env[v] for k, v in optional.items() if env.get(v)})
        target = env.get(f"SAGE_OPS_{str(values['environment']).upper()}_TARGET", "")
        if "ecs_service" not in values and target.startswith("ecs://"):
            values["ecs_service"] = target.removeprefix("ecs://").split("?")[0]
        if env.get("ANTHROPIC_API_KEY"):
            # An EnvVar is resolved in the run; the UI shows its name, never its value.
            values["anthropic_api_key"] = EnvVar("ANTHROPIC_API_KEY")
        return cls(**values)  # type: ignore[arg-type]
