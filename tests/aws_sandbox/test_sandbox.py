"""sage_ops with the environment Terraform gives its tasks, pointed at a moto server.

The variable names come from the HCL through the contract test's loader (every name the sage_ops
task definitions set, nothing else from this machine); values that name AWS resources point at
resources created on moto (stack.py), the databases at local PostgreSQL sample databases.
Resources are built with each capability's own `from_env`, as the code server builds them.

Places moto cannot play are named where they occur (none so far: S3, KMS, CloudWatch, Logs, SNS
and SQS are all moto's).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from dagster import DagsterInstance, Definitions, build_sensor_context

from sage_ops.backups import defs as backups
from sage_ops.backups.resources import BackupConfig
from sage_ops.incidents.defs import alarm_sensor
from sage_ops.incidents.resources import IncidentConfig
from sage_ops.postgres import PgTarget
from tests.aws_sandbox import stack
from tests.aws_sandbox.conftest import Sandbox
from tests.incidents import seed_alarms as seed
from tests.incidents.test_e2e_cloudwatch import APP_LINES, RDS_GROUP, RDS_LINES, _put_logs
from tests.incidents.test_e2e_connection_exhaustion import with_config


def test_nightly_backup_to_s3_under_the_stacks_kms_key_verified_on_the_embedded_scratch(
    sandbox: Sandbox,
):
    source_db = sandbox.source_db
    config = BackupConfig.from_env()
    assert config.verify_level == "full" and config.scratch == "embedded"
    job = Definitions.merge(backups.defs, Definitions(resources={"backups": config}))
    result = job.resolve_job_def("nightly_backup").execute_in_process(
        instance=DagsterInstance.ephemeral()
    )

    assert result.success
    key = result.asset_materializations_for_node("db_backup")[0].metadata["key"].value
    bucket = sandbox.env["SAGE_OPS_BACKUP_URL"].split("/")[2]
    head = boto3.client("s3").head_object(Bucket=bucket, Key=f"backups/{key}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == sandbox.env["SAGE_OPS_S3_KMS_KEY_ID"]
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "backup_verified"]
    meta = {k: v.value for k, v in check.metadata.items()}
    assert check.passed and meta["level"] == "full" and meta["restored_row_counts"]
    assert PgTarget.from_url(config.scratch_server(source_db).secret_url()).host != (
        source_db.host
    )  # restored on the embedded server in this "task", not on DATABASE_URL's


def test_cloudwatch_alarm_to_triage_to_sns_read_back_through_sqs(sandbox: Sandbox):
    cw = boto3.client("cloudwatch")
    seed.create_seed_alarms(cw)
    now = datetime.now(UTC)
    _put_logs(RDS_GROUP, RDS_LINES, now - timedelta(minutes=3))
    _put_logs("/ecs/sage-production/backend", APP_LINES, now - timedelta(minutes=3))
    sqs = boto3.client("sqs")
    queue = stack.sns_inbox(sandbox.env["SAGE_OPS_SNS_TOPIC_ARN"])
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
    assert note["TopicArn"] == sandbox.env["SAGE_OPS_SNS_TOPIC_ARN"]
    assert note["Message"].startswith(f"{seed.RDS_CONNECTIONS} in ALARM since")
