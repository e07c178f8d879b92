"""The Dagster wiring: settings from the environment, secrets as EnvVar, the merge with the
other capabilities, and operator-readable failures of the sensor and the job."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    EnvVar,
    build_sensor_context,
    serialize_value,
)

from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.incidents import defs as incidents
from sage_ops.incidents.defs import alarm_sensor
from sage_ops.incidents.reports.notify import RunLogNotifier, SnsNotifier
from sage_ops.incidents.resources import IncidentConfig
from sage_ops.platforms.targets import local_service
from tests.incidents.test_e2e_connection_exhaustion import with_config


def test_settings_come_from_the_environment(aws, monkeypatch, tmp_path):
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
    monkeypatch.setenv("SAGE_OPS_PROBE_PERIOD_S", "")  # empty: unset, as before
    config = IncidentConfig.from_env()
    assert isinstance(config.anthropic_api_key, EnvVar)  # resolved in the run, never shown
    assert (config.source, config.alarm_prefix, config.environment) == (
        "cloudwatch",
        "sage-staging-",
        "staging",
    )
    assert config.log_groups == ["/a", "/b"] and config.sns_topic_arn.endswith(":t")
    assert config.budget.pool == 3 and config.budget.max_connections == 100
    assert config.window.deploy.total_seconds() == 45 * 60 and config.probe_period_s == 60
    assert config.probe_targets().database is None  # CloudWatch: no local probes
    assert isinstance(config.notifier(print), SnsNotifier)


def test_defaults_are_local_with_no_probe_when_nothing_runs(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = IncidentConfig.from_env()
    assert config.source == "local" and config.alarm_prefix == "sage-"
    # the embedded server is not started by a sensor tick
    assert config.probe_targets().database is None
    assert config.sns_topic_arn is None and isinstance(config.notifier(print), RunLogNotifier)


def test_bad_values_are_operator_errors(monkeypatch):
    with pytest.raises(ConfigError, match="SAGE_OPS_ALARM_SOURCE must be cloudwatch or local"):
        IncidentConfig(source="datadog").alarm_source()
    monkeypatch.setenv("SAGE_OPS_SERVICE_TASKS", "four")
    with pytest.raises(ConfigError, match="expected an integer"):
        IncidentConfig.from_env()


def test_bound_once_with_the_other_capabilities_resources():
    from sage_ops.definitions import defs

    assert not incidents.defs.resources  # bound in sage_ops/definitions.py, like the others
    assert isinstance(defs.resources["incidents"], IncidentConfig)
    assert {"backups", "migrations", "deploy"} <= set(defs.resources)
    assert defs.resolve_job_def("incident_triage") is not None
    assert defs.resolve_sensor_def("alarm_sensor").default_status == DefaultSensorStatus.RUNNING


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


def test_service_events_are_read_by_the_environments_deploy_target(aws, monkeypatch):
    """The target is opened through the platform registry; its platform (ECS here, on the moto
    server) reads the events, and SAGE_OPS_ECS_SERVICE names another ECS service instead."""
    target = "ecs://sage-production/sage-production-backend?container=backend"
    monkeypatch.setenv("SAGE_OPS_PRODUCTION_TARGET", target)
    config = IncidentConfig.from_env()
    assert config.deploy_target == target
    with pytest.raises(SageOpsError, match="events of ECS service sage-production/sage-prod"):
        config.platform_changes(datetime.now(UTC), datetime.now(UTC))
    monkeypatch.setenv("SAGE_OPS_ECS_SERVICE", "other/svc")
    with pytest.raises(SageOpsError, match="events of ECS service other/svc"):
        IncidentConfig.from_env().platform_changes(datetime.now(UTC), datetime.now(UTC))
    monkeypatch.delenv("SAGE_OPS_ECS_SERVICE")  # a swarm target: its platform keeps no events
    monkeypatch.setenv("SAGE_OPS_STAGING_TARGET", local_service("sage-backend-staging"))
    monkeypatch.setenv("SAGE_OPS_ENVIRONMENT", "staging")
    assert IncidentConfig.from_env().platform_changes(datetime.now(UTC), datetime.now(UTC)) == []


def test_loading_the_definitions_imports_no_pandas_or_matplotlib():
    """Every run's container loads the definitions; only a triage needs pandas (about 1 s of
    imports) and only its plot matplotlib, so neither loads with them."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, sage_ops.definitions; print(*sorted(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()  # fmt: skip
    assert "sage_ops.incidents.defs" in loaded
    assert {"pandas", "numpy", "matplotlib"} & set(loaded) == set()
