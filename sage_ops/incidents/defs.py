"""Incidents: `alarm_sensor` -> job `incident_triage` -> asset `incident_report` (one partition
per alarm episode), with the related deployments and migrations read from this Dagster instance.
"""

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import (
    AddDynamicPartitionsRequest,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    ConfigurableResource,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    DynamicPartitionsDefinition,
    EnvVar,
    MaterializeResult,
    MetadataValue,
    RunRecord,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    in_process_executor,
    sensor,
)

from sage_ops.errors import SageOpsError
from sage_ops.incidents import report
from sage_ops.incidents.alarms import parse_episode_key
from sage_ops.incidents.budget import ConnectionBudget
from sage_ops.incidents.changes import (
    DEPLOYMENT,
    IN_PROGRESS,
    MIGRATION,
    ROLLED_BACK,
    Change,
)
from sage_ops.incidents.ecs_events import not_made_by_sage_ops
from sage_ops.incidents.errors import UnknownAlarm
from sage_ops.incidents.llm_summary import DEFAULT_MODEL, llm_summary
from sage_ops.incidents.sources import (
    IncidentSettings,
    alarm_source,
    ecs_changes,
    log_sources,
    metric_source,
    notifier,
)
from sage_ops.incidents.transitions import evaluate_tick
from sage_ops.incidents.triage import Triage, Window, triage
from sage_ops.lineage.failures import operator_errors
from sage_ops.lineage.names import (
    INCIDENT_TRIAGE,
    MIGRATE_DATABASE,
    OWNERS,
    ROLLBACK_DEPLOYMENT,
    deployment_asset,
    schema_asset,
)
from sage_ops.lineage.tags import COMMIT_TAG, DEPLOY_LOCK, DEPLOY_LOCK_TAG, environment_tag
from sage_ops.postgres import PgTarget
from sage_ops.state import state_dir

GROUP = "incidents"
ALARM_TAG, ALARM_REASON_TAG = "sage_ops/alarm", "sage_ops/alarm_reason"
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]

incident_partitions = DynamicPartitionsDefinition(name="incidents")


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


@asset(
    partitions_def=incident_partitions,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas"},
    check_specs=[
        AssetCheckSpec(
            "root_cause_named",
            asset="incident_report",
            description="A rule named the cause (warns when the evidence matched no rule).",
        ),
        AssetCheckSpec(
            "incident_notified",
            asset="incident_report",
            description="The report reached SNS (production) or the run log (local).",
        ),
    ],
    description="Triage of one alarm episode (partition `<alarm>@<UTC time>`): metrics and error "
    "logs around it, log templates, the most likely root cause with fixes, the deployments and "
    "migrations just before it; sent to SNS or the run log.",
)
def incident_report(context: AssetExecutionContext, incidents: IncidentConfig) -> MaterializeResult:
    name, started = parse_episode_key(context.partition_key)
    with operator_errors():
        settings = incidents.settings()
        result = _triage(context, settings, name, started)
    links = report.Links(
        run=f"{incidents.dagster_url}/runs/{context.run.run_id}",
        rollback=f"{incidents.dagster_url}/locations/{_location(context)}/jobs/{ROLLBACK_DEPLOYMENT}/playground",
        environment=incidents.environment,
    )
    llm = llm_summary(
        report.llm_facts(result),
        incidents.anthropic_api_key,
        incidents.llm_model,
        incidents.llm_timeout_s,
        os.environ.get("ANTHROPIC_BASE_URL") or None,
    )
    context.log.info(llm.note)
    notified, delivery = _notify(context, settings, result, links)
    return MaterializeResult(
        metadata=_metadata(result, report.markdown(result, links, llm.text, llm.note), delivery),
        check_results=_checks(result, notified, delivery),
    )


