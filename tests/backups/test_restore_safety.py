"""Restores that fail or collide leave the target as it was: item 3 and 6 of issue 10.

Live names are 60+ bytes (with multi-byte characters) so every derived name has to be shortened.
"""

import contextlib
import gzip
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import psycopg
import pytest
from dagster import DagsterInstance

from sage_ops import postgres
from sage_ops.backups import restore as restore_module
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.manifest import CUSTOM, MANIFEST_SUFFIX, PLAIN, PRE_MIGRATION
from sage_ops.backups.store import LocalStore
from sage_ops.backups.verify import verify_backup
from sage_ops.errors import StoreError
from sage_ops.leftover_databases import UNMARKED, own_databases
from tests.backups.test_restore_job import (
    counts,
    databases_like,
    drop_databases_like,
    failure_message,
    log_text,
    pre_migration_backup,
    restore,
)


@pytest.fixture
def prefix(pg_server):
    """Every database a test makes (and every name derived from them) starts with this."""
    value = f"sage_ops_rs_{secrets.token_hex(4)}"
    yield value
    drop_databases_like(pg_server, value)


def long_name(prefix: str) -> str:
    name = prefix + "_live_é"
    while len((name + "é").encode()) <= 63:
        name += "é"
    return name


@pytest.fixture
def live(pg_server, source_db, store, prefix):
    """A live database with a 63-byte name, its pre-migration backup, then a change after it."""
    name = long_name(prefix)
    with postgres.connect(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source_db.dbname}"')
    target = pg_server.with_database(name)
    manifest = pre_migration_backup(target, store)
    with postgres.connect(target) as conn:
        conn.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    return target, manifest


def assert_as_it_was(server, target, expected_counts):
    """Connectable under its own name, connections allowed, contents unchanged."""
    assert counts(target) == expected_counts
    with postgres.connect(server) as conn:
        row = conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", (target.dbname,)
        ).fetchone()
    assert row == (True,)


def cut_stream(monkeypatch, interrupt):
    """Reading a backup object stops part-way: two chunks, then `interrupt(key)` (raise a read
    error, or kill the process). For a plain dump the chunks end at line ends inside the
    messages table's COPY, a prefix psql accepts on its own (tables, a few rows, no indexes)."""
    real = LocalStore.iter_chunks

    def partial(self, key):
        if key.endswith(MANIFEST_SUFFIX):
            yield from real(self, key)
            return
        yield from _partial_chunks(key, b"".join(real(self, key)))
        interrupt(key)

    monkeypatch.setattr(LocalStore, "iter_chunks", partial)


