"""restore_database: the chosen backup into the chosen database; a live one only on confirmation."""

import secrets

import pytest
from dagster import DagsterEventType, DagsterInstance, Definitions

from sage_ops import postgres
from sage_ops.backups import defs as backups
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.manifest import PRE_MIGRATION
from sage_ops.backups.verify import verify_backup
from sage_ops.resources import BackupConfig


@pytest.fixture
def target_name(pg_server):
    name = f"sage_ops_restore_{secrets.token_hex(4)}"
    yield name
    with postgres.connect(pg_server) as conn:
        for (db,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (name + "%",)
        ).fetchall():
            conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')


def _restore(store, monkeypatch, url, instance=None, **config):
    monkeypatch.setenv("RESTORE_TARGET", url)
    definitions = Definitions.merge(
        backups.defs, Definitions(resources={"backups": BackupConfig(backup_url=store.url)})
    )
    run_config = {
        "ops": {
            "restore_backup_op": {"config": {"target_database_url_env": "RESTORE_TARGET", **config}}
        }
    }
    return definitions.resolve_job_def("restore_database").execute_in_process(
        run_config=run_config,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _pre_migration_backup(source_db, store):
    manifest = backup_database(source_db, store, DumpOptions(purpose=PRE_MIGRATION))
    verify_backup(store, manifest, "checksum", None)
    return manifest


def _counts(target):
    with postgres.connect(target) as conn:
        return postgres.table_row_counts(conn)


def test_default_restores_the_latest_pre_migration_backup_into_a_new_database(
    source_db, store, pg_server, target_name, monkeypatch
):
    manifest = _pre_migration_backup(source_db, store)
    backup_database(source_db, store)  # a newer nightly backup is not the default
    target = pg_server.with_database(target_name)
    instance = DagsterInstance.ephemeral()
    result = _restore(store, monkeypatch, target.redacted, instance)
    assert result.success
    assert _counts(target) == manifest.row_counts
    text = " ".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert f"restoring {manifest.key} into {target.redacted}: run {result.run_id}" in text
    assert "launched from CLI or API" in text


def test_live_database_needs_confirmation_and_is_kept(
    source_db, store, pg_server, target_name, monkeypatch
):
    manifest = _pre_migration_backup(source_db, store)
    live = pg_server.with_database(target_name)
    with postgres.connect(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{target_name}"')
    with postgres.connect(live) as conn:
        conn.execute("CREATE TABLE precious AS SELECT 42 AS answer")

    refused = _restore(store, monkeypatch, live.redacted)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert f"set confirm to '{target_name}'" in failure.step_failure_data.error.message
    assert _counts(live) == {"public.precious": 1}

    replaced = _restore(store, monkeypatch, live.redacted, confirm=target_name)
    assert replaced.success
    assert _counts(live) == manifest.row_counts
    with postgres.connect(pg_server) as conn:
        [(kept,)] = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (target_name + "_before_restore_%",),
        ).fetchall()
    assert _counts(pg_server.with_database(kept)) == {"public.precious": 1}


def test_launch_source():
    assert backups.launch_source({"dagster/sensor_name": "alarm_sensor"}) == "sensor alarm_sensor"
    assert backups.launch_source({"dagster/schedule_name": "s"}) == "schedule s"
    assert backups.launch_source({"dagster/from_ui": "true"}) == "UI"
    assert backups.launch_source({}) == "CLI or API"
