import gzip
import hashlib
import json
import re
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from sage_ops import postgres
from sage_ops.backups import dump
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.manifest import CUSTOM, Manifest, manifest_key
from sage_ops.backups.verify import verify_backup
from sage_ops.errors import BackupLocked


def _stored(store) -> list[str]:
    return sorted(o.key for o in store.objects())


def test_plain_backup_is_published_with_a_matching_manifest(source_db, store):
    manifest = backup_database(source_db, store, run_id="run-1")

    assert re.fullmatch(r"backup_\d{8}_\d{6}\.sql\.gz", manifest.key)
    assert _stored(store) == [manifest.key, manifest_key(manifest.key)]
    body = store.get_bytes(manifest.key)
    assert hashlib.sha256(body).hexdigest() == manifest.sha256 and len(body) == manifest.size
    sql = gzip.decompress(body).decode()
    assert "CREATE TABLE public.messages" in sql and len(sql) == manifest.raw_bytes
    assert manifest.row_counts == {
        "public.conversations": 200,
        "public.messages": 2000,
        "public.users": 50,
    }
    stored = Manifest.from_json(store.get_bytes(manifest_key(manifest.key)))
    assert stored == manifest and stored.run_id == "run-1"
    assert stored.verification.status == "pending"
    assert json.loads(store.get_bytes(manifest_key(manifest.key)))["database"] == source_db.redacted


def test_files_are_private_and_no_partial_is_left(source_db, store):
    manifest = backup_database(source_db, store)
    for name in (manifest.key, manifest_key(manifest.key)):
        assert stat.S_IMODE((store.root / name).stat().st_mode) == 0o600
    assert not [p for p in store.root.iterdir() if p.name.endswith(".partial")]


def test_custom_format_backup_restores(source_db, store, pg_server):
    manifest = backup_database(source_db, store, DumpOptions(fmt=CUSTOM))
    assert manifest.key.endswith(".dump")
    report = verify_backup(store, manifest, "full", pg_server)
    assert report.passed, report.detail
    assert report.restored_row_counts == manifest.row_counts


def test_progress_is_reported(source_db, store, monkeypatch):
    monkeypatch.setattr(dump, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(dump, "CHUNK", 64 * 1024)
    seen = []
    manifest = backup_database(source_db, store, on_progress=lambda *a: seen.append(a))
    assert len(seen) >= 2
    assert seen[-1][0] == manifest.raw_bytes and seen[-1][1] == manifest.size
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)


def test_row_counts_come_from_the_dump_snapshot(source_db, store, monkeypatch):
    """Rows inserted while pg_dump runs are neither dumped nor counted."""
    real = dump._read_chunks

    def insert_during_dump(stream):
        with postgres.connect(source_db) as conn:
            conn.execute("INSERT INTO users (email, name) VALUES ('late@example.com', 'Late')")
        yield from real(stream)

    monkeypatch.setattr(dump, "_read_chunks", insert_during_dump)
    manifest = backup_database(source_db, store)
    assert manifest.row_counts["public.users"] == 50
    assert "late@example.com" not in gzip.decompress(store.get_bytes(manifest.key)).decode()


def test_password_stays_out_of_argv_and_environment(password_server, store, monkeypatch):
    """While pg_dump runs, neither `ps` nor its environment shows the password."""
    with postgres.connect(password_server) as conn:
        conn.execute("DROP TABLE IF EXISTS filler")
        conn.execute(
            "CREATE TABLE filler AS SELECT md5(i::text) AS v FROM generate_series(1, 20000) i"
        )
    monkeypatch.setattr(dump, "CHUNK", 16 * 1024)  # first read returns while pg_dump still writes
    real = dump._read_chunks
    seen: dict[str, str] = {}

    def inspect_running_pg_dump(stream):
        seen["ps"] = subprocess.run(
            ["ps", "-eww", "-o", "args"], capture_output=True, text=True
        ).stdout
        pids = subprocess.run(
            ["pgrep", "-f", "pg_dump"], capture_output=True, text=True
        ).stdout.split()
        seen["environ"] = "".join(
            Path(f"/proc/{p}/environ").read_text(errors="replace") for p in pids
        )
        yield from real(stream)

    monkeypatch.setattr(dump, "_read_chunks", inspect_running_pg_dump)
    manifest = backup_database(password_server, store)

    assert "pg_dump" in seen["ps"] and "PGPASSFILE" in seen["environ"]
    secret = password_server.password
    assert secret not in seen["ps"] and secret not in seen["environ"]
    assert secret not in store.get_bytes(manifest_key(manifest.key)).decode()


def test_second_concurrent_backup_is_refused(source_db, store, fake_pg_dump):
    fake_pg_dump('sleep 2; exec "$REAL" "$@"')
    results: dict[str, object] = {}

    def first():
        results["first"] = backup_database(source_db, store)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        threading.Event().wait(1.0)
        with pytest.raises(BackupLocked, match="another backup"):
            backup_database(source_db, store)
    finally:
        thread.join()
    manifest = results["first"]
    assert isinstance(manifest, Manifest)
    assert _stored(store) == [manifest.key, manifest_key(manifest.key)]
