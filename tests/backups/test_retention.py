import hashlib

import pytest

from sage_ops.backups.manifest import is_manifest_key, manifest_key
from sage_ops.backups.retention import apply_retention
from sage_ops.errors import ConfigError, RetentionError
from tests.backups.conftest import DATABASE


def _keys(store) -> set[str]:
    return {o.key for o in store.objects()}


def test_keeps_the_newest_n_verified_and_deletes_older(store, publish):
    backups = [publish(store, days_ago=d) for d in range(5)]  # newest first
    result = apply_retention(store, keep=3, database=DATABASE)
    assert result.kept == [b.key for b in backups[:3]]
    assert result.deleted == [b.key for b in backups[3:]]
    assert _keys(store) == {k for b in backups[:3] for k in (b.key, manifest_key(b.key))}


def test_orders_by_manifest_time_not_by_name(store, publish):
    # Names sort the other way round from the times the manifests record.
    old = publish(store, days_ago=5, key="backup_20991231_000000.sql.gz")
    new = publish(store, days_ago=0, key="backup_20000101_000000.sql.gz")
    result = apply_retention(store, keep=1, database=DATABASE)
    assert result.kept == [new.key] and result.deleted == [old.key]


def test_unverified_backups_are_not_counted_nor_deleted_when_newer(store, publish):
    failed_newest = publish(store, days_ago=0, verified=False)
    verified = [publish(store, days_ago=d) for d in (1, 2, 3)]
    result = apply_retention(store, keep=2, database=DATABASE)
    assert result.kept == [verified[0].key, verified[1].key]
    assert result.deleted == [verified[2].key]
    assert result.unverified == [failed_newest.key]
    assert failed_newest.key in _keys(store)


def test_corrupted_older_backup_is_not_counted_as_verified(store, publish):
    backups = [publish(store, days_ago=d) for d in range(4)]
    corrupt = backups[1]
    (store.root / corrupt.key).write_bytes(b"\x1f\x8b bit rot")
    result = apply_retention(store, keep=2, database=DATABASE)
    # The corrupt one does not fill a slot: the two newest *valid* backups are kept.
    assert result.corrupt == [corrupt.key]
    assert result.kept == [backups[0].key, backups[2].key]
    assert result.deleted == [backups[3].key]


def test_kept_backups_are_proven_by_their_checksum_without_decompressing(store, publish):
    # Bytes with the SHA-256 of a verified manifest are the bytes that passed verification;
    # retention re-reads the checksum but does not gunzip every kept backup again. An object that
    # is not gzip at all, under a verified manifest with its hash, still counts.
    manifest = publish(store, days_ago=0)
    body = b"not gzip, yet the bytes the manifest's verification passed"
    manifest.size, manifest.sha256 = len(body), hashlib.sha256(body).hexdigest()
    store.put_bytes(manifest.key, body)
    store.put_bytes(manifest_key(manifest.key), manifest.to_json())
    older = publish(store, days_ago=1)
    result = apply_retention(store, keep=1, database=DATABASE)
    assert result.kept == [manifest.key] and result.corrupt == []
    assert result.deleted == [older.key]


def test_the_backup_this_runs_verification_read_back_is_not_read_again(store, publish):
    # Tonight's verification read the new backup back moments ago; the kept older ones are
    # re-read. A changed object under another run's verification still counts as corrupt.
    tonight = publish(store, days_ago=0)
    tonight.verification.run_id = "this-run"
    store.put_bytes(manifest_key(tonight.key), tonight.to_json())
    older = [publish(store, days_ago=d) for d in (1, 2, 3)]
    (store.root / older[0].key).write_bytes(b"\x1f\x8b bit rot")
    reads = []
    iter_chunks = store.iter_chunks
    store.iter_chunks = lambda key: (reads.append(key), iter_chunks(key))[1]
    result = apply_retention(store, keep=2, database=DATABASE, run_id="this-run")
    assert [key for key in reads if not is_manifest_key(key)] == [older[0].key, older[1].key]
    assert result.corrupt == [older[0].key]
    assert result.kept == [tonight.key, older[1].key]


