"""The nightly_backup job as Dagster runs it: assets, blocking check, retention, metadata."""

import os
import time
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DefaultScheduleStatus,
    Definitions,
    EnvVar,
    build_schedule_context,
    serialize_value,
)

from sage_ops.backups import defs as backups
from sage_ops.backups.catalog import load_manifests
from sage_ops.backups.resources import BackupConfig


def _run(config: BackupConfig, instance: DagsterInstance):
    definitions = Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
    job = definitions.resolve_job_def("nightly_backup")
    return job.execute_in_process(instance=instance, raise_on_error=False)


def _config(store, **overrides) -> BackupConfig:
    values = dict(backup_url=store.url, keep=2, verify_level="full")
    values.update(overrides)
    return BackupConfig(**values)


def _event_log_text(instance: DagsterInstance, run_id: str) -> str:
    return "\n".join(serialize_value(entry) for entry in instance.all_logs(run_id))


def test_nightly_backup_run_publishes_verifies_and_applies_retention(
    password_server, store, monkeypatch, publish
):
    url = password_server.redacted.replace("***", password_server.password)
    monkeypatch.setenv("DATABASE_URL", url)
    config = _config(store, database_url=EnvVar("DATABASE_URL"))
    database = password_server.redacted
    older = [publish(store, days_ago=d, database=database) for d in (1, 2)]
    instance = DagsterInstance.ephemeral()

    result = _run(config, instance)

    assert result.success
    backup = result.asset_materializations_for_node("db_backup")[0]
    meta = backup.metadata
    assert {
        "location",
        "size_bytes",
        "duration_s",
        "throughput_mb_s",
        "sha256",
        "row_counts",
    } <= set(meta)
    assert backup.partition is None
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [
        ("backup_verified", True),
        ("backup_store_clean", True),
    ]
    retention = result.asset_materializations_for_node("backup_retention")[0].metadata
    manifests, _ = load_manifests(store, database)
    assert (
        [m.key for m in manifests] == retention["kept"].value == [meta["key"].value, older[0].key]
    )
    assert retention["deleted"].value == [older[1].key]
    assert password_server.password not in _event_log_text(instance, result.run_id)


def test_failed_verification_blocks_retention(source_db, store, publish, monkeypatch):
    database = source_db.redacted
    older = [publish(store, days_ago=d, database=database) for d in (1, 2, 3)]
    config = _config(
        store,
        database_url=source_db.redacted,
        scratch_database_url="postgresql://postgres@127.0.0.1:1/postgres",  # nothing listens
        keep=1,
    )
    result = _run(config, DagsterInstance.ephemeral())

    # The full verification restores while dumping: a scratch that cannot restore fails the
    # backup itself, and nothing new is published.
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "cannot connect" in failure.step_failure_data.error.message
    assert result.asset_materializations_for_node("backup_retention") == []
    present = {o.key for o in store.objects()}
    assert all(m.key in present for m in older) and len(present) == 2 * len(older)


def test_failure_names_the_cause(store):
    config = _config(store, database_url="postgresql://app:hunter2@127.0.0.1:1/sage")
    instance = DagsterInstance.ephemeral()
    result = _run(config, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.message
    assert "DatabaseError: cannot connect to postgresql://app:***@127.0.0.1:1/sage" in message
    assert "hunter2" not in _event_log_text(instance, result.run_id)
    assert list(store.objects()) == []


def test_definitions_schedule_and_freshness_without_partitions():
    from sage_ops.definitions import defs

    schedule = defs.resolve_schedule_def("nightly_backup_schedule")
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("nightly_backup")
    assert job.partitions_def is None  # nothing for a backfill to offer
    assert all(a.partitions_def is None for a in (backups.db_backup, backups.backup_retention))
    assert job.tags["sage_ops/database-writer"] == "primary"
    spec = backups.db_backup.specs_by_key[AssetKey("db_backup")]
    assert spec.freshness_policy is not None
    assert spec.freshness_policy.fail_window.to_timedelta() == timedelta(hours=26)


def test_the_schedule_launches_one_run_per_day_tagged_with_the_day():
    """The day is the run key: Dagster launches one run per run key of a schedule, so a tick
    evaluated again after a daemon restart takes no second backup that night."""
    from sage_ops.definitions import defs

    schedule = defs.resolve_schedule_def("nightly_backup_schedule")

    def requested(day: int) -> list[tuple[str | None, str]]:
        tick = build_schedule_context(
            scheduled_execution_time=datetime(2026, 11, day, 3, tzinfo=UTC)
        )
        requests = schedule.evaluate_tick(tick).run_requests or []
        assert all(r.partition_key is None for r in requests)
        return [(r.run_key, r.tags["sage_ops/scheduled_day"]) for r in requests]

    assert requested(26) == requested(26) == [("2026-11-26", "2026-11-26")]
    assert requested(27) == [("2026-11-27", "2026-11-27")]


def test_check_run_on_its_own_verifies_the_newest_backup(source_db, store):
    """The UI's "Execute" on backup_verified runs the check without a new backup."""
    from sage_ops.backups.dump import backup_database

    manifest = backup_database(source_db, store)
    config = _config(store, database_url=source_db.redacted, verify_level="checksum")
    definitions = Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
    job = definitions.resolve_implicit_global_asset_job_def()
    check_only = job.get_subset(
        asset_check_selection={backups.backup_verified.check_key}, asset_selection=set()
    )
    result = check_only.execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["key"].value == manifest.key


def test_future_dated_backup_never_pushes_out_tonights_and_is_flagged(source_db, store, publish):
    """Issue 10.5: clock skew plus KEEP=1 used to delete the backup the run had just taken."""
    database = source_db.redacted
    future = publish(store, days_ago=-400, database=database)  # dated 2027-10
    older = publish(store, days_ago=1, database=database)
    config = _config(store, database_url=database, keep=1, verify_level="checksum")
    instance = DagsterInstance.ephemeral()

    result = _run(config, instance)

    assert result.success
    tonight = result.asset_materializations_for_node("db_backup")[0].metadata["key"].value
    keys = {o.key for o in store.objects()}
    assert tonight in keys and future.key in keys and older.key not in keys
    retention = result.asset_materializations_for_node("backup_retention")[0].metadata
    assert retention["kept"].value == [tonight]
    assert retention["future_dated"].value == [future.key]
    [flag] = [
        c for c in result.get_asset_check_evaluations() if c.check_name == "backup_store_clean"
    ]
    assert not flag.passed and future.key in flag.description
    assert f"{future.key} is dated in the future" in _event_log_text(instance, result.run_id)


def test_stale_partial_files_are_removed_and_a_running_one_is_left_alone(source_db, store, publish):
    store.root.mkdir(parents=True)
    stale = store.root / "backup_20261101_030000.sql.gz.partial"  # a killed backup's leftover
    stale.write_bytes(b"half a dump")
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    fresh = store.root / "backup_20261201_025959.sql.gz.partial"  # written a moment ago
    fresh.write_bytes(b"a dump in progress elsewhere")
    running = store.open_writer("backup_20261101_040000.sql.gz")  # a live writer, idle for days
    running.write(b"still writing")
    os.utime(running.tmp, (time.time() - 2 * 86400,) * 2)
    config = _config(store, database_url=source_db.redacted, keep=1, verify_level="checksum")
    try:
        result = _run(config, DagsterInstance.ephemeral())
        assert result.success
        assert not stale.exists() and fresh.exists() and running.tmp.exists()
        metadata = result.asset_materializations_for_node("db_backup")[0].metadata
        assert metadata["stale_partials_removed"].value == [stale.name]
    finally:
        running.abort()
