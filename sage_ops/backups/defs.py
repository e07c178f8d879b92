"""The nightly backup graph: db_backup -> backup_verified (blocking check) -> backup_retention."""

from collections.abc import Mapping
from datetime import UTC, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DataVersion,
    DefaultScheduleStatus,
    Definitions,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    asset,
    asset_check,
    define_asset_job,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from sage_ops.backups.catalog import (
    OnSkip,
    load_manifests,
    run_manifest,
)
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.dump_and_verify import restored_while_dumping
from sage_ops.backups.manifest import FAILED, PASSED, PRE_MIGRATION, Manifest
from sage_ops.backups.resources import BackupConfig
from sage_ops.backups.restore import restore_into
from sage_ops.backups.retention import apply_retention
from sage_ops.backups.selection import BackupChoice, choose_backup, named_source
from sage_ops.backups.store import BackupStore
from sage_ops.backups.unrecorded import sweep_unrecorded
from sage_ops.backups.verify import FULL, VerificationReport, verify_backup
from sage_ops.errors import ConfigError, DatabaseError
from sage_ops.leftover_databases import drop_leftovers
from sage_ops.lineage.effects import BACKS_UP, RESTORES, effect
from sage_ops.lineage.failures import operator_errors
from sage_ops.lineage.names import DATABASE_POOL, NIGHTLY_BACKUP, OWNERS, RESTORE_DATABASE
from sage_ops.lineage.tags import DATABASE_WRITER_TAG, SCHEDULED_DAY_TAG, launched_by
from sage_ops.postgres import SCRATCH, PgTarget
from sage_ops.units import human_bytes, human_seconds

# The backup assets have no partitions: a backup is identified by its own taken-at time (its key
# and manifest), and a run can only back up the database as it is now, so a past day offered as
# a "missing" partition could never be filled in, only backfilled into more backups of today.

# db_backup goes late when no backup ran for 26 h; backup_retention, which materializes only
# after the blocking verification passed, when no *verified* backup was made for 26 h.
late_after_26h = FreshnessPolicy.time_window(fail_window=timedelta(hours=26))
STORE_CLEAN = "backup_store_clean"


