"""restore_database: the chosen backup into the chosen database; a live one only on confirmation.

A restore takes backups of the target database itself unless the operator names another source.
"""

import secrets

import pytest
from dagster import DagsterEventType, DagsterInstance, Definitions
from psycopg import sql

from sage_ops import postgres
from sage_ops.backups import defs as backups
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.manifest import PRE_MIGRATION
from sage_ops.backups.resources import BackupConfig
from sage_ops.backups.verify import verify_backup


@pytest.fixture
def target_name(pg_server):
    name = f"sage_ops_restore_{secrets.token_hex(4)}"
    yield name
    drop_databases_like(pg_server, name)


def drop_databases_like(server, prefix):
    with postgres.connect(server) as conn:
        for (db,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall():
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))


def restore(store, monkeypatch, url, instance=None, tags=None, **config):
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
        tags=tags,
    )


def failure_message(result):
    event = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    return event.step_failure_data.error.message


def log_text(instance, result):
    return " ".join(entry.user_message for entry in instance.all_logs(result.run_id))


def pre_migration_backup(source_db, store, verified=True):
    manifest = backup_database(source_db, store, DumpOptions(purpose=PRE_MIGRATION))
    if verified:
        verify_backup(store, manifest, "checksum", None)
    return manifest


def counts(target):
    with postgres.connect(target) as conn:
        return postgres.table_row_counts(conn)


def databases_like(server, prefix):
    with postgres.connect(server) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (prefix + "%",)
        ).fetchall()
    return [name for (name,) in rows]


def test_default_restores_the_latest_pre_migration_backup_of_the_named_source(
    source_db, store, pg_server, target_name, monkeypatch
):
    manifest = pre_migration_backup(source_db, store)
    backup_database(source_db, store)  # a newer nightly backup is not the default
    target = pg_server.with_database(target_name)
    instance = DagsterInstance.ephemeral()
    result = restore(
        store, monkeypatch, target.redacted, instance, source_database=source_db.redacted
    )
    assert result.success
    assert counts(target) == manifest.row_counts
    text = log_text(instance, result)
    assert (
        f"restoring {manifest.key} (backup of {source_db.redacted}, taken at "
        f"{manifest.started_at}, verification passed) into {target.redacted}: "
        f"run {result.run_id}, launched from CLI or API"
    ) in text


def test_the_restore_log_names_who_launched_it(
    source_db, store, pg_server, target_name, monkeypatch
):
    """The UI gate tags every launch with its operator; the run's own log keeps that record."""
    pre_migration_backup(source_db, store)
    instance = DagsterInstance.ephemeral()
    tags = {"sage_ops/launched_by": "alice@example.com", "dagster/from_ui": "true"}
    result = restore(
        store,
        monkeypatch,
        pg_server.with_database(target_name).redacted,
        instance,
        tags=tags,
        source_database=source_db.redacted,
    )
    assert result.success, failure_message(result)
    assert "launched from UI by alice@example.com" in log_text(instance, result)


