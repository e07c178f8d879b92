"""The one guarded path every migration takes, and its one configuration (`Policy`): plan ->
lint -> verified pre-migration backup -> apply. The deploy pipeline's `<env>_schema` calls
`guarded_migrate`; the migrate_database job runs the same steps as separate assets, so each is
visible on its own, with the same `Policy` (MigrationConfig.policy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sage_ops.backups.dump_and_verify import BackupRecipe, verified_backup
from sage_ops.backups.manifest import PRE_MIGRATION, Manifest
from sage_ops.migrations.discovery import MigrationFile, load_migrations
from sage_ops.migrations.lint import LintReport, lint
from sage_ops.migrations.preflight import MigrationRefused, Plan, plan
from sage_ops.migrations.runner import AppliedMigration, Event, RunOptions, apply_pending
from sage_ops.postgres import PgTarget


class Applier(Protocol):
    """Applies the pending files to `target` (after preflight, lint and the backup)."""

    def apply(
        self, target: PgTarget, files: list[MigrationFile], log: Event
    ) -> list[AppliedMigration]: ...


@dataclass(frozen=True)
class SqlApplier:
    """sage_ops applies the files itself, one transaction each, with `options`' timeouts."""

    options: RunOptions

    def apply(
        self, target: PgTarget, files: list[MigrationFile], log: Event
    ) -> list[AppliedMigration]:
        return apply_pending(target, files, self.options, log)


@dataclass(frozen=True)
class Policy:
    """How carefully and by what migrations are applied: the blocking lint rules allowed per
    migration, and the applier (the SQL runner with its timeouts, or Prisma)."""

    allow: dict[str, list[str]]
    applier: Applier


@dataclass(frozen=True)
class GuardedOutcome:
    plan: Plan
    lint: LintReport
    backup: Manifest | None  # None when nothing was pending
    applied: list[AppliedMigration]


def guarded_migrate(
    target: PgTarget,
    migrations_dir: Path,
    policy: Policy,
    backups: BackupRecipe,
    run_id: str | None,
    log: Event,
) -> GuardedOutcome:
    files = load_migrations(migrations_dir)
    pending_plan = plan(target, files)
    report = lint(pending_plan.pending, policy.allow)
    if report.blocking:
        raise MigrationRefused(report.blocking_summary())
    if not pending_plan.pending:
        log("no pending migrations")
        return GuardedOutcome(pending_plan, report, None, [])
    manifest, _ = verified_backup(backups, target, PRE_MIGRATION, run_id)
    log(f"pre-migration backup {manifest.key} verified")
    applied = policy.applier.apply(target, files, log)
    return GuardedOutcome(pending_plan, report, manifest, applied)
