"""The full verification restores the dump on the scratch server while pg_dump writes it (issue
23): same proof as restoring the stored object afterwards, nothing published unless it holds, a
slow restore holding the dump back, and a scratch server made for throw-away restores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dagster import AssetCheckKey, DagsterInstance, Definitions

from sage_ops import postgres
from sage_ops.backups import defs as backups
from sage_ops.backups import scratch_restore
from sage_ops.backups.catalog import find_manifest
from sage_ops.backups.dump import CHUNK, DumpOptions
from sage_ops.backups.dump_and_verify import restored_while_dumping
from sage_ops.backups.manifest import CUSTOM, PLAIN
from sage_ops.embedded import DURABILITY_OFF, scratch_maintenance_mem_mb, scratch_server
from sage_ops.errors import DumpError, VerificationError
from sage_ops.postgres import PgTarget
from tests.backups.test_defs import _config, _run

# About 100 MB of raw dump: more than the restore queue, the pipe and gzip's chunks in flight.
BIG_TABLE = """
CREATE TABLE public.bulk (id int PRIMARY KEY, body text);
INSERT INTO public.bulk SELECT i, repeat(md5(i::text), 10) FROM generate_series(1, 300000) i;
"""
FakeTools = Callable[[dict[str, str]], None]


@pytest.fixture
def big_source(source_db: PgTarget) -> PgTarget:
    with postgres.connect(source_db) as conn:
        conn.execute(BIG_TABLE)
    return source_db


@pytest.fixture
def fake_tools(tmp_path: Path, real_bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    """A bin dir of the real client tools in which each named tool is a bash wrapper (`$REAL` is
    the real tool; `--version` goes to it); SAGE_OPS_PG_BIN_DIR points at it."""

    def _install(bodies: dict[str, str]) -> None:
        bin_dir = tmp_path / "fakebin"
        bin_dir.mkdir()
        for tool in real_bin_dir.iterdir():
            if tool.name not in bodies:
                (bin_dir / tool.name).symlink_to(tool)
        for name, body in bodies.items():
            (bin_dir / name).write_text(
                f'#!/bin/bash\nREAL="{real_bin_dir}/{name}"\n'
                'if [ "$1" = "--version" ]; then exec "$REAL" --version; fi\n'
                f"{body}\n"
            )
            (bin_dir / name).chmod(0o755)
        monkeypatch.setenv("SAGE_OPS_PG_BIN_DIR", str(bin_dir))

    return _install


@pytest.fixture
def scratch_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the scratch databases the restores create (the server is shared)."""
    names: list[str] = []
    start = scratch_restore.StreamedRestore.start

    def recorded(self: scratch_restore.StreamedRestore, pg_dump_version: str) -> None:
        try:
            start(self, pg_dump_version)
        finally:
            names.append(self.database.dbname)

    monkeypatch.setattr(scratch_restore.StreamedRestore, "start", recorded)
    return names


def _left(server: PgTarget, names: list[str]) -> list[str]:
    with postgres.connect(server) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,)
        ).fetchall()
    return [name for (name,) in rows]


@pytest.mark.parametrize("fmt", [PLAIN, CUSTOM])
def test_the_backup_is_verified_by_a_restore_of_its_own_stream(
    source_db, store, pg_server, fmt, scratch_names
):
    manifest, report = restored_while_dumping(source_db, store, DumpOptions(fmt), pg_server, "r")

    assert report.passed, report.detail
    assert "restored while dumping" in report.detail
    assert report.restored_row_counts == manifest.row_counts and manifest.row_counts
    stored = find_manifest(store, manifest.key)
    assert stored.verified and stored.verification.level == "full"
    assert stored.verification.run_id == "r"
    assert scratch_names and _left(pg_server, scratch_names) == []  # dropped after the restore


def test_a_failing_restore_fails_the_backup_and_publishes_nothing(
    source_db, store, pg_server, fake_tools, scratch_names
):
    fake_tools({"psql": "head -c 1000 > /dev/null; echo 'psql: ERROR: disk full' >&2; exit 3"})

    with pytest.raises(VerificationError, match="scratch restore .* failed \\(exit 3\\).*disk"):
        restored_while_dumping(source_db, store, DumpOptions(), pg_server)

    assert list(store.objects()) == []
    assert scratch_names and _left(pg_server, scratch_names) == []


def test_a_failing_dump_stops_the_restore_and_publishes_nothing(
    source_db, store, pg_server, fake_tools, tmp_path, scratch_names
):
    pid = tmp_path / "psql.pid"
    fake_tools(
        {
            "psql": f'echo $$ > {pid}; exec "$REAL" "$@"',
            "pg_dump": '"$REAL" "$@" | head -c 20000; exit 1',
        }
    )

    with pytest.raises(DumpError, match="pg_dump exited with code 1"):
        restored_while_dumping(source_db, store, DumpOptions(), pg_server)

    assert list(store.objects()) == []
    assert scratch_names and _left(pg_server, scratch_names) == []
    assert not Path(f"/proc/{pid.read_text().strip()}").exists()  # psql was ended