def _triage(
    context: AssetExecutionContext, settings: IncidentSettings, name: str, started: datetime
) -> Triage:
    source = alarm_source(settings)
    alarm = source.alarm(name)
    if alarm is None:
        raise UnknownAlarm(
            f"alarm {name!r} is not among the {source.kind} alarms with prefix "
            f"{settings.alarm_prefix!r} (renamed or deleted since the episode?)"
        )
    reason = context.run.tags.get(ALARM_REASON_TAG)
    if reason:
        alarm = replace(alarm, reason=reason)  # the reason when it fired, not now
    since = started - settings.window.lookback - settings.window.deploy
    now = datetime.now(UTC)
    changes = recent_changes(context.instance, since, settings.environment)
    context.log.info(f"{len(changes)} deployment(s)/migration(s) since {since:%Y-%m-%d %H:%M} UTC")
    gaps: list[str] = []
    try:
        changes += not_made_by_sage_ops(ecs_changes(settings, since, now), changes, now)
    except SageOpsError as exc:
        gaps.append(f"ECS service events unavailable: {exc}")
    return triage(
        alarm,
        started,
        metric_source(settings, source),
        log_sources(settings),
        changes,
        settings.budget,
        now,
        settings.window,
        gaps,
    )


def _notify(
    context: AssetExecutionContext, settings: IncidentSettings, result: Triage, links: report.Links
) -> tuple[bool, str]:
    try:
        where = notifier(settings, context.log.warning).send(
            report.subject(result), report.text(result, links)
        )
    except SageOpsError as exc:
        context.log.error(f"{type(exc).__name__}: {exc}")
        return False, str(exc)
    return True, where


def _metadata(result: Triage, markdown: str, delivery: str) -> dict[str, Any]:
    primary = result.primary
    return {
        "report": MetadataValue.md(markdown),
        "root_cause": primary.title,
        "rule": primary.key,
        "confidence": primary.confidence,
        "alarm": result.alarm.name,
        "metric": result.alarm.metric,
        "episode_start": MetadataValue.timestamp(result.started),
        "error_lines": result.error_lines,
        "top_templates": MetadataValue.json(
            result.templates.head(10)[["template", "count", "starts_vs_alarm_s"]].to_dict("records")
        ),
        "suspect_changes": MetadataValue.json([c.describe() for c in result.changes if c.flagged]),
        "connection_budget": MetadataValue.json(result.budget.arithmetic()),
        "notified": delivery,
        "gaps": MetadataValue.json(result.gaps),
    }


def _checks(result: Triage, notified: bool, delivery: str) -> list[AssetCheckResult]:
    named = result.primary.key != "unknown"
    return [
        AssetCheckResult(
            check_name="root_cause_named",
            passed=named,
            severity=AssetCheckSeverity.WARN,
            description=result.primary.title,
        ),
        AssetCheckResult(
            check_name="incident_notified",
            passed=notified,
            severity=AssetCheckSeverity.ERROR,
            description=delivery,
        ),
    ]


def _location(context: AssetExecutionContext) -> str:
    origin = context.run.remote_job_origin
    return origin.location_name if origin else "sage_ops.definitions"


def recent_changes(instance: DagsterInstance, since: datetime, environment: str) -> list[Change]:
    """Deployments to `environment` and migrations recorded in this instance since `since`.

    Deploy runs are found by the deploy-lock tag every deploy job carries (sage_ops.lineage.tags),
    whatever their status: in progress, failed and rolled back included. A run touched the
    environment when its `<environment>_deployment` step started (its start and end times are the
    rollout's), when it is a rollback_deployment of that environment, or when it carries the
    environment's digest tag (written once a rollout completed). `<environment>_deployment` and
    `<environment>_schema` materializations add the commit, the image and the migrations;
    `migrate_database` runs are migrations launched by hand.
    """
    runs = instance.get_run_records(
        RunsFilter(tags={DEPLOY_LOCK_TAG: DEPLOY_LOCK}, updated_after=since), limit=200
    )
    found = {
        change.run_id: change
        for record in runs
        if (change := _deploy_change(instance, record, environment)) is not None
    }
    for change in _materialized(instance, deployment_asset(environment), DEPLOYMENT, since):
        base = found.get(change.run_id)
        if base:  # the run gives the status and the times; the metadata what was deployed
            change = replace(
                base, commit=change.commit or base.commit, image=change.image or base.image
            )
        found[change.run_id] = change
    migrations = instance.get_run_records(
        RunsFilter(job_name=MIGRATE_DATABASE, statuses=FINISHED, updated_after=since), limit=100
    )
    changes = [
        *found.values(),
        *_materialized(instance, schema_asset(environment), MIGRATION, since),
        *(_run_change(r, MIGRATION) for r in migrations),
    ]
    return [c for c in changes if c.finished_at is None or c.finished_at >= since]