@asset(
    group_name="backups",
    owners=OWNERS,
    kinds={"postgres"},
    tags=effect(BACKS_UP),
    pool=DATABASE_POOL,
    freshness_policy=late_after_26h,
    description="pg_dump of DATABASE_URL, streamed through gzip and SHA-256 into the backup "
    "store as backup_YYYYMMDD_HHMMSS.sql.gz with a JSON manifest; at the full verification "
    "level the same stream is restored on the scratch server as it is dumped, and the backup is "
    "published only if that restore has the dump's row counts. Late after 26 h.",
)
def db_backup(context: AssetExecutionContext, backups: BackupConfig) -> MaterializeResult:

    def progress(raw: int, stored: int, seconds: float) -> None:
        context.log.info(
            f"dump progress: {raw / 1e6:,.0f} MB read, {stored / 1e6:,.0f} MB stored, "
            f"{raw / 1e6 / max(seconds, 1e-3):,.1f} MB/s"
        )

    with operator_errors():
        target = backups.target()
        store = backups.store()
        stale = store.remove_stale_partials()  # before the dump: a killed one's space is back
        if stale:
            context.log.warning(f"removed partial files left by killed backups: {stale}")
        for warning in sweep_unrecorded(store).warnings():
            context.log.warning(warning)
        options = DumpOptions(fmt=backups.format, level=backups.compression_level)
        if backups.verify_level == FULL:  # restored while dumping; backup_verified reports it
            scratch = backups.scratch_server(target)
            _drop_scratch_leftovers(scratch, context.log.warning)
            context.log.info(f"restoring into a scratch database on {scratch.redacted} as it dumps")
            manifest, _ = restored_while_dumping(
                target, store, options, scratch, context.run.run_id, progress
            )
        else:
            manifest = backup_database(target, store, options, context.run.run_id, progress)
    context.log.info(manifest.tool_choice)
    return MaterializeResult(
        metadata={
            "stale_partials_removed": MetadataValue.json(stale),
            "location": MetadataValue.url(store.location(manifest.key)),
            "key": manifest.key,
            "taken_at": manifest.started_at,
            "database": manifest.database,
            "format": manifest.format,
            "size_bytes": manifest.size,
            "size": human_bytes(manifest.size),
            "raw_bytes": manifest.raw_bytes,
            "raw_size": human_bytes(manifest.raw_bytes),
            "duration_s": manifest.duration_s,
            "duration": human_seconds(manifest.duration_s),
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
    "backup restores into a scratch database with the same row count in every table: reports "
    "the restore db_backup ran while dumping, or (run on its own) restores the newest backup.",
)
def backup_verified(context: AssetCheckExecutionContext, backups: BackupConfig) -> AssetCheckResult:
    with operator_errors():
        store = backups.store()
        target = backups.target()
        manifest = _backup_to_verify(
            store, context.run.run_id, target.redacted, context.log.warning
        )
        scratch = backups.scratch_server(target)
        _drop_scratch_leftovers(scratch, context.log.warning)
        report = _this_runs_verification(manifest, context.run.run_id) or verify_backup(
            store, manifest, backups.verify_level, scratch, context.run.run_id
        )
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


def _this_runs_verification(manifest: Manifest, run_id: str) -> VerificationReport | None:
    """The full verification db_backup did while dumping, as recorded in the manifest (a
    passed one restored exactly the dump's row counts)."""
    done = manifest.verification
    if done.run_id != run_id or done.level != FULL or done.status not in (PASSED, FAILED):
        return None
    counts = manifest.row_counts if done.status == PASSED else {}
    return VerificationReport(manifest.key, FULL, done.status == PASSED, done.detail or "", counts)


def _drop_scratch_leftovers(scratch: PgTarget, warn: OnSkip) -> None:
    """Scratch databases of killed verifications; an unreachable server is the check's to report."""
    try:
        for db in drop_leftovers(scratch, (SCRATCH,)):
            warn(f"dropped a killed verification's scratch database: {db.describe()}")
    except DatabaseError:
        pass


def _backup_to_verify(store: BackupStore, run_id: str, database: str, warn: OnSkip) -> Manifest:
    """This run's backup; when the check runs on its own (UI "Execute"), the newest one."""
    manifest = run_manifest(store, run_id, warn)
    if manifest is None:
        manifests = load_manifests(store, database, warn)[0]
        if not manifests:
            raise ConfigError(f"no backup of {database} in {store.url} to verify")
        manifest = manifests[0]
    return manifest


@asset(
    deps=[db_backup],
    group_name="backups",
    owners=OWNERS,
    kinds={"postgres"},
    tags=effect(BACKS_UP),
    pool=DATABASE_POOL,
    freshness_policy=late_after_26h,
    description="Keeps the newest SAGE_OPS_BACKUP_KEEP verified backups (by manifest time) and "
    "deletes older ones that sage_ops published. Runs only after a verified new backup, so it "
    "goes late when the newest verified backup is older than 26 h.",
    check_specs=[
        AssetCheckSpec(
            STORE_CLEAN,
            asset="backup_retention",
            description="Every manifest in the store is readable, dated in the past and has its "
            "object, and every backup object has a manifest (warns: such backups are neither "
            "counted nor deleted until an operator looks at them or their grace period ends).",
        )
    ],
)
def backup_retention(context: AssetExecutionContext, backups: BackupConfig) -> MaterializeResult:
    with operator_errors():
        store = backups.store()
        database = backups.target().redacted
        result = apply_retention(store, backups.keep, database, context.run.run_id)
        sweep = sweep_unrecorded(store)
    context.log.info(f"retention kept {len(result.kept)}, deleted {len(result.deleted)}")
    warnings = result.warnings() + sweep.warnings()
    for warning in warnings:
        context.log.warning(warning)
    return MaterializeResult(
        metadata={
            "keep": backups.keep,
            "kept": MetadataValue.json(result.kept),
            "deleted": MetadataValue.json(result.deleted),
            "corrupt": MetadataValue.json(result.corrupt),
            "unverified_left_alone": MetadataValue.json(result.unverified),
            "future_dated": MetadataValue.json(result.future_dated),
            "skipped_manifests": MetadataValue.json(result.skipped),
            "missing_objects": MetadataValue.json(result.missing),
            "unrecorded_removed": MetadataValue.json(sweep.removed),
            "unrecorded_waiting": MetadataValue.json(sweep.waiting + sweep.unmarked),
        },
        check_results=[
            AssetCheckResult(
                check_name=STORE_CLEAN,
                passed=not warnings,
                severity=AssetCheckSeverity.WARN,
                description="; ".join(warnings)
                or "every manifest readable, dated in the past and with its object",
            )
        ],
    )


class RestoreRequest(Config):
    backup_key: str = Field(
        default="",
        description="Backup to restore; empty: the newest verified pre-migration backup of the "
        "source database",
    )
    target_database_url_env: str = Field(
        default="DATABASE_URL",
        description="Env var holding the URL of the database to restore into",
    )
    source_database: str = Field(
        default="",
        description="The database the backup was taken of, without password, as backup metadata "
        "shows it (postgresql://USER:***@HOST:5432/DB), compared on host, port and name; empty: "
        "the target itself. Naming another database is the only way to restore its backups",
    )
    allow_unverified: bool = Field(
        default=False, description="Restore a backup whose verification has not passed"
    )
    confirm: str = Field(
        default="", description="The target database's name: required to replace a live database"
    )


@op(description="Restore a backup into a database; a live one only with confirm set to its name.")
def restore_backup_op(
    context: OpExecutionContext, config: RestoreRequest, backups: BackupConfig
) -> None:
    with operator_errors():
        store = backups.store()
        target = PgTarget.from_env(config.target_database_url_env)
        if target is None:
            raise ConfigError(f"{config.target_database_url_env} is not set")
        choice = BackupChoice(
            source=named_source(config.source_database, default=target),
            key=config.backup_key,
            purpose=PRE_MIGRATION,
            allow_unverified=config.allow_unverified,
        )
        manifest = choose_backup(store, choice, context.log.warning)
        context.log.warning(
            f"restoring {manifest.key} (backup of {manifest.database}, taken at "
            f"{manifest.started_at}, verification {manifest.verification.status}) into "
            f"{target.redacted}: run {context.run.run_id}, "
            f"launched from {launch_source(context.run.tags)} by {launched_by(context.run.tags)}"
        )
        outcome = restore_into(
            store, manifest, target, config.confirm, context.log.info, context.run.run_id
        )
    kept = (
        f"; the replaced database is kept as {outcome.previous_kept_as} until you drop it"
        if outcome.replaced
        else ""
    )
    context.log.info(f"restored {manifest.key} into {outcome.database}{kept}")


def launch_source(tags: Mapping[str, str]) -> str:
    """Where a run came from, in an operator's words."""
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    if "dagster/backfill" in tags:
        return f"backfill {tags['dagster/backfill']}"
    if tags.get("dagster/from_ui") == "true":
        return "UI"
    return "CLI or API"


@job(
    name=RESTORE_DATABASE,
    tags={**DATABASE_WRITER_TAG, **effect(RESTORES)},
    description="Restore a chosen backup into a chosen database.",
)
def restore_database() -> None:
    restore_backup_op()


nightly_backup = define_asset_job(
    NIGHTLY_BACKUP,
    selection=[db_backup, backup_retention],
    tags=DATABASE_WRITER_TAG,
    executor_def=in_process_executor,
    description="Back up the database, verify the backup, then apply retention.",
)


def _tonights_backup(context: ScheduleEvaluationContext) -> RunRequest:
    # The day is the run key: a daemon that restarts and evaluates the same 03:00 tick again
    # finds that day's run already launched and takes no second backup.
    day = context.scheduled_execution_time.astimezone(UTC).date().isoformat()
    return RunRequest(run_key=day, tags={SCHEDULED_DAY_TAG: day})


nightly_backup_schedule = ScheduleDefinition(
    name="nightly_backup_schedule",
    job=nightly_backup,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    execution_fn=_tonights_backup,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 03:00 UTC, one run per day, tagged with the day.",
)

defs = Definitions(
    assets=[db_backup, backup_retention],
    asset_checks=[backup_verified],
    jobs=[nightly_backup, restore_database],
    schedules=[nightly_backup_schedule],
)
