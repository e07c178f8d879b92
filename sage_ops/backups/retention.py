"""Keep the newest N verified backups; delete older ones that sage_ops itself published.

Only objects with a sage_ops manifest are ever considered, ordering is by the manifest's start
time (never by name or LastModified), and a backup is deleted only on strong evidence that KEEP
newer good backups survive it: each of them verified, its checksum re-read now (or by this run's
own verification), and dated in the past. A manifest dated in the future (a skewed clock) is
flagged and neither counted nor deleted, and the backup this run took is never deleted, whatever
its date.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sage_ops.backups.catalog import load_manifests
from sage_ops.backups.manifest import Manifest, manifest_key
from sage_ops.backups.store import BackupStore, pending_key
from sage_ops.backups.verify import check_integrity
from sage_ops.errors import ConfigError, RetentionError, StoreError, VerificationError


@dataclass
class RetentionResult:
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)  # verified once, fail their checksum now
    unverified: list[str] = field(default_factory=list)  # left alone: not counted, not deleted
    missing: list[str] = field(default_factory=list)  # manifest left, object gone: not counted
    future_dated: list[str] = field(default_factory=list)  # left alone and flagged
    skipped: list[str] = field(default_factory=list)  # a warning per unreadable manifest

    def warnings(self) -> list[str]:
        """What an operator should look at, although retention did its job."""
        future = [
            f"{key} is dated in the future (clock skew?): not counted, not deleted; check its "
            "manifest's started_at and the clock of the host that wrote it"
            for key in self.future_dated
        ]
        missing = [
            f"{key}: its object is missing, only the manifest is left (not counted; deleted with "
            "the backups older than the kept ones)"
            for key in self.missing
        ]
        return future + missing + self.skipped


def apply_retention(
    store: BackupStore, keep: int, database: str, run_id: str | None = None
) -> RetentionResult:
    """Apply retention to the backups of `database` (redacted URL) only; the backup taken by
    run `run_id` (the calling run) is never deleted."""
    if keep < 1:
        raise ConfigError(f"SAGE_OPS_BACKUP_KEEP must be at least 1 (got {keep})")
    result = RetentionResult()
    manifests, keys = load_manifests(store, database, result.skipped.append)
    kept = _good_backups(store, manifests, keys, keep, result, run_id)
    if not kept:
        raise RetentionError(f"no verified backup found in {store.url}; nothing deleted")
    this_run = [m for m in manifests if run_id and m.run_id == run_id and m not in kept]
    result.kept = [m.key for m in kept + this_run]
    doomed = _doomed(manifests, kept, keep, result)
    gone = {m.key for m in doomed}
    result.unverified = [k for k in result.unverified if k not in gone]
    result.missing = [k for k in result.missing if k not in gone]
    _delete(store, doomed, result)
    return result


def _good_backups(
    store: BackupStore,
    manifests: list[Manifest],
    keys: set[str],
    keep: int,
    result: RetentionResult,
    run_id: str | None,
) -> list[Manifest]:
    """Up to `keep` newest backups that count as evidence, sorting the others into `result`."""
    kept: list[Manifest] = []
    for m in manifests:
        if len(kept) == keep:
            break
        if m.dated_in_future():
            result.future_dated.append(m.key)
        elif m.key not in keys:
            result.missing.append(m.key)
        elif not m.verified:
            result.unverified.append(m.key)
        else:
            try:
                # The SHA-256 only: bytes equal to the ones that passed verification (which
                # decoded them) decode as they did; decompressing each kept backup again every
                # night would cost KEEP times the dump's gunzip for no more evidence. A backup
                # whose verification this run recorded was read back by it minutes ago.
                if not (run_id and m.verification.run_id == run_id):
                    check_integrity(store, m, test_gzip=False)
                kept.append(m)
            except VerificationError:
                result.corrupt.append(m.key)
    return kept


def _doomed(
    manifests: list[Manifest], kept: list[Manifest], keep: int, result: RetentionResult
) -> list[Manifest]:
    """Older than every good backup kept, and only once KEEP good backups survive."""
    if len(kept) < keep:
        return []  # too little evidence that good backups exist: delete nothing
    oldest_kept = kept[-1].started
    spared = set(result.kept) | set(result.future_dated)
    return [m for m in manifests if m.key not in spared and m.started < oldest_kept]


def _delete(store: BackupStore, doomed: list[Manifest], result: RetentionResult) -> None:
    # Objects first, manifests last: an interrupted run leaves a manifest whose object is gone
    # (listed as missing, never counted), which the next run deletes again, never an unlisted
    # object.
    try:
        store.delete([m.key for m in doomed])
        store.delete([manifest_key(m.key) for m in doomed] + [pending_key(m.key) for m in doomed])
    except StoreError as exc:
        raise RetentionError(f"retention failed part-way: {exc}") from None
    result.deleted = [m.key for m in doomed]
