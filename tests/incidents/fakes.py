"""Fakes for what moto cannot serve, behind the same interfaces as the real clients.

moto answers get_metric_data with HTTP 500 for percentiles (p95) and [] for metric math, so
FakeCloudWatchMetrics stands in for CloudWatchMetrics where a test needs those series; the real
client's requests are checked separately with botocore's Stubber (test_cloudwatch.py).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from sage_ops.incidents.alarms.alarm import Alarm
from sage_ops.incidents.evidence.base import MetricSource


class FakeCloudWatchMetrics(MetricSource):
    """Serves a prepared frame (timestamp, metric, value), windowed like get_metric_data."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.asked: list[tuple[str, datetime, datetime]] = []

    def history(self, alarm: Alarm, start: datetime, end: datetime) -> pd.DataFrame:
        self.asked.append((alarm.name, start, end))
        inside = (self.frame["timestamp"] >= start) & (self.frame["timestamp"] <= end)
        return self.frame[inside].reset_index(drop=True)
