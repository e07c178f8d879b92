"""The production instance configs load into real Dagster instances on a real PostgreSQL, and
store runs there: a run executed through one instance is read back, with its events and its
materialization, by another instance built from the same file (as the webserver reads what a
run's own process wrote)."""

import shutil
from pathlib import Path

import boto3
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
)

from sage_ops import postgres
from tests.backups.s3 import apply_env, aws_env, moto_server

INFRA = Path(__file__).resolve().parents[2] / "infra" / "dagster"


@pytest.fixture
def dagster_db(pg_server, monkeypatch):
    with postgres.scratch_database(pg_server, prefix="sage_ops_dagster") as db:
        monkeypatch.setenv("DAGSTER_PG_HOST", db.host)
        monkeypatch.setenv("DAGSTER_PG_PORT", str(db.port))
        monkeypatch.setenv("DAGSTER_PG_DB", db.dbname)
        monkeypatch.setenv("DAGSTER_PG_USER", db.user)
        monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused-with-trust-auth")
        monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", "sage-dagster-logs")
        monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_PREFIX", "compute-logs")
        yield db


def _load(name: str, tmp_path: Path) -> DagsterInstance:
    shutil.copy(INFRA / name, tmp_path / "dagster.yaml")
    return DagsterInstance.from_config(str(tmp_path))


@pytest.mark.parametrize("config", ["dagster.yaml", "dagster-docker.yaml"])
def test_instance_uses_postgres_storage_with_limits(config, dagster_db, tmp_path):
    with _load(config, tmp_path) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_runs() == []  # schema created and queried on the real server
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {limit["key"] for limit in limits} == {
            "sage_ops/database-writer",
            "sage_ops/deploy-lock",
        }
        assert instance.run_monitoring_enabled and not instance.telemetry_enabled
    with postgres.connect(dagster_db) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert {"runs", "event_logs"} <= tables


def test_run_launchers(dagster_db, tmp_path, monkeypatch):
    with _load("dagster-docker.yaml", tmp_path) as instance:
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
    with moto_server() as server:
        apply_env(
            aws_env(server.endpoint), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False)
        )
        family = "sage-production-sage-ops-run"
        registered = boto3.client("ecs").register_task_definition(
            family=family,
            containerDefinitions=[{"name": "run", "image": "sage-ops", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        monkeypatch.setenv("SAGE_OPS_RUN_TASK_DEFINITION", family)
        prod = tmp_path / "prod"
        prod.mkdir()
        with _load("dagster.yaml", prod) as instance:
            launcher = instance.run_launcher  # validates the config, reads the task definition
            assert type(launcher).__name__ == "EcsRunLauncher"
            # Runs start Terraform's definition as it is: nothing registered per job.
            assert launcher.task_definition == registered
            assert launcher.task_definition_dict == {}
            assert instance.get_ref().compute_logs_data.class_name == "S3ComputeLogManager"


@asset
def stored_asset() -> MaterializeResult:
    return MaterializeResult(metadata={"rows": 3})


@pytest.mark.parametrize("config", ["dagster.yaml", "dagster-docker.yaml"])
def test_instance_stores_a_run_and_reads_it_back(config, dagster_db, tmp_path):
    """Storing run events is where the driver matters: dagster-postgres sends a NOTIFY per event,
    which psycopg 3 (SQLAlchemy 2.1's default for postgresql://) rejects."""
    job = Definitions(
        assets=[stored_asset], jobs=[define_asset_job("store_check", [stored_asset])]
    ).resolve_job_def("store_check")
    with _load(config, tmp_path) as instance:
        result = job.execute_in_process(instance=instance, tags={"sage_ops/check": config})
        assert result.success
    with _load(config, tmp_path) as reader:
        run = reader.get_run_by_id(result.run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags["sage_ops/check"] == config
        events = {
            e.dagster_event_type for e in reader.all_logs(result.run_id) if e.is_dagster_event
        }
        assert {"PIPELINE_START", "ASSET_MATERIALIZATION", "PIPELINE_SUCCESS"} <= {
            e.value for e in events
        }
        latest = reader.get_latest_materialization_event(AssetKey("stored_asset"))
        assert latest is not None and latest.run_id == result.run_id
        assert latest.asset_materialization.metadata["rows"].value == 3
