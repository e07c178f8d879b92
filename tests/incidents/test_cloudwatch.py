"""CloudWatch paths: alarms, logs and metrics on a moto server; the requests moto cannot answer
(percentiles, metric math, filter patterns) checked with botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from sage_ops.incidents.alarms.alarm import ALARM, OK
from sage_ops.incidents.alarms.transitions import evaluate_tick
from sage_ops.incidents.classification.templates import summarize
from sage_ops.incidents.errors import AlarmSourceError, EvidenceError
from sage_ops.incidents.evidence.cloudwatch import (
    CloudWatchAlarms,
    CloudWatchMetrics,
    metric_queries,
    to_alarm,
)
from sage_ops.incidents.evidence.cloudwatch_logs import ERROR_FILTER_PATTERN, CloudWatchLogs
from tests.incidents import seed_alarms as seed

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def cloudwatch(aws):
    cw = boto3.client("cloudwatch")
    for page in cw.get_paginator("describe_alarms").paginate():
        names = [a["AlarmName"] for a in page["MetricAlarms"]]
        if names:
            cw.delete_alarms(AlarmNames=names)
    seed.create_seed_alarms(cw)
    return cw


def test_alarms_by_prefix_on_every_page(cloudwatch):
    seed.create_fillers(cloudwatch, 100)
    alarms = {a.name: a for a in CloudWatchAlarms(seed.PREFIX).alarms()}
    assert len(alarms) == 105  # > 100: a second page was read
    assert "billing-estimated-charges" not in alarms
    ecs = alarms[seed.ECS_CPU]
    assert ecs.metric == "AWS/ECS CPUUtilization (Average)"
    assert (ecs.period_s, ecs.evaluation_periods, ecs.datapoints_to_alarm) == (300, 2, 2)
    assert ecs.changed_at.tzinfo is not None
    assert alarms[seed.P95].metric == "AWS/ApplicationELB TargetResponseTime (p95)"
    rate = alarms[seed.ERROR_RATE]
    assert rate.metric == "IF(m3 > 0, 100*(FILL(m1,0)+FILL(m2,0))/m3, 0)"
    assert rate.period_s == 60 and rate.threshold == 5


def test_set_alarm_state_flips_fire_once_per_episode(cloudwatch):
    source = CloudWatchAlarms(seed.PREFIX)
    tick = evaluate_tick(source.alarms(), None)
    assert tick.fired == []
    cloudwatch.set_alarm_state(AlarmName=seed.ECS_CPU, StateValue=ALARM, StateReason="2 of 2 > 80")
    fired = evaluate_tick(source.alarms(), tick.cursor)
    assert [a.name for a in fired.fired] == [seed.ECS_CPU]
    assert fired.fired[0].reason == "2 of 2 > 80"
    assert evaluate_tick(source.alarms(), fired.cursor).fired == []
    cloudwatch.set_alarm_state(AlarmName=seed.ECS_CPU, StateValue=OK, StateReason="recovered")
    cloudwatch.set_alarm_state(AlarmName=seed.ECS_CPU, StateValue=ALARM, StateReason="again")
    again = evaluate_tick(source.alarms(), fired.cursor)
    assert [a.reason for a in again.fired] == ["again"]
    assert again.fired[0].episode_key != fired.fired[0].episode_key


def test_unreachable_cloudwatch_is_an_operator_error(monkeypatch, aws):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    with pytest.raises(AlarmSourceError, match="cannot list CloudWatch alarms with prefix 'sage-'"):
        CloudWatchAlarms("sage-").alarms()


def test_metric_history_from_moto_with_related_metrics(cloudwatch):
    ecs_dims = [
        {"Name": "ClusterName", "Value": "sage-production"},
        {"Name": "ServiceName", "Value": "sage-production-backend"},
    ]
    db_dims = [{"Name": "DBInstanceIdentifier", "Value": seed.DB}]
    cloudwatch.put_metric_data(
        Namespace="AWS/ECS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": ecs_dims,
                "Value": v,
                "Timestamp": NOW - timedelta(minutes=m),
            }
            for m, v in ((12, 40.0), (7, 88.0), (2, 97.0))
        ],
    )
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "DatabaseConnections",
                "Dimensions": db_dims,
                "Value": 96.0,
                "Timestamp": NOW - timedelta(minutes=3),
            }
        ],
    )
    source = CloudWatchAlarms(seed.PREFIX)
    ecs = source.alarm(seed.ECS_CPU)
    frame = CloudWatchMetrics(alarms=source).history(ecs, NOW - timedelta(hours=1), NOW)
    own = frame[frame["metric"] == ecs.metric]
    assert sorted(own["value"]) == [40.0, 88.0, 97.0]
    connections = frame[frame["metric"] == f"AWS/RDS DatabaseConnections {seed.DB} (Maximum)"]
    assert connections["value"].tolist() == [96.0]


def test_p95_request_shape_with_stubber():
    """moto answers p95 with HTTP 500: check what we would send to AWS instead."""
    raw = {
        "AlarmName": seed.P95,
        "StateValue": ALARM,
        "StateUpdatedTimestamp": NOW,
        "Namespace": "AWS/ApplicationELB",
        "MetricName": "TargetResponseTime",
        "ExtendedStatistic": "p95",
        "Dimensions": [{"Name": "LoadBalancer", "Value": seed.LB}],
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 2.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    alarm = to_alarm(raw)
    client = boto3.client(
        "cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    start, end = NOW - timedelta(hours=2), NOW
    query = {
        "Id": "alarm",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "TargetResponseTime",
                "Dimensions": [{"Name": "LoadBalancer", "Value": seed.LB}],
            },
            "Period": 60,
            "Stat": "p95",
        },
        "ReturnData": True,
    }
    expected = {
        "MetricDataQueries": [query],
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": "alarm", "Timestamps": [NOW - timedelta(minutes=1)], "Values": [2.7]}
                ],
                "NextToken": "page2",
            },
            expected,
        )
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": "alarm", "Timestamps": [NOW], "Values": [3.1]}]},
            {**expected, "NextToken": "page2"},
        )
        frame = CloudWatchMetrics(client).history(alarm, start, end)
        stub.assert_no_pending_responses()
    assert frame["metric"].unique().tolist() == ["AWS/ApplicationELB TargetResponseTime (p95)"]
    assert frame["value"].tolist() == [2.7, 3.1]


def test_metric_math_queries_are_sent_as_the_alarm_defines_them(cloudwatch):
    """moto returns [] for metric math: check the queries built from the alarm instead."""
    seed.create_fillers(cloudwatch, 30)
    source = CloudWatchAlarms(seed.PREFIX)
    rate = source.alarm(seed.ERROR_RATE)
    queries, labels = metric_queries(rate, [a for a in source.alarms() if a.name != rate.name])
    ids = [q["Id"] for q in queries]
    assert ids[:4] == ["e1", "m1", "m2", "m3"]
    assert queries[0]["Expression"] == seed.ERROR_RATE_METRICS[0]["Expression"]
    assert all(q["ReturnData"] for q in queries)  # the parts are evidence too
    assert labels["e1"] == rate.metric
    assert labels["m3"] == "AWS/ApplicationELB RequestCount (Sum)"
    # Crowded by 30 other alarms, the database's connection count still comes first.
    assert labels["r4"] == f"AWS/RDS DatabaseConnections {seed.DB} (Maximum)"
    assert len(queries) == len(set(ids)) == 20
    assert len(set(labels.values())) == 20


def test_log_events_from_moto_are_filtered_client_side_too(aws):
    logs = boto3.client("logs")
    group = f"/ecs/sage-test-{NOW.timestamp():.0f}/backend"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="ecs/backend/abc")
    at = int((NOW - timedelta(minutes=5)).timestamp() * 1000)
    messages = ["GET /health 200 2ms", "FATAL: sorry, too many clients already", "started"]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="ecs/backend/abc",
        logEvents=[{"timestamp": at + i, "message": m} for i, m in enumerate(messages)],
    )
    frame = CloudWatchLogs(group).lines(NOW - timedelta(hours=1), NOW)
    # moto ignores the `?` pattern and returns all three; the analysis filters again.
    assert frame["message"].tolist() == messages
    assert frame["source"].iloc[0] == f"{group}/ecs/backend/abc"
    assert summarize(frame, NOW)["template"].tolist() == ["FATAL: sorry, too many clients already"]


def test_filter_log_events_request_shape_with_stubber():
    client = boto3.client(
        "logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    start, end = NOW - timedelta(hours=2), NOW
    expected = {
        "logGroupName": "/aws/rds/instance/sage-production-postgres/postgresql",
        "startTime": int(start.timestamp() * 1000),
        "endTime": int(end.timestamp() * 1000),
        "filterPattern": ERROR_FILTER_PATTERN,
    }
    event = {
        "timestamp": int(end.timestamp() * 1000),
        "message": "FATAL:  sorry, too many clients already\n",
        "logStreamName": "sage-production-postgres.0",
    }
    with Stubber(client) as stub:
        stub.add_response("filter_log_events", {"events": [], "nextToken": "t1"}, expected)
        stub.add_response("filter_log_events", {"events": [event]}, {**expected, "nextToken": "t1"})
        frame = CloudWatchLogs(expected["logGroupName"], client).lines(start, end)
        stub.assert_no_pending_responses()
    assert frame["message"].tolist() == ["FATAL:  sorry, too many clients already"]
    assert '?"too many"' in ERROR_FILTER_PATTERN and "?P2024" in ERROR_FILTER_PATTERN


def test_missing_log_group_is_an_evidence_error(aws):
    with pytest.raises(
        EvidenceError, match="cannot read log group /nope: ResourceNotFoundException"
    ):
        CloudWatchLogs("/nope").lines(NOW - timedelta(hours=1), NOW)
