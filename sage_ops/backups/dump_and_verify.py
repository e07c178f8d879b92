"""A backup that counts: dump and verify as one call, the restore running while pg_dump writes.

At the full level, each block written to the store (after compression and hashing) also goes to
a scratch restore (scratch_restore.py), which decodes it as a later restore would; the backup is
committed to the store only after the restore succeeded and its row counts equal the counts
taken in the dump's snapshot. The stored object is then read back once: its SHA-256 and size must
be the stream's. So the restored database is the restore of the stored bytes, as if they had
been read back and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sage_ops.backups.dump import DumpOptions, Progress, backup_database
from sage_ops.backups.manifest import Manifest
from sage_ops.backups.scratch_restore import StreamedRestore
from sage_ops.backups.store import BackupStore
from sage_ops.backups.verify import (
    FULL,
    VerificationReport,
    compare_row_counts,
    verify_backup,
    verify_streamed,
)
from sage_ops.embedded import scratch_maintenance_mem_mb
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
    if recipe.verify_level == FULL:
        manifest, report = restored_while_dumping(
            target, recipe.store, options, recipe.scratch(target), run_id
        )
    else:
        manifest = backup_database(target, recipe.store, options, run_id)
        report = verify_backup(recipe.store, manifest, recipe.verify_level, None, run_id)
    if not report.passed:
        raise VerificationError(f"backup {manifest.key} failed verification: {report.detail}")
    return manifest, report.detail


def restored_while_dumping(
    target: PgTarget,
    store: BackupStore,
    options: DumpOptions,
    scratch_server: PgTarget,
    run_id: str | None = None,
    on_progress: Progress | None = None,
) -> tuple[Manifest, VerificationReport]:
    """Dump `target` into `store` while restoring the same stream on `scratch_server`; the full
    verification, recorded in the manifest. Raises (publishing nothing) if the dump or the
    restore fails or the row counts differ."""
    with StreamedRestore(scratch_server, options.fmt, scratch_maintenance_mem_mb()) as restore:
        counts = _CountsCheck(restore)
        manifest = backup_database(target, store, options, run_id, on_progress, counts)
    report = verify_streamed(store, manifest, counts.restored, run_id)
    return manifest, report


class _CountsCheck:
    """The restore as backup_database's sink; finishing it also compares the row counts."""

    def __init__(self, restore: StreamedRestore) -> None:
        self.restore = restore
        self.restored: dict[str, int] = {}
        self.start, self.feed = restore.start, restore.feed

    def finish(self, row_counts: dict[str, int]) -> None:
        self.restore.finish()
        self.restored = compare_row_counts("the backup", row_counts, self.restore.restored_counts)
