"""CloudWatch as alarm source and metric source (production).

Alarms: `describe_alarms` by name prefix, every page. Metrics: `get_metric_data` for the alarm's
own definition - single metric with Statistic or ExtendedStatistic (p95), or the alarm's metric
math queries as they are - plus related metrics: the other alarms' metrics and the connection
count of every RDS instance they name. (moto cannot serve percentiles or metric math: tests use
a fake behind MetricSource and check the requests built here with botocore's Stubber.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from sage_ops.incidents.alarms.alarm import Alarm, AlarmSource, utc
from sage_ops.incidents.errors import AlarmSourceError, EvidenceError
from sage_ops.incidents.evidence.base import MetricSource, metric_frame
from sage_ops.platforms import aws

PAGE_SIZE = 100  # describe_alarms' maximum
MAX_RELATED = 20


class CloudWatchAlarms(AlarmSource):
    kind = "cloudwatch"

    def __init__(self, prefix: str, client: Any = None) -> None:
        self.prefix = prefix
        self.client = client or aws.client("cloudwatch", config=aws.WITHIN_A_TICK)

    def alarms(self) -> list[Alarm]:
        found: list[Alarm] = []
        try:
            pages = self.client.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=self.prefix,
                AlarmTypes=["MetricAlarm"],
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
            for page in pages:
                found += [to_alarm(raw) for raw in page.get("MetricAlarms", [])]
        except aws.ERRORS as exc:
            raise AlarmSourceError(
                f"cannot list CloudWatch alarms with prefix {self.prefix!r} in region "
                f"{self.client.meta.region_name}: {aws.error_text(exc)} "
                "(check AWS_REGION, credentials and cloudwatch:DescribeAlarms)"
            ) from None
        return found


def to_alarm(raw: Mapping[str, Any]) -> Alarm:
    """Our Alarm from a describe_alarms MetricAlarms entry."""
    changed = raw.get("StateTransitionedTimestamp") or raw["StateUpdatedTimestamp"]
    period = raw.get("Period") or _math_period(raw.get("Metrics", []))
    evaluation = int(raw.get("EvaluationPeriods", 1))
    return Alarm(
        name=raw["AlarmName"],
        state=raw["StateValue"],
        changed_at=utc(changed),
        reason=raw.get("StateReason", ""),
        metric=metric_label(raw),
        threshold=float(raw.get("Threshold", math.nan)),
        comparison=raw.get("ComparisonOperator", ""),
        period_s=int(period or 60),
        evaluation_periods=evaluation,
        datapoints_to_alarm=int(raw.get("DatapointsToAlarm") or evaluation),
        spec=_jsonable(raw),
    )


def metric_label(raw: Mapping[str, Any]) -> str:
    """What the alarm watches, e.g. `AWS/ECS CPUUtilization (Average)` or the math expression."""
    if raw.get("Metrics"):
        returned = [q for q in raw["Metrics"] if q.get("ReturnData", True) and q.get("Expression")]
        return returned[0]["Expression"] if returned else raw["Metrics"][0]["Id"]
    stat = raw.get("Statistic") or raw.get("ExtendedStatistic") or "Average"
    return f"{raw.get('Namespace')} {raw.get('MetricName')} ({stat})"


class CloudWatchMetrics(MetricSource):
    def __init__(self, client: Any = None, alarms: AlarmSource | None = None) -> None:
        self.client = client or aws.client("cloudwatch", config=aws.WITHIN_A_TICK)
        self.alarms = alarms

    def history(self, alarm: Alarm, start: datetime, end: datetime) -> pd.DataFrame:
        queries, labels = metric_queries(alarm, self._related(alarm))
        rows: list[tuple[datetime, str, float]] = []
        try:
            pages = self.client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries,
                StartTime=start.astimezone(UTC),
                EndTime=end.astimezone(UTC),
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    label = labels.get(result["Id"], result.get("Label") or result["Id"])
                    rows += [
                        (utc(t), label, float(v))
                        for t, v in zip(result["Timestamps"], result["Values"], strict=False)
                    ]
        except aws.ERRORS as exc:
            raise EvidenceError(
                f"cannot read CloudWatch metrics for alarm {alarm.name}: {aws.error_text(exc)} "
                "(check cloudwatch:GetMetricData)"
            ) from None
        return metric_frame(rows)

    def _related(self, alarm: Alarm) -> list[Alarm]:
        return [a for a in self.alarms.alarms() if a.name != alarm.name] if self.alarms else []


def metric_queries(
    alarm: Alarm, related: Sequence[Alarm] = ()
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """get_metric_data queries for the alarm and related metrics, and a label for each id."""
    queries, labels = _alarm_queries(alarm)
    seen = {_metric_key(q) for q in queries}
    # The database's connection count first: it is the 53300 evidence and easily crowded out.
    for query in [*_db_connection_queries(alarm, related), *map(_related_query, related)]:
        if query is None or _metric_key(query) in seen or len(labels) >= MAX_RELATED:
            continue
        seen.add(_metric_key(query))
        query["Id"] = f"r{len(queries)}"
        labels[query["Id"]] = query.pop("Label")
        queries.append(query)
    return queries, labels


def _alarm_queries(alarm: Alarm) -> tuple[list[dict[str, Any]], dict[str, str]]:
    spec = alarm.spec
    if spec.get("Metrics"):  # metric math: the alarm's own queries, every part returned
        queries: list[dict[str, Any]] = []
        labels: dict[str, str] = {}
        for q in spec["Metrics"]:
            query = {k: q[k] for k in ("Id", "Expression", "MetricStat", "Period") if k in q}
            query["ReturnData"] = True
            queries.append(query)
            is_alarm = q.get("Expression") and alarm.metric == q["Expression"]
            labels[q["Id"]] = alarm.metric if is_alarm else _part_label(q)
        return queries, labels
    single = _single_metric_query(alarm)
    assert single is not None
    single.pop("Label")
    single["Id"] = "alarm"
    return [single], {"alarm": alarm.metric}


def _single_metric_query(alarm: Alarm) -> dict[str, Any] | None:
    spec = alarm.spec
    if not spec.get("MetricName"):
        return None
    metric = {"Namespace": spec["Namespace"], "MetricName": spec["MetricName"]}
    metric["Dimensions"] = list(spec.get("Dimensions", []))
    stat = spec.get("Statistic") or spec.get("ExtendedStatistic") or "Average"
    label = f"{spec['Namespace']} {spec['MetricName']} ({stat})"
    stat_query = {"Metric": metric, "Period": int(spec.get("Period") or 60), "Stat": stat}
    return {"Id": "", "MetricStat": stat_query, "ReturnData": True, "Label": label}


def _related_query(alarm: Alarm) -> dict[str, Any] | None:
    """A related alarm's metric, labelled with its dimension values to tell series apart."""
    query = _single_metric_query(alarm)
    if query is not None:
        dims = " ".join(d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"])
        namespace, name = alarm.spec["Namespace"], alarm.spec["MetricName"]
        query["Label"] = f"{namespace} {name} {dims} ({query['MetricStat']['Stat']})"
    return query


def _db_connection_queries(alarm: Alarm, related: Sequence[Alarm]) -> list[dict[str, Any]]:
    """Connection count of each RDS instance any alarm names: the 53300 evidence on AWS."""
    instances = sorted(
        {
            d["Value"]
            for a in (alarm, *related)
            for d in a.spec.get("Dimensions", [])
            if d.get("Name") == "DBInstanceIdentifier"
        }
    )
    return [
        {
            "Id": "",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/RDS",
                    "MetricName": "DatabaseConnections",
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": name}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
            "ReturnData": True,
            "Label": f"AWS/RDS DatabaseConnections {name} (Maximum)",
        }
        for name in instances
    ]


def _metric_key(query: Mapping[str, Any]) -> str:
    return repr(query.get("MetricStat") or query.get("Expression"))


def _part_label(query: Mapping[str, Any]) -> str:
    stat = query.get("MetricStat")
    if not stat:
        return str(query.get("Expression", query["Id"]))
    return f"{stat['Metric']['Namespace']} {stat['Metric']['MetricName']} ({stat['Stat']})"


def _math_period(metrics: list[Mapping[str, Any]]) -> int | None:
    periods = [q["MetricStat"]["Period"] for q in metrics if q.get("MetricStat")]
    return max(periods) if periods else None


def _jsonable(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in raw.items()
        if k != "ResponseMetadata"
    }
