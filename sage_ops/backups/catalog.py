"""Read the manifests a store holds: the catalogue every backup consumer works from.

A manifest that cannot be read, or that sage_ops cannot have written, is skipped and reported
through `on_skip` (by default a logged warning): never counted, never deleted, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sage_ops.backups.manifest import Manifest, ManifestError, is_manifest_key, manifest_key
from sage_ops.backups.store import BackupStore
from sage_ops.errors import StoreError

MISSING = "missing"  # a manifest whose object is gone: never a usable backup
OnSkip = Callable[[str], None]  # receives a warning that names the skipped manifest
_log = logging.getLogger(__name__)


def load_manifests(
    store: BackupStore, database: str | None = None, on_skip: OnSkip = _log.warning
) -> tuple[list[Manifest], set[str]]:
    """sage_ops manifests (of `database`, if given) newest first, and every key in the store."""
    keys = {obj.key for obj in store.objects()}
    manifests = []
    for key in sorted(k for k in keys if is_manifest_key(k)):
        try:
            manifest = _read(store, key)
        except (ManifestError, StoreError) as exc:
            on_skip(f"skipped {key} in {store.url}: {exc}; it is never counted nor deleted")
            continue
        if database is None or manifest.database == database:
            manifests.append(manifest)
    manifests.sort(key=lambda m: m.started, reverse=True)
    return manifests, keys


def status(manifest: Manifest, keys: set[str]) -> str:
    """The verification status, or MISSING when the store no longer holds the object."""
    return manifest.verification.status if manifest.key in keys else MISSING


def _read(store: BackupStore, key: str) -> Manifest:
    manifest = Manifest.from_json(store.get_bytes(key))
    if manifest.created_by != "sage_ops":
        raise ManifestError("not written by sage_ops")
    if manifest_key(manifest.key) != key:
        raise ManifestError("its key field names another backup")
    return manifest


def find_manifest(store: BackupStore, key: str) -> Manifest:
    """The manifest of the backup an operator named; refused by name when it is unusable."""
    try:
        manifest = _read(store, manifest_key(key))
    except StoreError:
        raise StoreError(f"no backup {key!r} with a manifest in {store.url}") from None
    except ManifestError as exc:
        raise StoreError(
            f"{manifest_key(key)} is unreadable ({exc}): backup {key!r} cannot be used"
        ) from None
    if not store.exists(key):
        raise StoreError(f"backup {key!r} is missing from {store.url}: only its manifest is left")
    return manifest


def run_manifest(
    store: BackupStore, run_id: str, on_skip: OnSkip = _log.warning
) -> Manifest | None:
    return next((m for m in load_manifests(store, on_skip=on_skip)[0] if m.run_id == run_id), None)