def test_a_stalled_restore_holds_the_dump_back(big_source, store, pg_server, fake_tools, tmp_path):
    go = tmp_path / "go"
    fake_tools({"psql": f'while [ ! -e {go} ]; do sleep 0.05; done; exec "$REAL" "$@"'})
    fed: list[int] = []
    feed = scratch_restore.StreamedRestore.feed

    def counted(self, block: bytes) -> None:
        fed.append(len(block))
        feed(self, block)

    done: list[object] = []

    def backup() -> None:
        done.append(restored_while_dumping(big_source, store, DumpOptions(), pg_server))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scratch_restore.StreamedRestore, "feed", counted)
        worker = threading.Thread(target=backup)
        worker.start()
        held = _when_stable(lambda: len(fed))
        go.touch()
        worker.join(timeout=300)

    manifest, report = done[0]  # type: ignore[misc]
    assert report.passed, report.detail
    # Each stored block is one 4 MiB chunk of pg_dump's output. While psql read nothing: one
    # block in the pump's blocked write, a full queue, one waiting in feed, and nothing more
    # read from pg_dump than the compressor's few chunks in flight (its own pipe then fills).
    assert held <= scratch_restore.QUEUE_CHUNKS + 2
    assert len(fed) == -(-manifest.raw_bytes // CHUNK) >= 3 * held


def _when_stable(value: Callable[[], int], quiet_s: float = 1.5) -> int:
    """`value()` once it has not changed for `quiet_s`."""
    last, since = value(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.1)
        if (now := value()) != last:
            last, since = now, time.monotonic()
    return last


@pytest.fixture
def embedded_scratch() -> Iterator[PgTarget]:
    yield scratch_server()


def test_the_embedded_scratch_runs_without_durability_and_loads_without_wal(
    big_source, store, embedded_scratch
):
    with postgres.connect(embedded_scratch) as conn:
        shown = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in [*DURABILITY_OFF, "maintenance_work_mem"]
        }
        wal_before = _wal_lsn(conn)
    assert shown == DURABILITY_OFF | {"maintenance_work_mem": _mem(scratch_maintenance_mem_mb())}

    manifest, report = restored_while_dumping(big_source, store, DumpOptions(), embedded_scratch)

    assert report.passed, report.detail
    with postgres.connect(embedded_scratch) as conn:
        wal = _wal_lsn(conn) - wal_before
    # Created and loaded in one transaction at wal_level=minimal: the rows write no WAL (what
    # remains is the catalog and the new files' records).
    assert wal < manifest.raw_bytes / 10, (wal, manifest.raw_bytes)


def test_an_operator_scratch_server_is_never_reconfigured(source_db, store, pg_server):
    settings = [*DURABILITY_OFF, "maintenance_work_mem"]
    before = _settings(pg_server, settings)
    _, report = restored_while_dumping(source_db, store, DumpOptions(), pg_server)
    assert report.passed, report.detail
    assert _settings(pg_server, settings) == before


def _settings(server: PgTarget, names: list[str]) -> dict[str, tuple[str, str]]:
    with postgres.connect(server) as conn:
        rows = conn.execute(
            "SELECT name, setting, source FROM pg_settings WHERE name = ANY(%s)", (names,)
        ).fetchall()
    return {name: (setting, source) for name, setting, source in rows}


def _wal_lsn(conn) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0])


def _mem(mb: int) -> str:
    return f"{mb // 1024}GB" if mb % 1024 == 0 else f"{mb}MB"


def test_the_nightly_run_verifies_while_dumping_and_the_check_alone_restores_afresh(
    source_db, store
):
    config = _config(store, database_url=source_db.secret_url())
    instance = DagsterInstance.ephemeral()

    nightly = _run(config, instance)

    assert nightly.success
    [check] = [
        c for c in nightly.get_asset_check_evaluations() if c.check_name == "backup_verified"
    ]
    assert check.passed and "restored while dumping" in check.description
    manifest = find_manifest(store, check.metadata["key"].value)
    assert check.metadata["restored_row_counts"].value == manifest.row_counts
    assert manifest.verification.run_id == nightly.run_id

    # Executed on its own (the UI's "Execute" on the check): a fresh restore of the stored object.
    alone = (
        Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
        .resolve_implicit_global_asset_job_def()
        .get_subset(asset_check_selection={AssetCheckKey(backups.db_backup.key, "backup_verified")})
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    [again] = alone.get_asset_check_evaluations()
    assert again.passed and "restored while dumping" not in again.description
    assert find_manifest(store, manifest.key).verification.run_id == alone.run_id
