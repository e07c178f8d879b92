"""CloudWatch's alarm evaluation, applied to locally probed samples.

Local probes get the same semantics as the production alarms, so a threshold tuned locally
means the same thing on AWS: the statistic over each of the last `evaluation_periods` periods
of `period_s` seconds, ALARM when at least `datapoints_to_alarm` of them breach, and CloudWatch's
four treatments of missing data. Periods are counted back from the evaluation time.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from sage_ops.incidents.alarms.alarm import ALARM, INSUFFICIENT_DATA, OK

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
MISSING_TREATMENTS = ("missing", "notBreaching", "breaching", "ignore")


@dataclass(frozen=True)
class AlarmRule:
    """A local alarm, in CloudWatch's terms (production's own: infra/terraform/modules/alarms)."""

    name: str
    metric: str  # series name in the probe history
    statistic: str  # Average, Maximum, Minimum, Sum, SampleCount or pNN (p95, p99.9)
    threshold: float
    comparison: str = "GreaterThanThreshold"
    period_s: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 0  # 0: all evaluation periods, as CloudWatch defaults
    treat_missing: str = "missing"
    description: str = ""

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"{self.name}: unknown comparison {self.comparison!r}")
        if self.treat_missing not in MISSING_TREATMENTS:
            raise ValueError(f"{self.name}: treat_missing must be one of {MISSING_TREATMENTS}")
        _aggregator(self.statistic)  # fails early on an unknown statistic

    @property
    def required(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods


@dataclass(frozen=True)
class Evaluation:
    state: str | None  # None: keep the current state ("ignore" with no data)
    reason: str
    values: list[float]  # one per period, oldest first; NaN where the period had no sample


def evaluate(rule: AlarmRule, samples: pd.DataFrame, now: datetime) -> Evaluation:
    """The rule's state at `now` from `samples` (columns timestamp, value)."""
    values = period_values(rule, samples, now)
    compare, words = COMPARISONS[rule.comparison]
    present = [v for v in values if not math.isnan(v)]
    breaching = sum(compare(v, rule.threshold) for v in present)
    missing = len(values) - len(present)
    if rule.treat_missing == "breaching":
        breaching += missing
    shown = ", ".join("missing" if math.isnan(v) else f"{v:.4g}" for v in values)
    counted = f"{breaching} of the last {len(values)} datapoints [{shown}]"
    if breaching >= rule.required:
        return Evaluation(ALARM, f"{counted} {words} the threshold ({rule.threshold:g})", values)
    if present or rule.treat_missing == "notBreaching":
        return Evaluation(OK, f"{counted} {words} the threshold ({rule.threshold:g})", values)
    if rule.treat_missing == "ignore":
        return Evaluation(None, "no data: state kept", values)
    return Evaluation(INSUFFICIENT_DATA, f"no data in the last {len(values)} periods", values)


def period_values(rule: AlarmRule, samples: pd.DataFrame, now: datetime) -> list[float]:
    """The statistic over each of the last N periods ending at `now`, oldest first."""
    n = rule.evaluation_periods
    if samples.empty:
        return [math.nan] * n
    age = (pd.Timestamp(now) - samples["timestamp"]).dt.total_seconds()
    bucket = (age // rule.period_s).astype("int64")
    inside = (age >= 0) & (bucket < n)
    grouped = samples.loc[inside, "value"].groupby(bucket[inside])
    stats = grouped.agg(_aggregator(rule.statistic)) if inside.any() else pd.Series(dtype=float)
    return [float(stats.get(i, math.nan)) for i in range(n - 1, -1, -1)]


def _aggregator(statistic: str) -> Callable[[pd.Series], float]:
    simple: dict[str, Callable[[pd.Series], float]] = {
        "Average": lambda s: float(s.mean()),
        "Maximum": lambda s: float(s.max()),
        "Minimum": lambda s: float(s.min()),
        "Sum": lambda s: float(s.sum()),
        "SampleCount": lambda s: float(s.count()),
    }
    if statistic in simple:
        return simple[statistic]
    if statistic.startswith("p"):
        try:
            q = float(statistic[1:]) / 100
        except ValueError:
            q = -1.0
        if 0 <= q <= 1:
            return lambda s: float(s.quantile(q))
    raise ValueError(
        f"unknown statistic {statistic!r}: use Average, Maximum, Minimum, Sum, "
        "SampleCount or a percentile like p95"
    )
