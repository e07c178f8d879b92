"""The Dagster wiring: settings from the environment, secrets as EnvVar, the merge with the
other capabilities, and operator-readable failures of the sensor and the job."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    build_sensor_context,
    serialize_value,
)

from sage_ops.backups import defs as backups
from sage_ops.backups.resources import BackupConfig
from sage_ops.incidents import defs as incidents
from sage_ops.incidents.defs import alarm_sensor
from sage_ops.incidents.resources import IncidentConfig
from sage_ops.migrations import defs as migrations
from sage_ops.migrations.resources import MigrationConfig
from tests.incidents.test_e2e_connection_exhaustion import with_config


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    env = {
        "SAGE_OPS_ALARM_SOURCE": "cloudwatch",
        "SAGE_OPS_ALARM_PREFIX": "sage-staging-",
        "SAGE_OPS_ENVIRONMENT": "staging",
        "SAGE_OPS_LOG_GROUPS": "/a,/b",
        "SAGE_OPS_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
        "SAGE_OPS_SERVICE_TASKS": "4",
        "SAGE_OPS_TASK_VCPUS": "0.5",
        "SAGE_OPS_DB_MAX_CONNECTIONS": "100",
        "SAGE_OPS_DEPLOY_WINDOW_MINUTES": "45",
        "ANTHROPIC_API_KEY": "sk-secret-value",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    config = IncidentConfig.from_env()
    assert isinstance(config.anthropic_api_key, EnvVar)  # resolved in the run, never shown
    settings = config.settings()
    assert (settings.source, settings.alarm_prefix, settings.environment) == (
        "cloudwatch",
        "sage-staging-",
        "staging",
    )
    assert settings.log_groups == ("/a", "/b") and settings.sns_topic_arn.endswith(":t")
    assert settings.budget.pool == 3 and settings.budget.max_connections == 100
    assert settings.window.deploy.total_seconds() == 45 * 60
    assert settings.database is None  # CloudWatch: no local probes


def test_defaults_are_local_with_no_probe_when_nothing_runs(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = IncidentConfig.from_env().settings()
    assert settings.source == "local" and settings.alarm_prefix == "sage-"
    assert settings.database is None  # the embedded server is not started by a sensor tick
    assert settings.sns_topic_arn is None


def test_bad_source_is_an_operator_error():
    from sage_ops.errors import ConfigError

    with pytest.raises(ConfigError, match="SAGE_OPS_ALARM_SOURCE must be cloudwatch or local"):
        IncidentConfig(source="datadog").settings()


def test_merges_with_the_other_capabilities_without_resource_clashes():
    lead = Definitions(
        resources={"backups": BackupConfig.from_env(), "migrations": MigrationConfig.from_env()}
    )
    merged = Definitions.merge(backups.defs, migrations.defs, lead, incidents.defs)
    assert merged.resolve_job_def("incident_triage") is not None
    assert merged.resolve_sensor_def("alarm_sensor").default_status == DefaultSensorStatus.RUNNING
    assert set(incidents.defs.resources) == {"incidents"}


def test_sensor_tick_failure_names_the_system(aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    config = IncidentConfig(source="cloudwatch", alarm_prefix="sage-")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, resources={"incidents": config})
        with pytest.raises(Exception, match="AlarmSourceError: cannot list CloudWatch alarms"):
            alarm_sensor(context)


def test_triage_of_an_unknown_alarm_fails_with_an_operator_message(instance, tmp_path):
    config = IncidentConfig(history_path=str(tmp_path / "p.sqlite"))
    key = "sage-deleted-alarm@2026-11-25T10:00:00.000Z"
    instance.add_dynamic_partitions("incidents", [key])
    result = (
        with_config(config)
        .resolve_job_def("incident_triage")
        .execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
    )
    assert not result.success
    log = "\n".join(serialize_value(e) for e in instance.all_logs(result.run_id))
    assert "UnknownAlarm: alarm 'sage-deleted-alarm' is not among the local alarms" in log


def test_ecs_service_defaults_to_the_environments_ecs_target(monkeypatch):
    monkeypatch.setenv(
        "SAGE_OPS_PRODUCTION_TARGET",
        "ecs://sage-production/sage-production-backend?container=backend",
    )
    assert (
        IncidentConfig.from_env().settings().ecs_service
        == "sage-production/sage-production-backend"
    )
    monkeypatch.setenv("SAGE_OPS_ECS_SERVICE", "other/svc")
    assert IncidentConfig.from_env().settings().ecs_service == "other/svc"


def test_loading_the_definitions_imports_no_pandas_or_matplotlib():
    """Every run's container loads the definitions; only a triage needs pandas (about 1 s of
    imports) and only its plot matplotlib, so neither loads with them."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, sage_ops.definitions; print(*sorted(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()  # fmt: skip
    assert "sage_ops.incidents.defs" in loaded
    assert {"pandas", "numpy", "matplotlib"} & set(loaded) == set()
