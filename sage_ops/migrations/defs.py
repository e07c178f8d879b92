"""Guarded migrations: plan (+ lint) -> verified pre-migration backup -> apply (+ post-check)."""

from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    define_asset_job,
    in_process_executor,
)

from sage_ops.backups.catalog import run_manifest
from sage_ops.backups.dump_and_verify import verified_backup
from sage_ops.backups.manifest import PRE_MIGRATION
from sage_ops.backups.resources import BackupConfig
from sage_ops.lineage.effects import BACKS_UP, READS, WRITES_DATABASE, effect
from sage_ops.lineage.failures import operator_errors
from sage_ops.lineage.names import DATABASE_POOL, DB_BACKUP, MIGRATE_DATABASE, OWNERS
from sage_ops.lineage.tags import DATABASE_WRITER_TAG
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.lint import lint
from sage_ops.migrations.preflight import Plan, plan
from sage_ops.migrations.prisma_runner import ContainerMigrationFailed
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.migrations.runner import NON_TRANSACTIONAL_RISK, MigrationFailed
from sage_ops.migrations.statements import needs_no_transaction
from sage_ops.units import human_bytes

GROUP = "migrations"


def _plan(config: MigrationConfig) -> Plan:
    return plan(config.target(), load_migrations(Path(config.migrations_dir)))


@asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres", "prisma"},
    tags=effect(READS),
    description="Preflight: the database is reachable, writable (not a replica), no other "
    "migration holds the lock, no failed migration is unresolved, and every applied "
    "migration still matches its file (no drift). Lists the pending migrations.",
)
def migration_plan(
    context: AssetExecutionContext, migrations: MigrationConfig
) -> MaterializeResult:
    with operator_errors():
        target = migrations.target()
        result = _plan(migrations)
    context.log.info(f"{len(result.pending)} pending: {[m.name for m in result.pending]}")
    return MaterializeResult(
        metadata={
            "database": target.redacted,
            "server_version": result.server_version,
            "migrations_dir": migrations.migrations_dir,
            "applied_count": len(result.applied),
            "pending": MetadataValue.json([m.name for m in result.pending]),
        }
    )


@asset_check(
    asset=migration_plan,
    blocking=True,
    description="squawk lint of the pending files: destructive or locking rules block the run "
    "unless allowed for that migration in the `allow` setting; other findings are warnings.",
)
def migration_lint(
    context: AssetCheckExecutionContext, migrations: MigrationConfig
) -> AssetCheckResult:
    with operator_errors():
        pending = _plan(migrations).pending
        report = lint(pending, migrations.policy().allow)
    blocked = [str(f) for f in report.blocking]
    return AssetCheckResult(
        passed=not blocked,
        description=report.blocking_summary()
        if blocked
        else f"{len(pending)} file(s) clean of blocking rules",
        metadata={
            "blocking": MetadataValue.json(blocked),
            "allowed": MetadataValue.json([str(f) for f in report.allowed]),
            "warnings": MetadataValue.json([str(f) for f in report.warnings]),
        },
    )


@asset(
    group_name=GROUP,
    owners=OWNERS,
    # db_backup: drawn as the same backup pipeline in the UI's lineage; a dependency
    # triggers nothing here (no automation condition), it only links the two groups.
    deps=[migration_plan, AssetKey(DB_BACKUP)],
    kinds={"postgres"},
    tags=effect(BACKS_UP),
    pool=DATABASE_POOL,
    description="A fresh backup of the target database, verified like the nightly ones, taken "
    "only when migrations are pending. Nothing is applied unless it passes.",
)
def pre_migration_backup(
    context: AssetExecutionContext, migrations: MigrationConfig, backups: BackupConfig
) -> MaterializeResult:
    with operator_errors():
        target = migrations.target()
        if not _plan(migrations).pending:
            return MaterializeResult(metadata={"skipped": "no pending migrations"})
        manifest, detail = verified_backup(
            backups.recipe(), target, PRE_MIGRATION, context.run.run_id
        )
    store = backups.store()
    return MaterializeResult(
        metadata={
            "key": manifest.key,
            "location": MetadataValue.url(store.location(manifest.key)),
            "sha256": manifest.sha256,
            "size_bytes": manifest.size,
            "size": human_bytes(manifest.size),
            "verification": detail,
        }
    )


@asset(
    group_name=GROUP,
    owners=OWNERS,
    deps=[pre_migration_backup],
    kinds={"postgres", "prisma"},
    tags=effect(WRITES_DATABASE),
    pool=DATABASE_POOL,
    description="Applies pending migrations one at a time, each in its own transaction with "
    "lock_timeout and statement_timeout, keeping Prisma's _prisma_migrations bookkeeping.",
)
def applied_migrations(
    context: AssetExecutionContext, migrations: MigrationConfig, backups: BackupConfig
) -> MaterializeResult:
    with operator_errors():
        target = migrations.target()
        files = load_migrations(Path(migrations.migrations_dir))
        backup = _pre_migration_backup(backups, context.run.run_id)
        try:
            applied = migrations.policy().applier.apply(target, files, context.log.info)
        except (MigrationFailed, ContainerMigrationFailed) as exc:
            raise Failure(
                description=f"{exc}. Database left as it was before the failing migration; "
                f"pre-migration backup: {backup}",
                metadata={
                    "failed_migration": getattr(exc, "migration", "see the runner's output"),
                    "statement": getattr(exc, "statement", ""),
                    "error": getattr(exc, "error", str(exc)),
                    "applied_before_failure": MetadataValue.json(
                        [a.name for a in getattr(exc, "applied", [])]
                    ),
                    "pre_migration_backup": backup,
                },
                allow_retries=False,
            ) from None
    sql_by_name = {m.name: m.sql for m in files}
    risky = [a.name for a in applied if needs_no_transaction(sql_by_name[a.name])]
    return MaterializeResult(
        metadata={
            "applied": MetadataValue.json(
                [
                    {"name": a.name, "seconds": round(a.seconds, 3), "attempts": a.attempts}
                    for a in applied
                ]
            ),
            "outside_transaction": MetadataValue.json(risky),
            "outside_transaction_risk": NON_TRANSACTIONAL_RISK if risky else "none",
            "pre_migration_backup": backup,
            "database": target.redacted,
        }
    )


def _pre_migration_backup(backups: BackupConfig, run_id: str) -> str:
    store = backups.store()
    manifest = run_manifest(store, run_id)
    return store.location(manifest.key) if manifest else "none (nothing was pending)"


@asset_check(
    asset=applied_migrations,
    blocking=True,
    description="Post-check: no pending and no failed migrations remain.",
)
def no_pending_migrations(
    context: AssetCheckExecutionContext, migrations: MigrationConfig
) -> AssetCheckResult:
    with operator_errors():
        result = _plan(migrations)
    pending = [m.name for m in result.pending]
    return AssetCheckResult(
        passed=not pending,
        metadata={"pending": MetadataValue.json(pending), "applied_count": len(result.applied)},
    )


migrate_database = define_asset_job(
    MIGRATE_DATABASE,
    selection=[migration_plan, pre_migration_backup, applied_migrations],
    tags=DATABASE_WRITER_TAG,
    executor_def=in_process_executor,
    description="Guarded Prisma migrations: preflight, lint, verified backup, apply, post-check.",
)

defs = Definitions(
    assets=[migration_plan, pre_migration_backup, applied_migrations],
    asset_checks=[migration_lint, no_pending_migrations],
    jobs=[migrate_database],
)
