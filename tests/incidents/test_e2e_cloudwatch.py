"""The production path end to end on moto: a CloudWatch alarm flips to ALARM, alarm_sensor opens
one run, incident_triage reads the RDS and service log groups and the metrics, names the cause,
flags the deployment before it, publishes to SNS - and a failing LLM endpoint changes nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import boto3
from dagster import build_sensor_context

from sage_ops.incidents.defs import alarm_sensor
from sage_ops.incidents.resources import IncidentConfig
from tests.incidents import seed_alarms as seed
from tests.incidents.test_e2e_connection_exhaustion import with_config
from tests.incidents.test_llm_summary import messages_api
from tests.lineage.deploy_runs import deploy

RDS_GROUP = f"/aws/rds/instance/{seed.DB}/postgresql"
APP_GROUP = "/ecs/sage-production/backend"
RDS_LINES = [
    "2026-11-25 10:00:01 UTC:10.0.1.17(50312):app@sage:[4243]:LOG:  connection authorized",
    "2026-11-25 10:00:02 UTC:10.0.1.17(50313):app@sage:[4244]:FATAL:  remaining connection slots "
    "are reserved for non-replication superuser connections",
    "2026-11-25 10:00:02 UTC:10.0.1.18(50314):app@sage:[4245]:FATAL:  sorry, too many clients already",
]
APP_LINES = [
    "[Nest] 1  - 11/25/2026, 10:00:03 AM   ERROR [ExceptionsHandler] Error querying the database: "
    "db error: FATAL: sorry, too many clients already",
    '{"level":"error","statusCode":500,"msg":"GET /api/chat failed"}',
    "[Nest] 1  - 11/25/2026, 10:00:04 AM     LOG [RoutesResolver] ChatController {/api/chat}",
]


def _put_logs(group: str, lines: list[str], at: datetime) -> None:
    logs = boto3.client("logs")
    existing = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    if not existing:
        logs.create_log_group(logGroupName=group)
    stream = f"s-{at.timestamp():.0f}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    base = int(at.timestamp() * 1000)
    events = [{"timestamp": base + i * 100, "message": m} for i, m in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def _subscribed_queue() -> tuple[str, str]:
    topic = boto3.client("sns").create_topic(Name="sage-production-alarms")["TopicArn"]
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="sage-production-alarms-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, url


def test_cloudwatch_alarm_to_sns_report(aws, instance):
    cw = boto3.client("cloudwatch")
    for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=seed.PREFIX):
        if page["MetricAlarms"]:
            cw.delete_alarms(AlarmNames=[a["AlarmName"] for a in page["MetricAlarms"]])
    seed.create_seed_alarms(cw)
    now = datetime.now(UTC)
    cw.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "DatabaseConnections",
                "Value": v,
                "Timestamp": now - timedelta(minutes=m),
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": seed.DB}],
            }
            for m, v in ((20, 40.0), (6, 88.0), (2, 97.0))
        ],
    )
    _put_logs(RDS_GROUP, RDS_LINES, now - timedelta(minutes=3))
    _put_logs(APP_GROUP, APP_LINES, now - timedelta(minutes=3))
    topic, queue = _subscribed_queue()
    deploy(instance, "production")
    settings = dict(
        source="cloudwatch",
        alarm_prefix=seed.PREFIX,
        environment="production",
        sns_topic_arn=topic,
        service_tasks=6,
        task_vcpus=1,
        db_max_connections=100,
        anthropic_api_key="sk-test-not-shown",
        llm_timeout_s=2,
    )
    resources = {"incidents": IncidentConfig(**settings)}

    first = alarm_sensor(build_sensor_context(instance=instance, resources=resources))
    assert first.run_requests == []
    cw.set_alarm_state(
        AlarmName=seed.RDS_CONNECTIONS,
        StateValue="ALARM",
        StateReason="Threshold Crossed: 2 datapoints [97.0, 88.0] > 85",
    )
    second = alarm_sensor(
        build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
    )
    [request] = second.run_requests
    assert request.tags["sage_ops/alarm"] == seed.RDS_CONNECTIONS

    instance.add_dynamic_partitions("incidents", [request.partition_key])
    with messages_api(status=500) as (llm_url, llm_calls):
        config = IncidentConfig(**settings, anthropic_base_url=llm_url)
        job = with_config(config).resolve_job_def("incident_triage")
        result = job.execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags
        )
    assert result.success and len(llm_calls) == 1  # the LLM failed; the triage did not
    [materialization] = result.asset_materializations_for_node("incident_report")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["rule"] == "pg_connection_exhaustion"
    report = meta["report"]
    assert "reserved for non-replication superuser connections" in report
    # (the moto server is shared: other tests may have added datapoints to the same metric)
    assert re.search(
        r"\| AWS/RDS DatabaseConnections \(Maximum\) \| \d+ \| [\d.]+ \| [\d.]+ \| 97 \|", report
    )
    assert "6 tasks x 3 (Prisma's default 2 x CPUs + 1) + 5 other = 23" in report
    assert "no LLM summary: HTTP 500 api_error: overloaded" in report
    assert "sk-test-not-shown" not in report and "sk-test-not-shown" not in json.dumps(
        {k: str(v) for k, v in meta.items()}
    )
    assert meta["notified"].startswith(f"SNS {topic}")

    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)[
        "Messages"
    ]
    [note] = [json.loads(m["Body"]) for m in messages]
    body = note["Message"]
    assert note["Subject"] == (
        f"ALARM PostgreSQL connection pool exhaustion (53300): {seed.RDS_CONNECTIONS}"
    )
    assert body.startswith(f"{seed.RDS_CONNECTIONS} in ALARM since")
    assert "Fixes, in order:\n1. Set an explicit `connection_limit`" in body
    assert "Changed just before:\n- deployment of 4f6c1a2b3c4d to production" in body
    assert "/jobs/rollback_deployment/playground" in body
    assert "base64" not in body
