"""`sage-ops backups restore` refuses what the restore job refuses: another database's backup
unless its source is named, an unverified backup without the override, a future-dated "latest"."""

import json

import pytest

from sage_ops import postgres
from sage_ops.backups.dump import backup_database
from sage_ops.backups.manifest import manifest_key
from sage_ops.backups.store import LocalStore
from sage_ops.backups.verify import verify_backup
from tests.test_cli import _run


@pytest.fixture
def store(tmp_path):
    return LocalStore(f"file://{tmp_path}/b")


@pytest.fixture
def env(source_db, store):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DAGSTER"))}
    env.update(DATABASE_URL=source_db.redacted, SAGE_OPS_BACKUP_URL=store.url)
    return env


@pytest.fixture
def other_backup(pg_server, store):
    """A verified backup of another database in the same store."""
    with postgres.scratch_database(pg_server, prefix="sage_ops_other") as other:
        with postgres.connect(other) as conn:
            conn.execute("CREATE TABLE other_only (id int)")
        manifest = backup_database(other, store)
        verify_backup(store, manifest, "checksum", None)
        yield manifest


def _restore(pg_server, env, *args):
    with postgres.scratch_database(pg_server, prefix="sage_ops_restore") as empty:
        env["RESTORE_DATABASE_URL"] = empty.redacted
        result = _run(["backups", "restore", *args], env)
        with postgres.connect(empty) as conn:
            return result, set(postgres.table_row_counts(conn))


def test_a_key_of_another_database_needs_its_source_named(pg_server, env, other_backup):
    refused, tables = _restore(pg_server, env, other_backup.key)
    assert refused.returncode == 1 and "is a backup of" in refused.stderr
    assert tables == set()
    named, tables = _restore(
        pg_server, env, other_backup.key, "--source-database", other_backup.database
    )
    assert named.returncode == 0, named.stderr
    assert tables == {"public.other_only"}


def test_latest_is_never_another_databases_backup(pg_server, env, source_db, other_backup):
    result, tables = _restore(pg_server, env, "latest")
    assert result.returncode == 1 and "no verified backup of" in result.stderr
    assert tables == set()


def test_an_unverified_key_needs_the_override(pg_server, env, source_db, store):
    manifest = backup_database(source_db, store)
    refused, tables = _restore(pg_server, env, manifest.key)
    assert refused.returncode == 1 and "is not verified" in refused.stderr
    assert tables == set()
    allowed, tables = _restore(pg_server, env, manifest.key, "--allow-unverified")
    assert allowed.returncode == 0, allowed.stderr
    assert tables == set(manifest.row_counts)


def test_latest_skips_a_future_dated_backup(pg_server, env, source_db, store, tmp_path):
    good = backup_database(source_db, store)
    verify_backup(store, good, "checksum", None)
    skewed = backup_database(source_db, store)
    verify_backup(store, skewed, "checksum", None)
    path = tmp_path / "b" / manifest_key(skewed.key)
    raw = json.loads(path.read_text())
    raw["started_at"] = "2099-01-01T00:00:00+00:00"  # written by a host whose clock ran ahead
    path.write_text(json.dumps(raw))
    result, tables = _restore(pg_server, env, "latest")
    assert result.returncode == 0, result.stderr
    assert f"restoring {good.key}" in result.stdout
    assert f"skipped {skewed.key}: dated in the future" in result.stderr
    assert tables == set(good.row_counts)
