"""sage_ops with the environment Terraform gives its tasks, pointed at a moto server.

The variable names come from the HCL through the contract test's loader (every name the sage_ops
task definitions set, nothing else from this machine); values that name AWS resources point at
resources created here on moto, DATABASE_URL at a local PostgreSQL sample database. Resources are
built with each capability's own `from_env`, as the code server builds them.

Places moto cannot play are named where they occur (none so far: S3, KMS, CloudWatch, Logs, SNS
and SQS are all moto's).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from dagster import DagsterInstance, Definitions, build_sensor_context

from sage_ops.backups import defs as backups
from sage_ops.incidents.defs import IncidentConfig, alarm_sensor
from sage_ops.postgres import PgTarget
from sage_ops.resources import BackupConfig
from tests import pg
from tests.backups.s3 import REGION, apply_env, aws_env, moto_server
from tests.incidents import seed_alarms as seed
from tests.incidents.test_e2e_cloudwatch import APP_LINES, RDS_GROUP, RDS_LINES, _put_logs
from tests.incidents.test_e2e_connection_exhaustion import with_config
from tests.infra.test_terraform_contract import (
    ALTERNATIVES,
    placeholder,
    task_environment,
    task_secrets,
)

PARTITION = "2026-11-25"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as server:
        yield server.endpoint


@pytest.fixture
def source_db(password_server: PgTarget) -> Iterator[PgTarget]:
    """The "RDS" database: PostgreSQL 16 like the stack's, with a password, over TCP."""
    with pg.sample_database(password_server) as db:
        yield db


@pytest.fixture
def sandbox(moto_endpoint, source_db: PgTarget, tmp_path, monkeypatch) -> dict[str, str]:
    """Terraform's task environment with its AWS resources on moto; returns the values set."""
    for name in list(os.environ):
        if name.startswith(("SAGE_OPS_", "DAGSTER_")) or name.endswith("DATABASE_URL"):
            monkeypatch.delenv(name)
    names = (task_environment() | task_secrets()) - set(ALTERNATIVES.values())
    env = {name: placeholder(name) for name in names}
    apply_env(aws_env(moto_endpoint), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False))
    env.update(_aws_resources(), DATABASE_URL=source_db.secret_url(), AWS_REGION=REGION)
    env["SAGE_OPS_STATE_DIR"] = str(tmp_path / "task-volume")  # the task's ephemeral volume
    env["SAGE_OPS_ALARM_PREFIX"] = seed.PREFIX  # "${var.name}-" for the production stack
    assert set(env) == names, "the sandbox sets a variable Terraform does not"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _aws_resources() -> dict[str, str]:
    """The stack's bucket, KMS key and alerts topic, on moto."""
    bucket = f"sage-production-backups-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    key = boto3.client("kms").create_key(Description="sage-production")["KeyMetadata"]["Arn"]
    topic = boto3.client("sns").create_topic(Name=f"sage-alerts-{uuid.uuid4().hex[:6]}")
    return {
        "SAGE_OPS_BACKUP_URL": f"s3://{bucket}/backups/",
        "SAGE_OPS_BUILD_SOURCE_URL": f"s3://{bucket}/builds/",
        "SAGE_OPS_S3_KMS_KEY_ID": key,
        "SAGE_OPS_SNS_TOPIC_ARN": topic["TopicArn"],
    }


def test_nightly_backup_to_s3_under_the_stacks_kms_key_verified_on_the_embedded_scratch(
    sandbox: dict[str, str], source_db: PgTarget
):
    config = BackupConfig.from_env()
    assert config.verify_level == "full" and config.scratch == "embedded"
    job = Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
    result = job.resolve_job_def("nightly_backup").execute_in_process(
        partition_key=PARTITION, instance=DagsterInstance.ephemeral()
    )

    assert result.success
    key = result.asset_materializations_for_node("db_backup")[0].metadata["key"].value
    bucket = sandbox["SAGE_OPS_BACKUP_URL"].split("/")[2]
    head = boto3.client("s3").head_object(Bucket=bucket, Key=f"backups/{key}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == sandbox["SAGE_OPS_S3_KMS_KEY_ID"]
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "backup_verified"]
    meta = {k: v.value for k, v in check.metadata.items()}
    assert check.passed and meta["level"] == "full" and meta["restored_row_counts"]
    assert PgTarget.from_url(config.settings().scratch_server(source_db).secret_url()).host != (
        source_db.host
    )  # restored on the embedded server in this "task", not on DATABASE_URL's


def test_cloudwatch_alarm_to_triage_to_sns_read_back_through_sqs(sandbox: dict[str, str]):
    cw = boto3.client("cloudwatch")
    seed.create_seed_alarms(cw)
    now = datetime.now(UTC)
    _put_logs(RDS_GROUP, RDS_LINES, now - timedelta(minutes=3))
    _put_logs("/ecs/sage-production/backend", APP_LINES, now - timedelta(minutes=3))
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    topic = sandbox["SAGE_OPS_SNS_TOPIC_ARN"]
    boto3.client("sns").subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
    )
    config = IncidentConfig.from_env()
    resources = {"incidents": config}

    with DagsterInstance.ephemeral() as instance:
        first = alarm_sensor(build_sensor_context(instance=instance, resources=resources))
        cw.set_alarm_state(
            AlarmName=seed.RDS_CONNECTIONS, StateValue="ALARM", StateReason="Threshold Crossed"
        )
        second = alarm_sensor(
            build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
        )
        [request] = [
            r for r in second.run_requests if r.tags["sage_ops/alarm"] == seed.RDS_CONNECTIONS
        ]
        instance.add_dynamic_partitions("incidents", [request.partition_key])
        result = (
            with_config(config)
            .resolve_job_def("incident_triage")
            .execute_in_process(
                instance=instance, partition_key=request.partition_key, tags=request.tags
            )
        )

    assert result.success
    [report] = result.asset_materializations_for_node("incident_report")
    assert report.metadata["rule"].value == "pg_connection_exhaustion"  # read from CloudWatch Logs
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    note = json.loads(message["Body"])
    assert note["TopicArn"] == topic
    assert note["Message"].startswith(f"{seed.RDS_CONNECTIONS} in ALARM since")
