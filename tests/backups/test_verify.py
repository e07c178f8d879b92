import gzip
import hashlib

from sage_ops import postgres
from sage_ops.backups.catalog import find_manifest
from sage_ops.backups.dump import backup_database
from sage_ops.backups.verify import verify_backup


def test_full_verification_restores_and_records_the_outcome(source_db, store, pg_server):
    manifest = backup_database(source_db, store)
    report = verify_backup(store, manifest, "full", pg_server, run_id="r")
    assert report.passed, report.detail
    assert report.restored_row_counts == manifest.row_counts
    stored = find_manifest(store, manifest.key)
    assert stored.verified and stored.verification.level == "full"
    with postgres.connect(pg_server) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'sage_ops_verify%'"
        ).fetchall()
    assert left == []


def test_checksum_mismatch_fails_verification(source_db, store, pg_server):
    manifest = backup_database(source_db, store)
    body = bytearray(store.get_bytes(manifest.key))
    body[len(body) // 2] ^= 0xFF
    (store.root / manifest.key).write_bytes(bytes(body))
    report = verify_backup(store, manifest, "checksum", None)
    assert not report.passed and "does not match its manifest" in report.detail
    assert find_manifest(store, manifest.key).verification.status == "failed"


def test_row_count_mismatch_fails_full_verification(source_db, store, pg_server):
    manifest = backup_database(source_db, store)
    sql = gzip.decompress(store.get_bytes(manifest.key)).decode()
    # A dump missing a row, re-published with a matching checksum: only the restore can tell.
    header = sql.index("COPY public.messages ")
    first_row = sql.index("\n", header) + 1
    tampered = gzip.compress((sql[:first_row] + sql[sql.index("\n", first_row) + 1 :]).encode())
    (store.root / manifest.key).write_bytes(tampered)
    manifest.sha256, manifest.size = hashlib.sha256(tampered).hexdigest(), len(tampered)
    report = verify_backup(store, manifest, "full", pg_server)
    assert not report.passed
    assert (
        "row counts differ after restore: public.messages: dumped 2000 restored 1999"
        in report.detail
    )
