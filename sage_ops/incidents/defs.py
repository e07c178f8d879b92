"""Incidents: `alarm_sensor` -> job `incident_triage` -> asset `incident_report` (one partition
per alarm episode), with the related deployments and migrations read from this Dagster instance.
"""

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dagster import (
    AddDynamicPartitionsRequest,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    DefaultSensorStatus,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    in_process_executor,
    sensor,
)

from sage_ops.errors import SageOpsError
from sage_ops.incidents.alarms.alarm import parse_episode_key
from sage_ops.incidents.alarms.transitions import evaluate_tick
from sage_ops.incidents.errors import UnknownAlarm
from sage_ops.incidents.evidence.changes import not_made_by_sage_ops
from sage_ops.incidents.reports.llm_summary import llm_summary
from sage_ops.incidents.resources import IncidentConfig
from sage_ops.lineage.changes import recent_changes
from sage_ops.lineage.effects import READS, effect
from sage_ops.lineage.failures import operator_errors
from sage_ops.lineage.names import (
    INCIDENT_TRIAGE,
    OWNERS,
    ROLLBACK_DEPLOYMENT,
)

if TYPE_CHECKING:
    from sage_ops.incidents.reports import report
    from sage_ops.incidents.triage import Triage

# The triage and its report (pandas, about 1 s of imports) load in the run that triages, not in
# every process that loads these definitions (each run's container, the code server, the daemon).

GROUP = "incidents"
ALARM_TAG, ALARM_REASON_TAG = "sage_ops/alarm", "sage_ops/alarm_reason"

incident_partitions = DynamicPartitionsDefinition(name="incidents")


@asset(
    partitions_def=incident_partitions,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas"},
    tags=effect(READS),
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
    from sage_ops.incidents.reports import report

    name, started = parse_episode_key(context.partition_key)
    with operator_errors():
        result = _triage(context, incidents, name, started)
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
        incidents.anthropic_base_url,
    )
    context.log.info(llm.note)
    notified, delivery = _notify(context, incidents, result, links)
    return MaterializeResult(
        metadata=_metadata(result, report.markdown(result, links, llm.text, llm.note), delivery),
        check_results=_checks(result, notified, delivery),
    )


def _triage(
    context: AssetExecutionContext, incidents: IncidentConfig, name: str, started: datetime
) -> "Triage":
    from sage_ops.incidents.triage import triage

    source = incidents.alarm_source()
    alarm = source.alarm(name)
    if alarm is None:
        raise UnknownAlarm(
            f"alarm {name!r} is not among the {source.kind} alarms with prefix "
            f"{incidents.alarm_prefix!r} (renamed or deleted since the episode?)"
        )
    reason = context.run.tags.get(ALARM_REASON_TAG)
    if reason:
        alarm = replace(alarm, reason=reason)  # the reason when it fired, not now
    since = started - incidents.window.lookback - incidents.window.deploy
    now = datetime.now(UTC)
    changes = recent_changes(context.instance, since, incidents.environment)
    context.log.info(f"{len(changes)} deployment(s)/migration(s) since {since:%Y-%m-%d %H:%M} UTC")
    gaps: list[str] = []
    try:
        changes += not_made_by_sage_ops(incidents.platform_changes(since, now), changes, now)
    except SageOpsError as exc:
        gaps.append(f"service events unavailable: {exc}")
    return triage(
        alarm,
        started,
        incidents.metric_source(source),
        incidents.log_sources(),
        changes,
        incidents.budget,
        now,
        incidents.window,
        gaps,
    )


def _notify(
    context: AssetExecutionContext,
    incidents: IncidentConfig,
    result: "Triage",
    links: "report.Links",
) -> tuple[bool, str]:
    from sage_ops.incidents.reports import report

    try:
        where = incidents.notifier(context.log.warning).send(
            report.subject(result), report.text(result, links)
        )
    except SageOpsError as exc:
        context.log.error(f"{type(exc).__name__}: {exc}")
        return False, str(exc)
    return True, where


def _metadata(result: "Triage", markdown: str, delivery: str) -> dict[str, Any]:
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


def _checks(result: "Triage", notified: bool, delivery: str) -> list[AssetCheckResult]:
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
        alarms = incidents.alarm_source().alarms()
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
)
