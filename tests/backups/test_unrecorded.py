"""A backup object is never in the store without a record of it, and what a killed run left
unrecorded is named and removed after the grace period; a manifest without its object is missing,
never a usable backup."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from sage_ops.backups.catalog import MISSING, find_manifest, load_manifests, status
from sage_ops.backups.manifest import manifest_key
from sage_ops.backups.retention import apply_retention
from sage_ops.backups.selection import BackupChoice, choose_backup
from sage_ops.backups.store import pending_key
from sage_ops.backups.unrecorded import UNRECORDED_GRACE, sweep_unrecorded, unrecorded
from sage_ops.errors import ConfigError, StoreError
from sage_ops.postgres import PgTarget
from tests.backups.conftest import DATABASE

KEY = "backup_20261120_030000.sql.gz"


def _keys(store) -> set[str]:
    return {o.key for o in store.objects()}


def _killed_after_publishing(store, key=KEY):
    """What a run killed between the object's rename and its manifest leaves."""
    with store.writing(key) as writer:
        writer.write(b"\x1f\x8b complete dump")


def test_the_object_is_recorded_from_before_it_starts_until_its_manifest(store):
    seen = []
    with store.writing(KEY) as writer:
        seen.append(_keys(store))  # written: the marker is there first
        writer.write(b"data")
    seen.append(_keys(store))  # in place, no manifest yet: still recorded
    assert all(pending_key(KEY) in keys for keys in seen)
    assert unrecorded(_keys(store)) == [KEY]


def test_a_failed_write_leaves_neither_object_nor_marker(store):
    with pytest.raises(RuntimeError), store.writing(KEY) as writer:
        writer.write(b"half")
        raise RuntimeError("pg_dump died")
    assert _keys(store) == set()
    assert list(store.root.iterdir()) == []


def test_a_killed_runs_object_is_removed_once_its_grace_period_is_over(store):
    _killed_after_publishing(store)
    early = sweep_unrecorded(store)
    assert early.waiting == [KEY] and KEY in _keys(store)
    assert KEY in early.warnings()[0] and "no manifest yet" in early.warnings()[0]

    later = sweep_unrecorded(store, now=datetime.now(UTC) + UNRECORDED_GRACE + timedelta(1))
    assert later.removed == [KEY]
    assert f"removed {KEY}" in later.warnings()[0]
    assert _keys(store) == set()


def test_a_marker_whose_manifest_exists_is_cleared(store, publish):
    manifest = publish(store, days_ago=0)
    store.put_bytes(pending_key(manifest.key), b"{}")
    sweep = sweep_unrecorded(store)
    assert sweep.cleared == [manifest.key] and sweep.warnings() == []
    assert _keys(store) == {manifest.key, manifest_key(manifest.key)}


def test_a_backup_named_object_without_marker_is_only_reported(store):
    store.put_bytes(KEY, b"from an older sage_ops, or copied by hand")
    sweep = sweep_unrecorded(store, grace=timedelta(0))
    assert sweep.unmarked == [KEY] and sweep.removed == []
    assert "not counted, not deleted" in sweep.warnings()[0]
    assert KEY in _keys(store)


def test_a_marker_that_sage_ops_did_not_write_keeps_its_object(store):
    _killed_after_publishing(store)
    store.put_bytes(pending_key(KEY), json.dumps({"created_by": "someone"}).encode())
    sweep = sweep_unrecorded(store, grace=timedelta(0))
    assert sweep.waiting == [KEY] and KEY in _keys(store)


def _missing_object(store, publish):
    backups = [publish(store, days_ago=d) for d in range(3)]
    store.delete([backups[0].key])  # a kill during retention, or a hand deletion
    return backups


def test_a_manifest_without_its_object_is_missing_not_passed(store, publish):
    backups = _missing_object(store, publish)
    manifests, keys = load_manifests(store)
    assert [status(m, keys) for m in manifests] == [MISSING, "passed", "passed"]
    with pytest.raises(StoreError, match="missing from .* only its manifest is left"):
        find_manifest(store, backups[0].key)


def test_retention_does_not_count_a_missing_backup(store, publish):
    backups = _missing_object(store, publish)
    result = apply_retention(store, keep=2, database=DATABASE)
    assert result.kept == [backups[1].key, backups[2].key]
    assert result.missing == [backups[0].key] and result.deleted == []
    assert "its object is missing" in result.warnings()[0]


def test_latest_skips_a_missing_backup(store, publish):
    backups = _missing_object(store, publish)
    warned = []
    source = PgTarget.from_url(DATABASE)
    assert choose_backup(store, BackupChoice(source), warned.append).key == backups[1].key
    assert "object is missing" in warned[0]
    with pytest.raises(StoreError, match="missing"):
        choose_backup(store, BackupChoice(source, key=backups[0].key), warned.append)
    store.delete([b.key for b in backups])
    with pytest.raises(ConfigError, match="no verified backup"):
        choose_backup(store, BackupChoice(source), warned.append)