def test_never_deletes_without_a_verified_backup(store, publish):
    backups = [publish(store, days_ago=d, verified=False) for d in range(3)]
    before = _keys(store)
    with pytest.raises(RetentionError, match="no verified backup"):
        apply_retention(store, keep=1, database=DATABASE)
    assert _keys(store) == before and len(backups) == 3


def test_never_touches_what_it_did_not_create(store, publish):
    for name in ("notes.txt", "backup_20200101_000000.sql.gz"):  # the latter: a seed-era backup
        store.put_bytes(name, b"not ours")
    other_db = publish(store, days_ago=9, database="postgresql://app:***@other/db")
    [publish(store, days_ago=d) for d in range(3)]
    result = apply_retention(store, keep=1, database=DATABASE)
    assert len(result.deleted) == 2
    assert {"notes.txt", "backup_20200101_000000.sql.gz", other_db.key} <= _keys(store)


def test_a_failed_delete_fails_retention(store, publish):
    keep = publish(store, days_ago=0)
    doomed = publish(store, days_ago=1)
    (store.root / doomed.key).unlink()
    (store.root / doomed.key).mkdir()  # unlink() of a directory fails, as a denied delete would
    with pytest.raises(RetentionError, match=f"could not delete.*{doomed.key}"):
        apply_retention(store, keep=1, database=DATABASE)
    assert keep.key in _keys(store)


def test_keep_must_be_positive(store):
    with pytest.raises(ConfigError, match="at least 1"):
        apply_retention(store, keep=0, database=DATABASE)


def _taken_by_this_run(store, manifest):
    manifest.run_id = "this-run"
    store.put_bytes(manifest_key(manifest.key), manifest.to_json())
    return manifest


def test_never_deletes_the_backup_this_run_took(store, publish):
    # Tonight's backup carries an older date than the others (this host's clock runs behind).
    tonight = _taken_by_this_run(store, publish(store, days_ago=3))
    newer = [publish(store, days_ago=d) for d in (1, 2)]
    result = apply_retention(store, keep=1, database=DATABASE, run_id="this-run")
    assert tonight.key in result.kept and tonight.key in _keys(store)
    assert result.deleted == [newer[1].key]


def test_future_dated_backups_are_flagged_not_counted_nor_deleted(store, publish):
    future = publish(store, days_ago=-30)
    backups = [publish(store, days_ago=d) for d in range(3)]
    result = apply_retention(store, keep=1, database=DATABASE)
    assert result.future_dated == [future.key]
    assert result.kept == [backups[0].key]
    assert result.deleted == [b.key for b in backups[1:]]
    assert future.key in _keys(store)


def test_deletes_nothing_until_keep_good_backups_remain(store, publish):
    # One good backup and older ones whose verification failed (say, the scratch server was
    # down): with KEEP=3 the evidence that good backups exist is too weak to delete anything.
    good = publish(store, days_ago=0)
    failed = [publish(store, days_ago=d, verified=False) for d in (1, 2)]
    before = _keys(store)
    result = apply_retention(store, keep=3, database=DATABASE)
    assert result.kept == [good.key] and result.deleted == []
    assert _keys(store) == before and len(failed) == 2


def test_bad_manifests_are_skipped_and_named(store, publish):
    backups = [publish(store, days_ago=d) for d in range(3)]
    store.put_bytes(manifest_key("backup_20261125_030000.sql.gz"), b"null")
    result = apply_retention(store, keep=1, database=DATABASE)
    assert result.deleted == [b.key for b in backups[1:]]
    [warning] = result.skipped
    bad = manifest_key("backup_20261125_030000.sql.gz")
    assert warning.startswith(f"skipped {bad}") and "is null, not an object" in warning
    assert bad in _keys(store)
