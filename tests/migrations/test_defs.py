"""migrate_database as Dagster runs it: each refusal stops the run before anything is applied."""

from dagster import DagsterEventType, DagsterInstance, Definitions

from sage_ops.backups.catalog import load_manifests
from sage_ops.backups.manifest import PRE_MIGRATION
from sage_ops.backups.resources import BackupConfig
from sage_ops.migrations import defs as migrations
from sage_ops.migrations.resources import MigrationConfig
from tests.migrations.conftest import ADD_NAME, ADD_POSTS, INIT, migration_rows, schema_snapshot


def _run(directory, target, backup_url, monkeypatch, **overrides):
    monkeypatch.setenv("MIGRATE_TARGET_URL", target.redacted)  # trust auth: no password
    resources = {
        "migrations": MigrationConfig(
            migrations_dir=str(directory), database_url_env="MIGRATE_TARGET_URL", **overrides
        ),
        "backups": BackupConfig(backup_url=backup_url, verify_level="full"),
    }
    job = Definitions.merge(migrations.defs, Definitions(resources=resources)).resolve_job_def(
        "migrate_database"
    )
    return job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)


def _materialized(result) -> list[str]:
    return [
        e.asset_key.path[-1]
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    ]


def _failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    return failure.step_failure_data.error.message


def test_run_applies_after_a_verified_backup(write_migrations, empty_db, store, monkeypatch):
    directory = write_migrations(("init", INIT), ("posts", ADD_POSTS))
    result = _run(directory, empty_db, store.url, monkeypatch)
    assert result.success
    assert _materialized(result) == ["migration_plan", "pre_migration_backup", "applied_migrations"]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"migration_lint": True, "no_pending_migrations": True}
    [backup] = load_manifests(store)[0]
    assert backup.purpose == PRE_MIGRATION and backup.verified and backup.run_id == result.run_id
    applied = result.asset_materializations_for_node("applied_migrations")[0].metadata
    assert [a["name"] for a in applied["applied"].value] == [
        p.name for p in sorted(directory.glob("2*"))
    ]
    assert backup.key in applied["pre_migration_backup"].value

    again = _run(directory, empty_db, store.url, monkeypatch)
    assert again.success and len(load_manifests(store)[0]) == 1  # nothing pending: no backup


def test_destructive_migration_without_allow_applies_nothing(
    write_migrations, empty_db, store, monkeypatch
):
    directory = write_migrations(("init", INIT), ("drop", 'DROP TABLE "User";\n'))
    result = _run(directory, empty_db, store.url, monkeypatch)
    assert not result.success
    [lint] = result.get_asset_check_evaluations()
    assert not lint.passed and "ban-drop-table" in lint.description and "allow" in lint.description
    assert _materialized(result) == ["migration_plan"]
    assert schema_snapshot(empty_db) == [] and list(store.objects()) == []

    allowed = _run(
        directory,
        empty_db,
        store.url,
        monkeypatch,
        allow={"20261101000002_drop": ["ban-drop-table"]},
    )
    assert allowed.success


def test_backup_failure_applies_nothing(write_migrations, empty_db, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    directory = write_migrations(("init", INIT))
    result = _run(directory, empty_db, f"file://{blocker}/backups", monkeypatch)
    assert not result.success
    assert "cannot create backup directory" in _failure_message(result)
    assert "applied_migrations" not in _materialized(result)
    assert schema_snapshot(empty_db) == []


def test_failed_migration_names_migration_statement_error_and_backup(
    write_migrations, empty_db, store, monkeypatch
):
    directory = write_migrations(("init", INIT), ("name", ADD_NAME + "SELECT 1/0;\n"))
    result = _run(directory, empty_db, store.url, monkeypatch)
    assert not result.success
    message = _failure_message(result)
    [backup] = load_manifests(store)[0]
    assert "migration 20261101000002_name failed" in message
    assert "22012 division by zero" in message and "SELECT 1/0" in message
    assert backup.key in message
    assert [r[:3] for r in migration_rows(empty_db)] == [
        ("20261101000001_init", True, False),
        ("20261101000002_name", False, True),
    ]
