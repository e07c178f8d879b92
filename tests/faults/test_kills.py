"""An operator's worst night: nightly_backup, restore_database and migrate_database killed with
SIGKILL (their whole process group) at points tied to their progress. After each kill: nothing
torn or invisible in the store, nothing left on the server after the next run, the next run
succeeds, and retention keeps exactly KEEP verified backups.

The tests share one world and run in order; each leaves it as a successful run would.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sage_ops import postgres
from sage_ops.backups.catalog import load_manifests
from sage_ops.backups.store import PENDING_SUFFIX, pending_key
from sage_ops.backups.unrecorded import UNRECORDED_GRACE
from sage_ops.backups.verify import check_integrity
from sage_ops.leftover_databases import UNMARKED, own_databases
from sage_ops.lineage.names import MIGRATE_DATABASE, NIGHTLY_BACKUP, RESTORE_DATABASE
from tests.faults.conftest import KEEP, World, own_leftovers, server_query, verified_kept

pytestmark = pytest.mark.faults


def assert_store_sound(world: World) -> None:
    """Every backup object is whole and listed: with its manifest (and its checksum), or as
    unrecorded with a pending marker; every manifest's object is there or listed as missing."""
    keys = {o.key for o in world.store.objects()}
    manifests, _ = load_manifests(world.store)
    listing = world.sage_ops("backups", "list")
    assert listing.returncode == 0, listing.stderr
    for m in manifests:
        line = next(li for li in listing.stdout.splitlines() if li.startswith(m.key + " "))
        if m.key in keys:
            check_integrity(world.store, m)
        else:
            assert line.endswith("missing"), line
    recorded = {m.key for m in manifests}
    for key in keys:
        if key.startswith("backup_") and not key.endswith(".json"):
            assert key in recorded or pending_key(key) in keys, f"{key} is invisible"
            assert key in listing.stdout


def next_nightly_succeeds(world: World) -> str:
    out = world.run(NIGHTLY_BACKUP)
    assert len(verified_kept(world)) == KEEP
    assert_store_sound(world)
    return out


def scratch_leftovers(world: World) -> set[str]:
    """Scratch databases of ours that no live run claims (other runs' on a shared server are
    either claimed or not ours)."""
    return {
        db.name
        for db in own_databases(world.server)
        if db.leftover and db.kind in (postgres.SCRATCH, UNMARKED)
    }


def _eventually(probe, seconds: float = 15):
    deadline = time.monotonic() + seconds
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_baseline_two_verified_backups(world: World):
    for _ in range(KEEP):
        world.run(NIGHTLY_BACKUP)
    assert len(verified_kept(world)) == KEEP


def _partial_bytes(world: World) -> int:
    return sum(p.stat().st_size for p in world.store.root.glob("*.partial") if p.exists())


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_killed_mid_dump(world: World, fraction: float):
    size = load_manifests(world.store)[0][0].size
    before = {o.key for o in world.store.objects()}
    proc = world.launch(NIGHTLY_BACKUP)
    world.kill_when(
        proc, lambda: _partial_bytes(world) >= fraction * size, f"{fraction:.0%} of the dump"
    )
    new = {o.key for o in world.store.objects()} - before
    assert all(k.endswith(PENDING_SUFFIX) for k in new), new  # nothing under a backup's key
    assert_store_sound(world)
    next_nightly_succeeds(world)


def _published_without_manifest(world: World) -> bool:
    names = set(os.listdir(world.store.root))
    return any(n.endswith(".sql.gz") and n + ".manifest.json" not in names for n in names)


def test_killed_between_publishing_the_object_and_its_manifest(world: World):
    proc = world.launch(NIGHTLY_BACKUP)
    world.kill_when(proc, lambda: _published_without_manifest(world), "the object in place")
    keys = {o.key for o in world.store.objects()}
    orphan = next(k for k in keys if k.endswith(".sql.gz") and k + ".manifest.json" not in keys)
    assert pending_key(orphan) in keys  # recorded as sage_ops' own from before it started
    listing = world.sage_ops("backups", "list").stdout
    assert f"{orphan}  unrecorded" in listing
    assert_store_sound(world)

    out = next_nightly_succeeds(world)  # within the grace period: named, kept
    assert orphan in {o.key for o in world.store.objects()}
    assert orphan in out and "no manifest yet" in out

    _age_marker(world, orphan, UNRECORDED_GRACE + timedelta(minutes=1))
    out = next_nightly_succeeds(world)
    assert f"removed {orphan}" in out
    assert not {orphan, pending_key(orphan)} & {o.key for o in world.store.objects()}


def _age_marker(world: World, key: str, age: timedelta) -> None:
    """As if the grace period had passed since the killed run started writing `key`."""
    path = Path(world.store.root, key + PENDING_SUFFIX)
    record = json.loads(path.read_text())
    record["started_at"] = (datetime.now(UTC) - age).isoformat()
    path.write_text(json.dumps(record))


def _copying_into(world: World, pattern: str) -> bool:
    return bool(
        server_query(
            world.server,
            "SELECT 1 FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid "
            "WHERE d.datname LIKE %s AND p.tuples_processed > 10000",
            pattern,
        )
    )


def _counting_in(world: World, pattern: str) -> bool:
    """Counting `events` (a table only this suite's data has): the restore has committed."""
    return bool(
        server_query(
            world.server,
            "SELECT 1 FROM pg_stat_activity WHERE datname LIKE %s "
            'AND query LIKE \'SELECT count(*) FROM "public"."events"%%\'',
            pattern,
        )
    )


