"""A backup that counts: dump, then verify, as one call for callers that need both at once."""

from __future__ import annotations

from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.manifest import Manifest
from sage_ops.backups.verify import verify_backup
from sage_ops.errors import VerificationError
from sage_ops.postgres import PgTarget
from sage_ops.settings import Settings


def verified_backup(
    settings: Settings, target: PgTarget, purpose: str, run_id: str | None
) -> tuple[Manifest, str]:
    """Back up `target` and verify it; return the manifest and the verification detail.

    Raises VerificationError (after recording the failure in the manifest) if it does not verify.
    """
    store = settings.store()
    options = DumpOptions(settings.backup_format, settings.compression_level, purpose)
    manifest = backup_database(target, store, options, run_id)
    scratch = settings.scratch_server(target)
    report = verify_backup(store, manifest, settings.verify_level, scratch, run_id)
    if not report.passed:
        raise VerificationError(f"backup {manifest.key} failed verification: {report.detail}")
    return manifest, report.detail
