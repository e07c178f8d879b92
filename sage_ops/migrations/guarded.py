"""The whole guarded sequence in one call, for the deploy pipeline's per-environment gate:
plan -> lint -> verified pre-migration backup -> apply. The migrate_database job runs the same
steps as separate assets so that each is visible on its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sage_ops.backups.dump_and_verify import BackupRecipe, verified_backup
from sage_ops.backups.manifest import PRE_MIGRATION, Manifest
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.lint import LintReport, lint
from sage_ops.migrations.preflight import MigrationRefused, Plan, plan
from sage_ops.migrations.runner import AppliedMigration, Event, RunOptions, apply_pending
from sage_ops.postgres import PgTarget


@dataclass(frozen=True)
class GuardedOutcome:
    plan: Plan
    lint: LintReport
    backup: Manifest | None  # None when nothing was pending
    applied: list[AppliedMigration]


def guarded_migrate(
    target: PgTarget,
    migrations_dir: Path,
    allow: dict[str, list[str]],
    options: RunOptions,
    backups: BackupRecipe,
    run_id: str | None,
    log: Event,
) -> GuardedOutcome:
    files = load_migrations(migrations_dir)
    pending_plan = plan(target, files)
    report = lint(pending_plan.pending, allow)
    if report.blocking:
        raise MigrationRefused(report.blocking_summary())
    if not pending_plan.pending:
        log("no pending migrations")
        return GuardedOutcome(pending_plan, report, None, [])
    manifest, _ = verified_backup(backups, target, PRE_MIGRATION, run_id)
    log(f"pre-migration backup {manifest.key} verified")
    applied = apply_pending(target, files, options, log)
    return GuardedOutcome(pending_plan, report, manifest, applied)
