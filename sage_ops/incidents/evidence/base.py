"""The two kinds of evidence and their small interfaces: metric history and log lines.

Both are pandas frames with UTC timestamps, whatever the source (CloudWatch, the local probe
history, a PostgreSQL log file, container logs), so the analysis never knows where they came from.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from datetime import datetime

import pandas as pd

from sage_ops.incidents.alarms.alarm import Alarm

METRIC_COLUMNS = ["timestamp", "metric", "value"]
LOG_COLUMNS = ["timestamp", "source", "message"]


class MetricSource(abc.ABC):
    @abc.abstractmethod
    def history(self, alarm: Alarm, start: datetime, end: datetime) -> pd.DataFrame:
        """The alarm's own metric (named `alarm.metric`) and related ones, between start and end."""


class LogSource(abc.ABC):
    name: str

    @abc.abstractmethod
    def lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Log lines (LOG_COLUMNS) written between start and end, oldest first."""


def metric_frame(rows: Iterable[tuple[datetime, str, float]]) -> pd.DataFrame:
    return _frame(rows, METRIC_COLUMNS)


def log_frame(rows: Iterable[tuple[datetime, str, str]]) -> pd.DataFrame:
    return _frame(rows, LOG_COLUMNS)


def _frame(rows: Iterable[tuple[datetime, str, object]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=columns)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