def test_latest_is_a_backup_of_the_target_not_of_another_database(
    source_db, pg_server, store, monkeypatch
):
    """Staging's newer pre-migration backup in the same store is never restored over production."""
    production = pre_migration_backup(source_db, store)
    with postgres.connect(source_db) as conn:
        conn.execute("CREATE TABLE added_after_backup AS SELECT 1 AS x")
    staging_name = source_db.dbname + "_staging"
    with postgres.connect(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{staging_name}" TEMPLATE "{source_db.dbname}"')
    try:
        staging = pg_server.with_database(staging_name)
        with postgres.connect(staging) as conn:
            conn.execute("CREATE TABLE staging_only AS SELECT 1 AS x")
        pre_migration_backup(staging, store)  # newer, verified, another database

        result = restore(store, monkeypatch, source_db.redacted, confirm=source_db.dbname)
        assert result.success, failure_message(result)
        assert counts(source_db) == production.row_counts
    finally:
        drop_databases_like(pg_server, staging_name)
        drop_databases_like(pg_server, source_db.dbname + "_before_restore_")


def test_no_backup_of_the_target_is_refused_without_touching_it(
    source_db, store, pg_server, target_name, monkeypatch
):
    pre_migration_backup(source_db, store)
    target = pg_server.with_database(target_name)
    result = restore(store, monkeypatch, target.redacted)
    assert not result.success
    assert f"no verified pre-migration backup of {target.redacted}" in failure_message(result)
    assert databases_like(pg_server, target_name) == []


def test_an_explicit_key_of_another_database_needs_that_source_named(
    source_db, store, pg_server, target_name, monkeypatch
):
    manifest = pre_migration_backup(source_db, store)
    target = pg_server.with_database(target_name)
    refused = restore(store, monkeypatch, target.redacted, backup_key=manifest.key)
    assert not refused.success
    assert (
        f"{manifest.key} is a backup of {source_db.redacted}, not of {target.redacted}"
        in failure_message(refused)
    )
    assert databases_like(pg_server, target_name) == []

    named = restore(
        store,
        monkeypatch,
        target.redacted,
        backup_key=manifest.key,
        source_database=manifest.database,  # as the backup's metadata shows it
    )
    assert named.success
    assert counts(target) == manifest.row_counts


def test_source_database_with_a_password_is_refused(
    source_db, store, target_name, pg_server, monkeypatch
):
    pre_migration_backup(source_db, store)
    source = f"postgresql://app:hunter2@127.0.0.1:5432/{source_db.dbname}"
    result = restore(
        store, monkeypatch, pg_server.with_database(target_name).redacted, source_database=source
    )
    assert not result.success
    assert "source_database" in failure_message(result)
    assert "hunter2" not in failure_message(result)
    assert databases_like(pg_server, target_name) == []


def test_an_unverified_backup_needs_an_explicit_override(
    source_db, store, pg_server, target_name, monkeypatch
):
    manifest = pre_migration_backup(source_db, store, verified=False)
    target = pg_server.with_database(target_name)
    request = {"backup_key": manifest.key, "source_database": source_db.redacted}
    refused = restore(store, monkeypatch, target.redacted, **request)
    assert not refused.success
    assert f"{manifest.key} is not verified (verification pending)" in failure_message(refused)
    assert "allow_unverified" in failure_message(refused)
    assert databases_like(pg_server, target_name) == []

    allowed = restore(store, monkeypatch, target.redacted, allow_unverified=True, **request)
    assert allowed.success
    assert counts(target) == manifest.row_counts


def test_live_database_needs_confirmation_and_is_kept(
    source_db, store, pg_server, target_name, monkeypatch
):
    manifest = pre_migration_backup(source_db, store)
    live = pg_server.with_database(target_name)
    with postgres.connect(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{target_name}"')
    with postgres.connect(live) as conn:
        conn.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    source = {"source_database": source_db.redacted}

    refused = restore(store, monkeypatch, live.redacted, **source)
    assert not refused.success
    assert f"set confirm to '{target_name}'" in failure_message(refused)
    assert counts(live) == {"public.precious": 1}

    instance = DagsterInstance.ephemeral()
    replaced = restore(store, monkeypatch, live.redacted, instance, confirm=target_name, **source)
    assert replaced.success
    assert counts(live) == manifest.row_counts
    [kept] = databases_like(pg_server, target_name + "_before_restore_")
    assert counts(pg_server.with_database(kept)) == {"public.precious": 1}
    assert f"the replaced database is kept as {kept}" in log_text(instance, replaced)


def test_launch_source():
    assert backups.launch_source({"dagster/sensor_name": "alarm_sensor"}) == "sensor alarm_sensor"
    assert backups.launch_source({"dagster/schedule_name": "s"}) == "schedule s"
    assert backups.launch_source({"dagster/from_ui": "true"}) == "UI"
    assert backups.launch_source({}) == "CLI or API"
