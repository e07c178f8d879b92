"""The nightly backup graph: db_backup -> backup_verified (blocking check) -> backup_retention."""

from datetime import timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    DailyPartitionsDefinition,
    DataVersion,
    DefaultScheduleStatus,
    Definitions,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    build_schedule_from_partitioned_job,
    define_asset_job,
    in_process_executor,
)

from sage_ops.backups.catalog import manifest_of_run
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.retention import apply_retention
from sage_ops.backups.verify import verify_backup
from sage_ops.resources import DATABASE_POOL, DATABASE_WRITER_TAG, BackupConfig, operator_errors

daily = DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
# db_backup goes late when no backup ran for 26 h; backup_retention, which materializes only
# after the blocking verification passed, when no *verified* backup was made for 26 h.
late_after_26h = FreshnessPolicy.time_window(fail_window=timedelta(hours=26))


@asset(
    partitions_def=daily,
    group_name="backups",
    kinds={"postgres"},
    pool=DATABASE_POOL,
    freshness_policy=late_after_26h,
    description="pg_dump of DATABASE_URL, streamed through gzip and SHA-256 into the backup "
    "store as backup_YYYYMMDD_HHMMSS.sql.gz with a JSON manifest. Late after 26 h.",
)
def db_backup(context: AssetExecutionContext, backups: BackupConfig) -> MaterializeResult:
    settings = backups.settings()

    def progress(raw: int, stored: int, seconds: float) -> None:
        context.log.info(
            f"dump progress: {raw / 1e6:,.0f} MB read, {stored / 1e6:,.0f} MB stored, "
            f"{raw / 1e6 / max(seconds, 1e-3):,.1f} MB/s"
        )

    with operator_errors():
        target = settings.target()
        store = settings.store()
        options = DumpOptions(fmt=settings.backup_format, level=settings.compression_level)
        manifest = backup_database(target, store, options, context.run.run_id, progress)
    context.log.info(manifest.tool_choice)
    return MaterializeResult(
        metadata={
            "location": MetadataValue.url(store.location(manifest.key)),
            "key": manifest.key,
            "database": manifest.database,
            "format": manifest.format,
            "size_bytes": manifest.size,
            "raw_bytes": manifest.raw_bytes,
            "duration_s": manifest.duration_s,
            "throughput_mb_s": round(manifest.raw_bytes / 1e6 / max(manifest.duration_s, 1e-3), 1),
            "sha256": manifest.sha256,
            "row_counts": MetadataValue.json(manifest.row_counts),
            "pg_dump": manifest.tool_choice,
            "server_version": manifest.server_version,
        },
        data_version=DataVersion(manifest.sha256),
    )


@asset_check(
    asset=db_backup,
    blocking=True,
    description="The stored object's SHA-256 matches its manifest and (at the full level) the "
    "backup restores into a scratch database with the same row count in every table.",
)
def backup_verified(context: AssetCheckExecutionContext, backups: BackupConfig) -> AssetCheckResult:
    settings = backups.settings()
    with operator_errors():
        store = settings.store()
        manifest = manifest_of_run(store, context.run.run_id)
        target = settings.target()
        scratch = settings.scratch_server(target)
        report = verify_backup(store, manifest, settings.verify_level, scratch, context.run.run_id)
    return AssetCheckResult(
        passed=report.passed,
        description=report.detail,
        metadata={
            "key": manifest.key,
            "level": report.level,
            "detail": report.detail,
            "scratch_server": scratch.redacted,
            "restored_row_counts": MetadataValue.json(report.restored_row_counts),
        },
    )


@asset(
    partitions_def=daily,
    deps=[db_backup],
    group_name="backups",
    kinds={"postgres"},
    pool=DATABASE_POOL,
    freshness_policy=late_after_26h,
    description="Keeps the newest SAGE_OPS_BACKUP_KEEP verified backups (by manifest time) and "
    "deletes older ones that sage_ops published. Runs only after a verified new backup, so it "
    "goes late when the newest verified backup is older than 26 h.",
)
def backup_retention(context: AssetExecutionContext, backups: BackupConfig) -> MaterializeResult:
    settings = backups.settings()
    with operator_errors():
        store = settings.store()
        database = settings.target().redacted
        result = apply_retention(store, settings.backup_keep, database)
    context.log.info(f"retention kept {len(result.kept)}, deleted {len(result.deleted)}")
    return MaterializeResult(
        metadata={
            "keep": settings.backup_keep,
            "kept": MetadataValue.json(result.kept),
            "deleted": MetadataValue.json(result.deleted),
            "corrupt": MetadataValue.json(result.corrupt),
            "unverified_left_alone": MetadataValue.json(result.unverified),
        }
    )


nightly_backup = define_asset_job(
    "nightly_backup",
    selection=[db_backup, backup_retention],
    partitions_def=daily,
    tags=DATABASE_WRITER_TAG,
    executor_def=in_process_executor,
    description="Back up the database, verify the backup, then apply retention.",
)

nightly_backup_schedule = build_schedule_from_partitioned_job(
    nightly_backup,
    name="nightly_backup_schedule",
    hour_of_day=3,
    minute_of_hour=0,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 03:00 UTC, for the day that just ended.",
)

defs = Definitions(
    assets=[db_backup, backup_retention],
    asset_checks=[backup_verified],
    jobs=[nightly_backup],
    schedules=[nightly_backup_schedule],
)
