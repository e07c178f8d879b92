"""Each fault the backup must survive: a clear error, and nothing partial or secret left behind."""

import os

import pytest

from sage_ops.backups.dump import backup_database
from sage_ops.backups.resources import BackupConfig
from sage_ops.backups.store import LocalStore
from sage_ops.backups.stores import open_store
from sage_ops.errors import ConfigError, DatabaseError, DumpError, StoreError
from sage_ops.postgres import PgTarget


def _assert_nothing_published(store: LocalStore) -> None:
    assert list(store.objects()) == []
    leftovers = os.listdir(store.root) if store.root.exists() else []
    assert leftovers == [], leftovers


def test_unreachable_database(store):
    target = PgTarget(host="127.0.0.1", port=1, user="app", dbname="sage", password="hunter2")
    with pytest.raises(DatabaseError, match="cannot connect.*is the server running") as err:
        backup_database(target, store)
    assert "hunter2" not in str(err.value)
    _assert_nothing_published(store)


def test_wrong_password(password_server, store):
    target = PgTarget.from_url(
        f"postgresql://postgres:wrong-{password_server.password}@127.0.0.1:{password_server.port}/postgres"
    )
    with pytest.raises(DatabaseError, match="password authentication failed") as err:
        backup_database(target, store)
    assert password_server.password not in str(err.value)
    _assert_nothing_published(store)


def test_nonexistent_database(pg_server, store):
    with pytest.raises(DatabaseError, match='database "sage_ops_nope" does not exist'):
        backup_database(pg_server.with_database("sage_ops_nope"), store)
    _assert_nothing_published(store)


def test_malformed_database_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@db:54x2/sage")
    with pytest.raises(ConfigError, match="DATABASE_URL is malformed") as err:
        BackupConfig.from_env(env_refs=False).target()
    assert "hunter2" not in str(err.value)


def test_unknown_store_scheme():
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'"):
        open_store("ftp://host/backups")


def test_pg_dump_killed_mid_stream(source_db, store, fake_pg_dump):
    fake_pg_dump('"$REAL" "$@" | head -c 20000; kill -KILL $$')
    with pytest.raises(DumpError, match="pg_dump was killed by SIGKILL after 20000 bytes"):
        backup_database(source_db, store)
    _assert_nothing_published(store)


def test_pg_dump_fails_after_writing_output(source_db, store, fake_pg_dump):
    fake_pg_dump('"$REAL" "$@"; echo "pg_dump: error: simulated late failure" >&2; exit 3')
    with pytest.raises(DumpError, match="exited with code 3 .*simulated late failure"):
        backup_database(source_db, store)
    _assert_nothing_published(store)


def test_truncated_output_with_exit_zero_is_refused(source_db, store, fake_pg_dump):
    """The seed's bug: without pipefail a failed dump looked like a small, valid backup."""
    fake_pg_dump('"$REAL" "$@" | head -c 5000; exit 0')
    with pytest.raises(DumpError, match="without its completion footer"):
        backup_database(source_db, store)
    _assert_nothing_published(store)


def test_unwritable_store(source_db, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = LocalStore(f"file://{blocker}/backups")
    with pytest.raises(StoreError, match="cannot create backup directory"):
        backup_database(source_db, store)
    assert blocker.read_text() == ""


def test_store_failure_mid_stream_aborts_and_stops_pg_dump(source_db, store, monkeypatch):
    from sage_ops.backups import store as store_module

    def disk_full(self, data):
        raise StoreError(f"cannot write {self.tmp}: No space left on device")

    monkeypatch.setattr(store_module._LocalWriter, "write", disk_full)
    with pytest.raises(StoreError, match="No space left on device"):
        backup_database(source_db, store)
    _assert_nothing_published(store)
