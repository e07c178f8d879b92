"""Keep the newest N verified backups; delete older ones that sage_ops itself published.

Only objects with a sage_ops manifest are ever considered, ordering is by the manifest's start
time (never by name or LastModified), a kept backup's checksum is re-read before it counts, and
nothing is deleted unless at least one verified backup survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sage_ops.backups.catalog import load_manifests
from sage_ops.backups.manifest import Manifest, manifest_key
from sage_ops.backups.store import BackupStore
from sage_ops.backups.verify import check_integrity
from sage_ops.errors import ConfigError, RetentionError, StoreError, VerificationError


@dataclass
class RetentionResult:
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)  # verified once, fail their checksum now
    unverified: list[str] = field(default_factory=list)  # left alone: not counted, not deleted


def apply_retention(store: BackupStore, keep: int, database: str) -> RetentionResult:
    """Apply retention to the backups of `database` (redacted URL) only."""
    if keep < 1:
        raise ConfigError(f"SAGE_OPS_BACKUP_KEEP must be at least 1 (got {keep})")
    manifests, keys = load_manifests(store, database)
    result = RetentionResult()
    kept: list[Manifest] = []
    for m in manifests:
        if len(kept) == keep:
            break
        if not m.verified or m.key not in keys:
            result.unverified.append(m.key)
            continue
        try:
            check_integrity(store, m)
        except VerificationError:
            result.corrupt.append(m.key)
            continue
        kept.append(m)
    if not kept:
        raise RetentionError(f"no verified backup found in {store.url}; nothing deleted")
    result.kept = [m.key for m in kept]
    oldest_kept = kept[-1].started
    doomed = [m for m in manifests if m not in kept and m.started < oldest_kept]
    result.unverified = [k for k in result.unverified if k not in {m.key for m in doomed}]
    _delete(store, doomed, result)
    return result


def _delete(store: BackupStore, doomed: list[Manifest], result: RetentionResult) -> None:
    # Objects first, manifests last: an interrupted run leaves a manifest whose object is gone,
    # which the next run deletes again, never an unlisted object.
    try:
        store.delete([m.key for m in doomed])
        store.delete([manifest_key(m.key) for m in doomed])
    except StoreError as exc:
        raise RetentionError(f"retention failed part-way: {exc}") from None
    result.deleted = [m.key for m in doomed]
