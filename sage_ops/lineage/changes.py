"""What changed the system: deployments and migrations, read from this Dagster instance's runs
and materializations (public Dagster APIs). Incident triage correlates them with an episode."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sage_ops.lineage.metadata import COMMIT, ENVIRONMENT, IMAGE, SKIPPED
from sage_ops.lineage.names import (
    MIGRATE_DATABASE,
    ROLLBACK_DEPLOYMENT,
    deployment_asset,
    schema_asset,
)
from sage_ops.lineage.tags import COMMIT_TAG, DEPLOY_LOCK, DEPLOY_LOCK_TAG, environment_tag

if TYPE_CHECKING:  # Dagster is imported by the readers only: Change alone is read by triage's CLI
    from dagster import DagsterInstance, DagsterRun, RunRecord

FINISHED = ("SUCCESS", "FAILURE", "CANCELED")  # DagsterRunStatus values
DEPLOYMENT = "deployment"
MIGRATION = "migration"
IN_PROGRESS, SUCCESS, FAILURE, ROLLED_BACK = "IN_PROGRESS", "SUCCESS", "FAILURE", "ROLLED_BACK"
# A change's status in an operator's words, where it is not plain success.
STATE_WORDS = {IN_PROGRESS: "in progress", FAILURE: "failed", ROLLED_BACK: "rolled back"}
RECORDED = "dagster"  # Change.source of what this instance recorded


@dataclass(frozen=True)
class Change:
    kind: str  # deployment | migration
    name: str  # asset, job or ECS service that recorded it
    finished_at: datetime | None  # None: still in progress
    run_id: str  # Dagster run id, or the ECS deployment id
    status: str = SUCCESS
    environment: str = ""
    commit: str = ""
    image: str = ""
    started_at: datetime | None = None
    source: str = RECORDED  # or the platform whose events saw a deploy sage_ops did not make

    @property
    def at(self) -> datetime:
        """When it took effect: finished, else started."""
        return self.finished_at or self.started_at  # type: ignore[return-value]


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
    from dagster import DagsterRunStatus, RunsFilter

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
        RunsFilter(
            job_name=MIGRATE_DATABASE,
            statuses=[DagsterRunStatus(s) for s in FINISHED],
            updated_after=since,
        ),
        limit=100,
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
    from dagster import AssetKey, AssetRecordsFilter

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
        if SKIPPED in meta:
            continue  # the deploy pipeline's "nothing to do" materializations
        changes.append(
            Change(
                kind=kind,
                name=key,
                finished_at=_utc(record.timestamp),
                run_id=record.run_id,
                environment=meta.get(ENVIRONMENT, ""),
                commit=meta.get(COMMIT, ""),
                image=meta.get(IMAGE, ""),
            )
        )
    return changes


def _run_change(record: RunRecord, kind: str) -> Change:
    run = record.dagster_run
    running = run.status.value not in FINISHED
    status = IN_PROGRESS if running else run.status.value
    if run.job_name == ROLLBACK_DEPLOYMENT and not running:
        status = ROLLED_BACK if run.status.value == "SUCCESS" else status
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
