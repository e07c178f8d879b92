"""Read the manifests a store holds: the catalogue every backup consumer works from."""

from __future__ import annotations

import json

from sage_ops.backups.manifest import Manifest, is_manifest_key, manifest_key
from sage_ops.backups.store import BackupStore
from sage_ops.errors import StoreError


def load_manifests(
    store: BackupStore, database: str | None = None
) -> tuple[list[Manifest], set[str]]:
    """sage_ops manifests (of `database`, if given) newest first, and every key in the store."""
    keys = {obj.key for obj in store.objects()}
    manifests = []
    for key in sorted(k for k in keys if is_manifest_key(k)):
        try:
            manifest = Manifest.from_json(store.get_bytes(key))
        except (ValueError, TypeError, json.JSONDecodeError):
            continue  # unreadable: not provably ours, so never counted and never deleted
        if manifest.created_by != "sage_ops" or manifest_key(manifest.key) != key:
            continue
        if database is None or manifest.database == database:
            manifests.append(manifest)
    manifests.sort(key=lambda m: m.started, reverse=True)
    return manifests, keys


def find_manifest(store: BackupStore, key: str) -> Manifest:
    try:
        return Manifest.from_json(store.get_bytes(manifest_key(key)))
    except StoreError:
        raise StoreError(f"no backup {key!r} with a manifest in {store.url}") from None


def run_manifest(store: BackupStore, run_id: str) -> Manifest | None:
    return next((m for m in load_manifests(store)[0] if m.run_id == run_id), None)


def latest_verified(
    store: BackupStore, database: str | None = None, purpose: str | None = None
) -> Manifest | None:
    """The newest verified backup (of `database`, taken for `purpose`), if any."""
    manifests = load_manifests(store, database)[0]
    return next((m for m in manifests if m.verified and purpose in (None, m.purpose)), None)
