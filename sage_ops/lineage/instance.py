"""Lineage read from Dagster's own event log (SQLite locally, Postgres in production).

This module imports dagster although it is not a defs/resources file: reading the instance's
materializations IS the Dagster API, and there is no second store to put behind an interface.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    EventLogRecord,
    RunsFilter,
)

from sage_ops.errors import SageOpsError
from sage_ops.lineage import metadata
from sage_ops.lineage.metadata import (
    COMMIT,
    IMAGE,
    LAUNCHED_BY,
    MIGRATIONS_APPLIED,
    REVISION,
    ROLLBACK_OF,
)
from sage_ops.lineage.names import (
    APPLIED_MIGRATIONS,
    BACKEND_IMAGE,
    COMMIT_ASSETS,
    DB_BACKUP,
    ENVIRONMENTS,
    PRE_MIGRATION_BACKUP,
    deployment_asset,
    schema_asset,
)
from sage_ops.lineage.records import BackupUse, CommitStory, Deployment, Step
from sage_ops.lineage.tags import COMMIT_TAG, launched_by

SCAN_LIMIT = 500


class LineageError(SageOpsError):
    """The instance holds nothing about what was asked."""


def _records(
    instance: DagsterInstance,
    key: str,
    partitions: list[str] | None = None,
    limit: int = SCAN_LIMIT,
) -> list[EventLogRecord]:
    records_filter = AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=partitions)
    return list(instance.fetch_materializations(records_filter, limit=limit).records)


def _meta(record: EventLogRecord) -> dict[str, Any]:
    event = record.asset_materialization or record.asset_observation
    return {k: v.value for k, v in event.metadata.items()} if event else {}


def _at(record: EventLogRecord) -> str:
    return datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="seconds")


def _step(key: str, record: EventLogRecord) -> Step:
    return Step(asset=key, at=_at(record), run_id=record.run_id, detail=_meta(record))


def materialized_for(
    instance: DagsterInstance, key: str, partition: str, run_id: str
) -> dict[str, Any] | None:
    """Metadata of `key`'s materialization of `partition` by run `run_id` (its last, read from
    that run's own events), else - a later run such as a promotion or a re-check - the
    partition's latest; None when the partition has none."""
    wanted = AssetKey(key)
    found = None
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        event = entry.asset_materialization
        if event and event.asset_key == wanted and event.partition == partition:
            found = event
    if found is not None:
        return {k: v.value for k, v in found.metadata.items()}
    records = _records(instance, key, [partition], limit=1)
    return _meta(records[0]) if records else None


def open_instance() -> DagsterInstance:
    """The instance DAGSTER_HOME points at (the repo root locally: its dagster.yaml)."""
    if not os.environ.get("DAGSTER_HOME"):
        raise LineageError(
            "set DAGSTER_HOME to the Dagster instance's home (the repo root locally)"
        )
    return DagsterInstance.get()


def check_instance(instance: DagsterInstance) -> None:
    if not instance.get_run_records(limit=1):
        raise LineageError("this Dagster instance has no runs yet (is DAGSTER_HOME the right one?)")


def what_is_deployed(instance: DagsterInstance, environment: str) -> Deployment:
    records = _records(instance, deployment_asset(environment), limit=1)
    if not records:
        raise LineageError(f"nothing has been deployed to {environment} yet")
    meta = _meta(records[0])
    schema = _records(instance, schema_asset(environment), [str(meta[COMMIT])], limit=1)
    schema_meta = _meta(schema[0]) if schema else {}
    return Deployment(
        environment=environment,
        commit=str(meta[COMMIT]),
        image=str(meta.get(IMAGE, "")),
        revision=str(meta.get(REVISION, "")),
        since=_at(records[0]),
        run_id=records[0].run_id,
        migrations=list(schema_meta.get(MIGRATIONS_APPLIED) or []),
        pre_migration_backup=str(schema_meta.get(metadata.PRE_MIGRATION_BACKUP, "")),
        rollback_of=str(meta.get(ROLLBACK_OF, "")),
        launched_by=str(meta.get(LAUNCHED_BY) or _launcher(instance, records[0].run_id)),
    )


def _launcher(instance: DagsterInstance, run_id: str) -> str:
    """From the run's tags, for deployments recorded before their metadata named it."""
    run = instance.get_run_by_id(run_id)
    return launched_by(run.tags) if run else ""


def commit_story(instance: DagsterInstance, sha: str) -> CommitStory:
    steps = [
        _step(key, record)
        for key in COMMIT_ASSETS
        for record in reversed(_records(instance, key, [sha], limit=20))
    ]
    observed = instance.fetch_observations(
        AssetRecordsFilter(asset_key=AssetKey(BACKEND_IMAGE), asset_partitions=[sha]), limit=5
    ).records
    superseded = next((str(_meta(r).get("status", "")) for r in observed), "")
    runs = [
        {
            "run_id": r.dagster_run.run_id,
            "job": r.dagster_run.job_name,
            "status": r.dagster_run.status.value,
            LAUNCHED_BY: launched_by(r.dagster_run.tags),
        }
        for r in instance.get_run_records(RunsFilter(tags={COMMIT_TAG: sha}))
    ]
    if not steps and not runs and not superseded:
        raise LineageError(f"commit {sha} is unknown: git_push_sensor never selected it")
    steps.sort(key=lambda s: s.at)
    return CommitStory(sha, steps, runs, superseded.removeprefix("superseded by "))


def backup_use(instance: DagsterInstance, key: str) -> BackupUse:
    produced = [
        _step(asset, r)
        for asset in (DB_BACKUP, PRE_MIGRATION_BACKUP)
        for r in _records(instance, asset)
        if _meta(r).get("key") == key
    ]
    relied = [
        _step(asset, r)
        for asset in (APPLIED_MIGRATIONS, *(schema_asset(e) for e in ENVIRONMENTS))
        for r in _records(instance, asset)
        if key in str(_meta(r).get(metadata.PRE_MIGRATION_BACKUP, ""))
    ]
    if not produced and not relied:
        raise LineageError(f"backup {key} is unknown to this instance")
    return BackupUse(key, produced, relied)
