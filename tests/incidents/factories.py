"""Small builders for test values (alarms, frames) so each test states only what it is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from sage_ops.incidents.alarms.alarm import ALARM, Alarm
from sage_ops.incidents.evidence.base import log_frame, metric_frame

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def alarm(name: str = "sage-production-api-error-rate-high", **fields: Any) -> Alarm:
    values: dict[str, Any] = dict(
        name=name,
        state=ALARM,
        changed_at=T0,
        reason="Threshold Crossed",
        metric="errors",
        threshold=5.0,
        comparison="GreaterThanThreshold",
        period_s=60,
        evaluation_periods=1,
        datapoints_to_alarm=1,
    )
    values.update(fields)
    return Alarm(**values)


def logs(
    *messages: str, start: datetime = T0, step_s: float = 1.0, source: str = "app"
) -> pd.DataFrame:
    return log_frame(
        (start + timedelta(seconds=i * step_s), source, m) for i, m in enumerate(messages)
    )


def metrics(name: str, values: list[float], start: datetime = T0, step_s: int = 60) -> pd.DataFrame:
    return metric_frame(
        (start + timedelta(seconds=i * step_s), name, v) for i, v in enumerate(values)
    )
