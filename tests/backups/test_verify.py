import gzip
import hashlib

import pytest

from sage_ops import postgres
from sage_ops.backups.catalog import find_manifest
from sage_ops.backups.dump import backup_database
from sage_ops.backups.store import LocalStore
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


# Seven tables, two of which a dotted `schema.table` key would merge: "a"."b.c" and "a.b"."c".
COLLIDING = {'a."b.c"': 3, '"a.b".c': 5}
SEVEN_TABLES = """
CREATE SCHEMA a; CREATE SCHEMA "a.b";
CREATE TABLE a."b.c" (id int); INSERT INTO a."b.c" SELECT generate_series(1, 3);
CREATE TABLE "a.b".c (id int); INSERT INTO "a.b".c SELECT generate_series(1, 5);
CREATE TABLE public."Users" (id int); INSERT INTO public."Users" VALUES (1);
CREATE TABLE public.t2 (id int); INSERT INTO public.t2 SELECT generate_series(1, 2);
CREATE TABLE public.t4 (id int); INSERT INTO public.t4 SELECT generate_series(1, 4);
CREATE TABLE public.t6 (id int); INSERT INTO public.t6 SELECT generate_series(1, 6);
CREATE TABLE public.t7 (id int); INSERT INTO public.t7 SELECT generate_series(1, 7);
"""


@pytest.fixture
def seven_tables(pg_server):
    with postgres.scratch_database(pg_server, prefix="sage_ops_test") as db:
        with postgres.connect(db) as conn:
            conn.execute(SEVEN_TABLES)
        yield db


def _republish_without_a_row(store, manifest, table: str) -> None:
    """Drop the first data row of `table` from the dump; re-publish with a matching checksum."""
    sql = gzip.decompress(store.get_bytes(manifest.key)).decode()
    first_row = sql.index("\n", sql.index(f"COPY {table} ")) + 1
    tampered = gzip.compress((sql[:first_row] + sql[sql.index("\n", first_row) + 1 :]).encode())
    (store.root / manifest.key).write_bytes(tampered)
    manifest.sha256, manifest.size = hashlib.sha256(tampered).hexdigest(), len(tampered)


def test_row_counts_keep_tables_with_dots_in_their_names_apart(seven_tables, store, pg_server):
    manifest = backup_database(seven_tables, store)
    assert manifest.row_counts == {
        **COLLIDING,
        "public.Users": 1,
        "public.t2": 2,
        "public.t4": 4,
        "public.t6": 6,
        "public.t7": 7,
    }
    report = verify_backup(store, manifest, "full", pg_server)
    assert report.passed, report.detail
    assert report.restored_row_counts == manifest.row_counts
    assert "restored 7 tables with equal row counts" in report.detail


@pytest.mark.parametrize("table", sorted(COLLIDING))
def test_row_count_difference_in_either_colliding_table_fails(
    seven_tables, store, pg_server, table
):
    manifest = backup_database(seven_tables, store)
    _republish_without_a_row(store, manifest, table)
    report = verify_backup(store, manifest, "full", pg_server)
    assert not report.passed
    expected = COLLIDING[table]
    assert f"{table}: dumped {expected} restored {expected - 1}" in report.detail


def test_manifest_with_merged_keys_from_an_older_sage_ops_still_compares(
    seven_tables, store, pg_server
):
    manifest = backup_database(seven_tables, store)
    # What earlier versions wrote: `schema.table`, the later of two colliding tables winning.
    manifest.row_counts = {
        "a.b.c": 5,
        "public.Users": 1,
        "public.t2": 2,
        "public.t4": 4,
        "public.t6": 6,
        "public.t7": 7,
    }
    report = verify_backup(store, manifest, "full", pg_server)
    assert report.passed, report.detail
    assert "a.b.c" in report.detail and "older sage_ops" in report.detail
    manifest.row_counts["a.b.c"] = 4
    report = verify_backup(store, manifest, "full", pg_server)
    assert not report.passed and "a.b.c: dumped 4 restored 5" in report.detail


class _CountingStore(LocalStore):
    """The local store, counting the bytes read back from it."""

    bytes_read = 0

    def iter_chunks(self, key):
        for chunk in super().iter_chunks(key):
            self.bytes_read += len(chunk)
            yield chunk


def test_full_verification_reads_the_stored_object_once(source_db, tmp_path, pg_server):
    store = _CountingStore(f"file://{tmp_path / 'counted'}")
    manifest = backup_database(source_db, store)
    report = verify_backup(store, manifest, "full", pg_server)
    assert report.passed, report.detail
    assert store.bytes_read == manifest.size


@pytest.mark.parametrize("change", ["flip a byte", "cut the end"])
def test_full_verification_names_an_object_changed_since_its_manifest(
    source_db, store, pg_server, change
):
    manifest = backup_database(source_db, store)
    body = bytearray(store.get_bytes(manifest.key))
    if change == "flip a byte":
        body[len(body) // 2] ^= 0xFF
    else:
        del body[len(body) * 2 // 3 :]
    (store.root / manifest.key).write_bytes(bytes(body))
    report = verify_backup(store, manifest, "full", pg_server)
    assert not report.passed
    assert "does not match its manifest" in report.detail, report.detail
    with postgres.connect(pg_server) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'sage_ops_verify%'"
        ).fetchall()
    assert left == []
