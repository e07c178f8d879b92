"""One incident, end to end: gather metrics and logs around the episode, find the templates,
name the most likely cause, date it against recent changes.

Every evidence source may fail on its own (a log group missing, Docker down): the failure
becomes a gap in the report and the triage goes on with what it has, because a partial report
during an outage beats none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import pandas as pd

from sage_ops.errors import SageOpsError
from sage_ops.incidents.alarms.alarm import Alarm, episode_key
from sage_ops.incidents.classification.budget import ConnectionBudget
from sage_ops.incidents.classification.categories import UNKNOWN
from sage_ops.incidents.classification.root_causes import (
    POOL_LIMIT,
    Evidence,
    Finding,
    categorized,
    classify,
)
from sage_ops.incidents.classification.templates import is_error, summarize
from sage_ops.incidents.evidence.base import LOG_COLUMNS, METRIC_COLUMNS, LogSource, MetricSource
from sage_ops.incidents.evidence.changes import Correlated, correlate
from sage_ops.incidents.evidence.probes import PG_MAX_CONNECTIONS, PG_RESERVED
from sage_ops.incidents.window import Window
from sage_ops.lineage.changes import Change


@dataclass
class Triage:
    key: str
    alarm: Alarm
    started: datetime
    findings: list[Finding]
    templates: pd.DataFrame
    metrics: pd.DataFrame
    changes: list[Correlated]
    budget: ConnectionBudget
    error_lines: int
    gaps: list[str] = field(default_factory=list)

    @property
    def primary(self) -> Finding:
        return self.findings[0]


def triage(
    alarm: Alarm,
    started: datetime,
    metrics: MetricSource,
    logs: list[LogSource],
    changes: list[Change],
    budget: ConnectionBudget,
    now: datetime,
    window: Window = Window(),
    gaps: list[str] | None = None,
) -> Triage:
    start, end = started - window.lookback, min(now, started + window.after)
    gaps = list(gaps or [])
    frame = _metrics(metrics, alarm, start, end, gaps)
    lines = _logs(logs, start, end, gaps)
    errors = lines[is_error(lines["message"])] if not lines.empty else lines
    budget = observed_budget(budget, frame, errors)
    correlated = correlate(changes, started, window.deploy, first_error(errors))
    findings = classify(Evidence(alarm, started, errors, frame, correlated, budget))
    return Triage(
        key=episode_key(alarm.name, started),
        alarm=alarm,
        started=started,
        findings=findings,
        templates=summarize(errors, started),
        metrics=frame,
        changes=correlated,
        budget=budget,
        error_lines=len(errors),
        gaps=gaps,
    )


def first_error(errors: pd.DataFrame) -> datetime | None:
    """When the first line of a known cause was logged, else the first error line at all."""
    if errors.empty:
        return None
    known = categorized(errors)
    known = known[known["category"] != UNKNOWN]
    return pd.Timestamp((known if not known.empty else errors)["timestamp"].min()).to_pydatetime()


def observed_budget(
    budget: ConnectionBudget, metrics: pd.DataFrame, errors: pd.DataFrame
) -> ConnectionBudget:
    """Fill what configuration left open from what was observed: probed server settings, the
    pool size Prisma prints in P2024 messages."""
    if budget.max_connections is None and not metrics.empty:
        seen = metrics[metrics["metric"] == PG_MAX_CONNECTIONS]["value"]
        reserved = metrics[metrics["metric"] == PG_RESERVED]["value"]
        if not seen.empty:
            budget = replace(budget, max_connections=int(seen.iloc[-1]))
        if not reserved.empty:
            budget = replace(budget, reserved=int(reserved.iloc[-1]))
    if budget.pool is None and not errors.empty:
        limits = errors["message"].str.extract(POOL_LIMIT)[0].dropna()
        if not limits.empty:
            budget = replace(budget, pool_size=int(limits.iloc[-1]))
    return budget


def _metrics(
    source: MetricSource, alarm: Alarm, start: datetime, end: datetime, gaps: list[str]
) -> pd.DataFrame:
    try:
        return source.history(alarm, start, end)
    except SageOpsError as exc:
        gaps.append(f"metrics unavailable: {exc}")
        return pd.DataFrame(columns=METRIC_COLUMNS)


def _logs(
    sources: list[LogSource], start: datetime, end: datetime, gaps: list[str]
) -> pd.DataFrame:
    frames = []
    for source in sources:
        try:
            frames.append(source.lines(start, end))
        except SageOpsError as exc:
            gaps.append(f"logs unavailable from {source.name}: {exc}")
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=LOG_COLUMNS)
    return pd.concat(frames).sort_values("timestamp", kind="stable").reset_index(drop=True)