def _deploy_change(instance: DagsterInstance, record: RunRecord, environment: str) -> Change | None:
    run = record.dagster_run
    step = deployment_asset(environment)
    starts = [
        (s.start_time, s.end_time)
        for s in instance.get_run_step_stats(run.run_id, [step])
        if s.start_time
    ]
    tagged = environment_tag(environment) in run.tags
    if not (starts or _rollback_environment(run) == environment or tagged):
        return None
    change = _run_change(record, DEPLOYMENT)
    for start, end in starts[:1]:
        change = replace(
            change,
            name=step,
            started_at=_utc(start),
            finished_at=_utc(end) if end else change.finished_at,
        )
    digest = run.tags.get(environment_tag(environment), "")
    return replace(change, environment=environment, image=digest)


def _rollback_environment(run: DagsterRun) -> str | None:
    if run.job_name != ROLLBACK_DEPLOYMENT:
        return None
    config: Any = run.run_config
    return config.get("ops", {}).get("rollback_op", {}).get("config", {}).get("environment")


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _materialized(instance: DagsterInstance, key: str, kind: str, since: datetime) -> list[Change]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(key), after_timestamp=since.timestamp()), limit=100
    ).records
    changes = []
    for record in records:
        materialization = record.asset_materialization
        meta = (
            {k: str(v.value) for k, v in materialization.metadata.items()}
            if materialization
            else {}
        )
        if "skipped" in meta:
            continue  # the deploy pipeline's "nothing to do" materializations
        changes.append(
            Change(
                kind=kind,
                name=key,
                finished_at=_utc(record.timestamp),
                run_id=record.run_id,
                environment=meta.get("environment", ""),
                commit=meta.get("commit", ""),
                image=meta.get("image", ""),
            )
        )
    return changes


def _run_change(record: RunRecord, kind: str) -> Change:
    run = record.dagster_run
    running = run.status not in FINISHED
    status = IN_PROGRESS if running else run.status.value
    if run.job_name == ROLLBACK_DEPLOYMENT and not running:
        status = ROLLED_BACK if run.status == DagsterRunStatus.SUCCESS else status
    return Change(
        kind=kind,
        name=run.job_name,
        finished_at=None
        if running
        else _utc(record.end_time or record.update_timestamp.timestamp()),
        run_id=run.run_id,
        status=status,
        commit=run.tags.get(COMMIT_TAG, ""),
        started_at=_utc(record.start_time) if record.start_time else None,
    )


incident_triage = define_asset_job(
    INCIDENT_TRIAGE,
    selection=[incident_report],
    executor_def=in_process_executor,
    description="Triage one alarm episode into an incident_report and notify.",
)


@sensor(
    job=incident_triage,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Opens one incident_triage run per alarm episode: on each transition into "
    "ALARM (CloudWatch alarms with SAGE_OPS_ALARM_PREFIX, or the local probes).",
)
def alarm_sensor(context: SensorEvaluationContext, incidents: IncidentConfig) -> SensorResult:
    with operator_errors():
        alarms = alarm_source(incidents.settings()).alarms()
    tick = evaluate_tick(alarms, context.cursor)
    keys = [a.episode_key for a in tick.fired]
    for alarm in tick.fired:
        context.log.info(f"{alarm.name} entered ALARM at {alarm.changed_at:%H:%M:%S} UTC")
    if not keys:
        return SensorResult(
            skip_reason=f"{tick.in_alarm} of {tick.watched} alarms in ALARM, no new episode",
            cursor=tick.cursor,
        )
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=alarm.episode_key,
                partition_key=alarm.episode_key,
                tags={ALARM_TAG: alarm.name, ALARM_REASON_TAG: alarm.reason[:500]},
            )
            for alarm in tick.fired
        ],
        dynamic_partitions_requests=[
            AddDynamicPartitionsRequest(partitions_def_name="incidents", partition_keys=keys)
        ],
        cursor=tick.cursor,
    )


defs = Definitions(
    assets=[incident_report],
    asset_checks=[],
    jobs=[incident_triage],
    sensors=[alarm_sensor],
    resources={"incidents": IncidentConfig.from_env()},
)