@pytest.mark.parametrize("point", ["copy", "committed"])
def test_killed_during_verification(world: World, point: str):
    before = scratch_leftovers(world)
    proc = world.launch(NIGHTLY_BACKUP)
    if point == "copy":
        world.kill_when(proc, lambda: _copying_into(world, "sage_ops_verify_%"), "the COPY")
    else:
        world.kill_when(proc, lambda: _counting_in(world, "sage_ops_verify_%"), "the commit")
    left = _eventually(lambda: scratch_leftovers(world) - before)  # once the server saw the kill
    assert len(left) == 1
    if point == "committed":  # a full copy of the data, left on the server by the kill
        [name] = left
        with postgres.connect(world.server.with_database(name)) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] > 0
    assert_store_sound(world)
    out = next_nightly_succeeds(world)
    assert own_leftovers(world.server, left) == set()
    assert f"dropped a killed verification's scratch database: {next(iter(left))}" in out


def test_killed_during_retentions_deletes(world: World):
    reached = world.home / "reached"
    proc = world.launch(NIGHTLY_BACKUP, pause="retention-delete")
    world.kill_when(proc, reached.exists, "retention's deletes")
    deleted = reached.read_text().split(",")
    reached.unlink()
    listing = world.sage_ops("backups", "list").stdout
    for key in deleted:  # the manifest outlived its object: listed as missing, never passed
        assert any(li.startswith(key) and li.endswith("missing") for li in listing.splitlines())
    assert_store_sound(world)
    next_nightly_succeeds(world)
    manifests = {m.key for m in load_manifests(world.store)[0]}
    assert not set(deleted) & manifests


def _restore_config(world: World, target_env: str) -> dict:
    key = verified_kept(world)[0]
    return {
        "ops": {
            "restore_backup_op": {
                "config": {
                    "backup_key": key,
                    "target_database_url_env": target_env,
                    "source_database": world.source.redacted,
                }
            }
        }
    }


@pytest.mark.parametrize("point", ["load", "index build"])
def test_killed_during_a_restore(world: World, point: str):
    name = f"sage_fault_restored_{os.urandom(3).hex()}"
    world.env["FAULT_RESTORE_URL"] = world.server.with_database(name).redacted
    config = _restore_config(world, "FAULT_RESTORE_URL")
    proc = world.launch(RESTORE_DATABASE, config)
    if point == "load":
        world.kill_when(proc, lambda: _copying_into(world, f"{name}_restore_%"), "the load")
    else:
        world.kill_when(proc, lambda: _building_index(world, f"{name}_restore_%"), "the index")
    left = {
        n
        for (n,) in server_query(
            world.server, "SELECT datname FROM pg_database WHERE datname LIKE %s", name + "%"
        )
    }
    assert name not in left  # never a partial database under the target's name
    assert len(left) == 1
    out = world.run(RESTORE_DATABASE, config)
    assert f"dropped {next(iter(left))}" in out
    assert own_leftovers(world.server, left) == set()
    with postgres.connect(world.server.with_database(name)) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] > 0
    postgres.drop_database(world.server, name)


def _building_index(world: World, pattern: str) -> bool:
    return bool(
        server_query(
            world.server,
            "SELECT 1 FROM pg_stat_progress_create_index p JOIN pg_database d ON d.oid = p.datid "
            "WHERE d.datname LIKE %s",
            pattern,
        )
    )


SLOW = """ALTER TABLE small ADD COLUMN note text;
SELECT pg_sleep(60);
"""


def test_killed_during_a_migrations_slow_statement(world: World, tmp_path: Path):
    folder = tmp_path / "migrations" / "20261201000001_add_note"
    folder.mkdir(parents=True)
    (folder / "migration.sql").write_text(SLOW)
    world.env["SAGE_OPS_MIGRATIONS_DIR"] = str(tmp_path / "migrations")
    proc = world.launch(MIGRATE_DATABASE)
    world.kill_when(proc, lambda: _running(world, "pg_sleep"), "the slow statement")
    # The server ends the dead run's statement (client_connection_check_interval) and its lock.
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while _running(world, "pg_sleep") or _locked(world, "small"):
        assert datetime.now(UTC) < deadline, "the killed migration's session kept running"
        time.sleep(0.05)
    status = world.sage_ops("migrations", "status")
    assert status.returncode == 1
    assert "20261201000001_add_note was interrupted" in status.stderr
    assert "sage-ops migrations resolve --rolled-back 20261201000001_add_note" in status.stderr
    resolved = world.sage_ops("migrations", "resolve", "--rolled-back", "20261201000001_add_note")
    assert resolved.returncode == 0, resolved.stderr
    (folder / "migration.sql").write_text("ALTER TABLE small ADD COLUMN note text;\n")
    world.run(MIGRATE_DATABASE)
    assert world.sage_ops("migrations", "status").returncode == 0
    assert len(verified_kept(world)) >= KEEP


def _running(world: World, fragment: str) -> bool:
    return bool(
        server_query(
            world.server,
            "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
            "AND query LIKE %s AND pid <> pg_backend_pid()",
            world.source.dbname,
            f"%{fragment}%",
        )
    )


def _locked(world: World, table: str) -> bool:
    return bool(
        server_query(
            world.server.with_database(world.source.dbname),
            "SELECT 1 FROM pg_locks WHERE relation = to_regclass(%s) AND mode = 'AccessExclusiveLock'",
            table,
        )
    )
