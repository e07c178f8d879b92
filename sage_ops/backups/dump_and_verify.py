"""A backup that counts: dump, then verify, as one call for callers that need both at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.manifest import Manifest
from sage_ops.backups.store import BackupStore
from sage_ops.backups.verify import verify_backup
from sage_ops.errors import VerificationError
from sage_ops.postgres import PgTarget


@dataclass(frozen=True)
class BackupRecipe:
    """How a backup is taken and proven: BackupConfig.recipe() builds it from the resource."""

    store: BackupStore
    format: str
    compression_level: int
    verify_level: str
    scratch: Callable[[PgTarget], PgTarget]  # the source -> where a full verification restores


def verified_backup(
    recipe: BackupRecipe, target: PgTarget, purpose: str, run_id: str | None
) -> tuple[Manifest, str]:
    """Back up `target` and verify it; return the manifest and the verification detail.

    Raises VerificationError (after recording the failure in the manifest) if it does not verify.
    """
    options = DumpOptions(recipe.format, recipe.compression_level, purpose)
    manifest = backup_database(target, recipe.store, options, run_id)
    scratch = recipe.scratch(target)  # only now: the embedded scratch starts a server
    report = verify_backup(recipe.store, manifest, recipe.verify_level, scratch, run_id)
    if not report.passed:
        raise VerificationError(f"backup {manifest.key} failed verification: {report.detail}")
    return manifest, report.detail
