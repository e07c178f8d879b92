"""Notification: SNS on a moto server (read back through an SQS subscription), or the run log."""

from __future__ import annotations

import json

import boto3
import pytest

from sage_ops.incidents.errors import NotificationError
from sage_ops.incidents.reports.notify import RunLogNotifier, SnsNotifier, sns_subject


def subscribed_queue(topic_arn: str) -> str:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"incidents-{abs(hash(topic_arn))}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received(url: str) -> list[dict]:
    messages = (
        boto3.client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        .get("Messages", [])
    )
    return [json.loads(m["Body"]) for m in messages]


def test_report_published_to_the_topic(aws):
    topic = boto3.client("sns").create_topic(Name="sage-production-incidents")["TopicArn"]
    queue = subscribed_queue(topic)
    where = SnsNotifier(topic).send(
        "sage-x in ALARM: PostgreSQL connection pool exhaustion", "body\nline 2"
    )
    assert where.startswith(f"SNS {topic} (message ")
    [message] = received(queue)
    assert message["Subject"] == "sage-x in ALARM: PostgreSQL connection pool exhaustion"
    assert message["Message"] == "body\nline 2"


def test_huge_body_is_cut_to_fit_sns(aws):
    topic = boto3.client("sns").create_topic(Name="sage-big")["TopicArn"]
    queue = subscribed_queue(topic)
    SnsNotifier(topic).send("big", "x" * 300_000)
    [message] = received(queue)
    assert len(message["Message"].encode()) <= 256 * 1024
    assert message["Message"].endswith("(truncated; see the report)")


def test_missing_topic_is_an_operator_error(aws):
    arn = "arn:aws:sns:us-east-1:123456789012:does-not-exist"
    with pytest.raises(
        NotificationError,
        match="cannot publish the incident report to .*does-not-exist.*SAGE_OPS_SNS_TOPIC_ARN",
    ):
        SnsNotifier(arn).send("s", "b")


def test_subject_fits_sns_rules_and_run_log_gets_everything():
    subject = sns_subject("sage-\u00e9t\u00e9 in ALARM:\n" + "y" * 200)
    assert len(subject) == 100 and subject.isascii() and "\n" not in subject
    lines: list[str] = []
    assert RunLogNotifier(lines.append).send("subject", "body") == "run log"
    assert lines == ["subject\nbody"]