def _partial_chunks(key: str, data: bytes) -> list[bytes]:
    if not key.endswith(".sql.gz"):
        return [data[: len(data) // 3], data[len(data) // 3 : len(data) // 2]]
    text = gzip.decompress(data).decode()
    cuts = [text.index("COPY public.messages")]
    for _ in range(6):
        cuts.append(text.index("\n", cuts[-1]) + 1)
    return [gzip.compress(text[a:b].encode()) for a, b in ((0, cuts[3]), (cuts[3], cuts[6]))]


def fail_stream_midway(monkeypatch):
    def connection_reset(key):
        raise StoreError(f"cannot read {key}: connection reset")

    cut_stream(monkeypatch, connection_reset)


def test_long_live_name_is_replaced_twice_and_kept_under_names_that_exist(
    live, pg_server, store, prefix, monkeypatch
):
    target, manifest = live
    kept = []
    for _ in range(2):
        before = counts(target)
        instance = DagsterInstance.ephemeral()
        result = restore(store, monkeypatch, target.redacted, instance, confirm=target.dbname)
        assert result.success, failure_message(result)
        assert counts(target) == manifest.row_counts
        new = sorted(set(databases_like(pg_server, prefix)) - {target.dbname} - set(kept))
        assert len(new) == 1, new
        assert len(new[0].encode()) <= 63
        assert f"the replaced database is kept as {new[0]} " in log_text(instance, result)
        assert counts(pg_server.with_database(new[0])) == before
        kept += new
        time.sleep(1)  # names carry a one-second stamp
    assert "public.precious" in counts(pg_server.with_database(kept[0]))
    assert_as_it_was(pg_server, target, manifest.row_counts)


def test_taken_names_are_refused_before_anything_changes(
    live, pg_server, store, prefix, monkeypatch
):
    target, manifest = live
    monkeypatch.setattr(restore_module, "_stamp", lambda: "20260101120000")
    first = restore(store, monkeypatch, target.redacted, confirm=target.dbname)
    assert first.success, failure_message(first)
    before = set(databases_like(pg_server, prefix))

    again = restore(store, monkeypatch, target.redacted, confirm=target.dbname)
    assert not again.success
    assert "already exists" in failure_message(again)
    assert "nothing was changed" in failure_message(again)
    assert_as_it_was(pg_server, target, manifest.row_counts)
    assert set(databases_like(pg_server, prefix)) == before


def test_sessions_on_the_live_database_are_ended_and_it_accepts_connections_after(
    live, pg_server, store, monkeypatch
):
    target, manifest = live
    with postgres.connect(target) as session:
        result = restore(store, monkeypatch, target.redacted, confirm=target.dbname)
        assert result.success, failure_message(result)
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    assert_as_it_was(pg_server, target, manifest.row_counts)


def test_an_application_reconnecting_all_the_time_does_not_block_the_swap(
    live, pg_server, store, monkeypatch
):
    target, manifest = live
    stop, seen = threading.Event(), []

    def application():
        while not stop.is_set():
            info = {**target.conninfo(), "application_name": "app"}
            with contextlib.suppress(psycopg.Error), psycopg.connect(**info) as conn:
                seen.append(postgres.table_row_counts(conn))
                time.sleep(0.02)

    clients = [threading.Thread(target=application) for _ in range(6)]
    for client in clients:
        client.start()
    try:
        result = restore(store, monkeypatch, target.redacted, confirm=target.dbname)
        assert result.success, failure_message(result)
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert seen[-1] == manifest.row_counts  # the application is on the restored database
    assert_as_it_was(pg_server, target, manifest.row_counts)


@pytest.mark.parametrize("fmt", [PLAIN, CUSTOM])
def test_stream_failing_midway_over_a_live_database_leaves_it_as_it_was(
    live, pg_server, store, prefix, monkeypatch, fmt
):
    target, _ = live
    manifest = backup_database(target, store, DumpOptions(fmt=fmt, purpose=PRE_MIGRATION))
    verify_backup(store, manifest, "checksum", None)
    before, contents = set(databases_like(pg_server, prefix)), counts(target)
    fail_stream_midway(monkeypatch)
    result = restore(
        store, monkeypatch, target.redacted, backup_key=manifest.key, confirm=target.dbname
    )
    assert not result.success
    assert "connection reset" in failure_message(result)
    assert_as_it_was(pg_server, target, contents)
    assert set(databases_like(pg_server, prefix)) == before  # no _restore_ database left


@pytest.mark.parametrize("fmt", [PLAIN, CUSTOM])
@pytest.mark.parametrize("exists", [True, False], ids=["empty", "absent"])
def test_stream_failing_midway_commits_nothing(
    source_db, pg_server, store, prefix, monkeypatch, fmt, exists
):
    manifest = backup_database(source_db, store, DumpOptions(fmt=fmt, purpose=PRE_MIGRATION))
    verify_backup(store, manifest, "checksum", None)
    name = long_name(prefix)
    if exists:
        with postgres.connect(pg_server) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    fail_stream_midway(monkeypatch)
    target = pg_server.with_database(name)
    result = restore(
        store,
        monkeypatch,
        target.redacted,
        backup_key=manifest.key,
        source_database=source_db.redacted,
    )
    assert not result.success
    assert "connection reset" in failure_message(result)
    assert databases_like(pg_server, prefix) == ([name] if exists else [])
    if exists:
        assert_as_it_was(pg_server, target, {})


def test_an_object_cut_short_but_still_valid_restores_nothing(
    source_db, pg_server, store, prefix, monkeypatch
):
    """A stored dump that ends early at a statement boundary is still a valid gzip stream: only
    the manifest's checksum tells, and it must before anything is committed."""
    manifest = pre_migration_backup(source_db, store)
    path = store.root / manifest.key
    text = gzip.decompress(path.read_bytes()).decode()
    path.write_bytes(gzip.compress(text[: text.index("COPY public.messages")].encode()))
    name = long_name(prefix)
    with postgres.connect(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = pg_server.with_database(name)
    result = restore(
        store,
        monkeypatch,
        target.redacted,
        backup_key=manifest.key,
        source_database=source_db.redacted,
    )
    assert not result.success
    assert "does not match its manifest" in failure_message(result)
    assert_as_it_was(pg_server, target, {})


def test_custom_backup_restores_into_a_database_whose_name_looks_like_conninfo(
    source_db, pg_server, store, prefix, monkeypatch
):
    manifest = backup_database(source_db, store, DumpOptions(fmt=CUSTOM, purpose=PRE_MIGRATION))
    verify_backup(store, manifest, "checksum", None)
    name = f"{prefix} dbname=postgres o'k\\"
    with postgres.connect(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{quote(name, safe='')}"
    result = restore(
        store, monkeypatch, url, backup_key=manifest.key, source_database=source_db.redacted
    )
    assert result.success, failure_message(result)
    assert counts(pg_server.with_database(name)) == manifest.row_counts
    with postgres.connect(pg_server) as conn:
        assert postgres.table_row_counts(conn) == {}  # not restored into "postgres"


def _die(*_):
    os.kill(os.getpid(), signal.SIGKILL)


def _after_sql(fragment, nth=1):
    """Kill this process right after the `nth` statement containing `fragment` ran."""

    def install(mp):
        real, seen = psycopg.Connection.execute, []

        def execute(self, query, *args, **kwargs):
            result = real(self, query, *args, **kwargs)
            text = query if isinstance(query, str) else query.as_string(self)
            if fragment in text:
                seen.append(text)
                if len(seen) == nth:
                    _die()
            return result

        mp.setattr(psycopg.Connection, "execute", execute)

    return install


def _after_call(owner, name):
    def install(mp):
        real = getattr(owner, name)

        def call(*args, **kwargs):
            result = real(*args, **kwargs)
            _die()
            return result

        mp.setattr(owner, name, call)

    return install


def _mid_stream(mp):
    def let_the_tool_run_then_die(_key):
        time.sleep(1)
        _die()

    cut_stream(mp, let_the_tool_run_then_die)


# Each step of a restore over a live database, in order; the run is killed right after it.
KILL_AFTER = {
    "replacement created": _after_sql("CREATE DATABASE"),
    "stream part-way": _mid_stream,
    "stream fed": _after_call(restore_module, "_feed"),
    "sessions ended": _after_sql("pg_terminate_backend"),
    "live renamed": _after_sql("RENAME TO", 1),
    "replacement renamed": _after_sql("RENAME TO", 2),
    "swap committed": _after_call(restore_module, "_swap_in"),
}


@pytest.mark.parametrize("fmt", [PLAIN, CUSTOM])
@pytest.mark.parametrize("step", list(KILL_AFTER))
def test_killed_after_any_step_the_live_name_stays_connectable(
    live, pg_server, store, prefix, monkeypatch, step, fmt
):
    target, _ = live
    manifest = backup_database(target, store, DumpOptions(fmt=fmt, purpose=PRE_MIGRATION))
    verify_backup(store, manifest, "checksum", None)
    with postgres.connect(target) as conn:
        conn.execute("DROP TABLE precious")
    before = counts(target)
    app = psycopg.connect(**{**target.conninfo(), "application_name": "app"}, autocommit=True)
    own_before = _restore_leftovers(pg_server)
    killed = subprocess.run(
        [sys.executable, "-m", __name__, step, store.url, target.redacted],
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    _wait_for_orphaned_tools(pg_server, prefix)
    app.close()

    committed = step == "swap committed"
    assert_as_it_was(pg_server, target, manifest.row_counts if committed else before)
    extra = set(databases_like(pg_server, prefix)) - {target.dbname}
    kept = {name for name in extra if "_before_restore_" in name}
    assert len(kept) == committed
    leftovers = _restore_leftovers(pg_server) - own_before
    assert len(leftovers) == (not committed)  # marked as sage_ops' own from its creation on
    for name in leftovers:
        assert counts(pg_server.with_database(name)) in ({}, manifest.row_counts)

    time.sleep(1)  # names carry a one-second stamp
    instance = DagsterInstance.ephemeral()
    rerun = restore(store, monkeypatch, target.redacted, instance, confirm=target.dbname)
    assert rerun.success, failure_message(rerun)
    assert counts(target) == manifest.row_counts
    for name in leftovers:  # the next restore drops them, and says so
        assert f"dropped {name}" in log_text(instance, rerun)
        assert name not in databases_like(pg_server, "")


def _restore_leftovers(server):
    return {
        db.name
        for db in own_databases(server)
        if db.leftover and db.kind in (postgres.RESTORE, UNMARKED)
    }


def _wait_for_orphaned_tools(server, prefix):
    """psql or pg_restore outlive the killed run until they read the end of their input."""
    deadline = time.monotonic() + 30
    with postgres.connect(server) as conn:
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s "
            "AND application_name = 'sage_ops'",
            (prefix + "%",),
        ).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def _killed_run(step, store_url, target_url):
    """The subprocess of the kill test: restore over the live database, killed after `step`."""
    mp = pytest.MonkeyPatch()
    KILL_AFTER[step](mp)
    target = postgres.PgTarget.from_url(target_url)
    restore(LocalStore(store_url), mp, target_url, confirm=target.dbname)


if __name__ == "__main__":
    _killed_run(*sys.argv[1:])
