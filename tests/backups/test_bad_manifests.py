"""One bad manifest in the store is skipped with a warning naming it, never fatal (issue 10.7).

Each shape goes through the paths an operator uses: `sage-ops backups list`, the nightly_backup
job (backup_verified and retention), and `sage-ops backups restore` (latest, and by key).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions, serialize_value

from sage_ops import postgres
from sage_ops.backups import defs as backups
from sage_ops.backups.dump import backup_database
from sage_ops.backups.manifest import manifest_key
from sage_ops.backups.resources import BackupConfig
from sage_ops.backups.verify import verify_backup

SAGE_OPS = str(Path(sys.executable).parent / "sage-ops")
BAD_KEY = "backup_20261130_030000.sql.gz"  # newer than any good backup of the tests below


def _good_fields() -> dict:
    return {
        "key": BAD_KEY,
        "format": "plain",
        "size": 10,
        "sha256": "0" * 64,
        "database": "postgresql://app:***@db/sage",
        "pg_dump_version": "16.2",
        "server_version": "16.2",
        "started_at": "2026-11-30T03:00:00+00:00",
        "finished_at": "2026-11-30T03:00:01+00:00",
        "duration_s": 1.0,
        "raw_bytes": 100,
        "row_counts": {},
        "run_id": None,
        "tool_choice": "test",
        "purpose": "nightly",
        "created_by": "sage_ops",
        "verification": {"status": "passed"},
    }


def _with(**changes) -> bytes:
    return json.dumps({**_good_fields(), **changes}).encode()


SHAPES = {
    "list": b"[]",
    "null": b"null",
    "string": b'"backup"',
    "malformed started_at": _with(started_at="last tuesday"),
    "naive started_at": _with(started_at="2026-11-30T03:00:00"),
    "wrong types": _with(size="10 MB", row_counts=["a"], verification="passed"),
    "not json": b"{\x00",
}
shapes = pytest.mark.parametrize("body", SHAPES.values(), ids=SHAPES.keys())


def _plant(store, body: bytes, database: str | None = None) -> None:
    """A bad manifest (and an object under its key) that would sort first if it were read."""
    if database is not None and body.startswith(b"{") and b"\x00" not in body:
        body = json.dumps({**json.loads(body), "database": database}).encode()
    store.put_bytes(BAD_KEY, b"not a backup")
    store.put_bytes(manifest_key(BAD_KEY), body)


def _cli(args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DAGSTER"))}
    return subprocess.run(
        [SAGE_OPS, *args], env={**base, **env}, capture_output=True, text=True, timeout=300
    )


def _verified_backup(source_db, store):
    manifest = backup_database(source_db, store)
    assert verify_backup(store, manifest, "checksum", None).passed
    return manifest


@shapes
def test_backups_list_skips_a_bad_manifest_with_a_warning(source_db, store, body):
    good = _verified_backup(source_db, store)
    _plant(store, body, source_db.redacted)

    result = _cli(
        ["backups", "list"], DATABASE_URL=source_db.redacted, SAGE_OPS_BACKUP_URL=store.url
    )

    assert result.returncode == 0, result.stderr
    assert good.key in result.stdout and "passed" in result.stdout
    assert BAD_KEY not in result.stdout
    assert f"skipped {manifest_key(BAD_KEY)}" in result.stderr
    assert "Traceback" not in result.stderr


@shapes
def test_nightly_backup_verifies_and_retains_past_a_bad_manifest(source_db, store, body):
    older = _verified_backup(source_db, store)
    _plant(store, body, source_db.redacted)
    config = BackupConfig(
        backup_url=store.url, database_url=source_db.redacted, keep=1, verify_level="checksum"
    )
    definitions = Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
    instance = DagsterInstance.ephemeral()

    result = definitions.resolve_job_def("nightly_backup").execute_in_process(
        instance=instance, raise_on_error=False
    )

    assert result.success
    tonight = result.asset_materializations_for_node("db_backup")[0].metadata["key"].value
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "backup_verified"]
    assert check.passed and check.metadata["key"].value == tonight
    retention = result.asset_materializations_for_node("backup_retention")[0].metadata
    assert retention["kept"].value == [tonight] and retention["deleted"].value == [older.key]
    [skipped] = retention["skipped_manifests"].value
    assert skipped.startswith(f"skipped {manifest_key(BAD_KEY)}")
    keys = {o.key for o in store.objects()}
    assert {tonight, BAD_KEY, manifest_key(BAD_KEY)} <= keys and older.key not in keys
    [store_check] = [
        c for c in result.get_asset_check_evaluations() if c.check_name == "backup_store_clean"
    ]
    assert not store_check.passed and manifest_key(BAD_KEY) in store_check.description
    log = "\n".join(serialize_value(e) for e in instance.all_logs(result.run_id))
    assert f"skipped {manifest_key(BAD_KEY)}" in log


@shapes
def test_restore_latest_skips_a_bad_manifest(source_db, pg_server, store, body):
    good = _verified_backup(source_db, store)
    _plant(store, body, source_db.redacted)
    with postgres.scratch_database(pg_server, prefix="sage_ops_restore") as empty:
        result = _cli(
            ["backups", "restore", "latest"],
            DATABASE_URL=source_db.redacted,
            SAGE_OPS_BACKUP_URL=store.url,
            RESTORE_DATABASE_URL=empty.redacted,
        )
        assert result.returncode == 0, result.stderr
        assert f"restoring {good.key}" in result.stdout
        assert f"skipped {manifest_key(BAD_KEY)}" in result.stderr
        with postgres.connect(empty) as conn:
            assert postgres.table_row_counts(conn) == good.row_counts


@shapes
def test_restore_by_key_of_a_bad_manifest_is_refused_by_name(source_db, pg_server, store, body):
    _plant(store, body)
    with postgres.scratch_database(pg_server, prefix="sage_ops_restore") as empty:
        result = _cli(
            ["backups", "restore", BAD_KEY],
            DATABASE_URL=source_db.redacted,
            SAGE_OPS_BACKUP_URL=store.url,
            RESTORE_DATABASE_URL=empty.redacted,
        )
        assert result.returncode == 1
        assert f"{manifest_key(BAD_KEY)} is unreadable" in result.stderr
        assert "Traceback" not in result.stderr
        with postgres.connect(empty) as conn:
            assert postgres.table_row_counts(conn) == {}
