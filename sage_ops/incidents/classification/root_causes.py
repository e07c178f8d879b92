"""Root causes: from the evidence to the most likely cause, with its fixes.

Every error line is put in a category by categories.classify_text (the same classifier as
`sage-ops triage classify`); each category with lines becomes a finding with its count, first
time seen, example forms and the remedies of remedies.py. Context adds what logs cannot say:
the connection budget for 53300, the alarm's metric for CPU, a flagged deploy for 5xx. When
nothing has evidence the result is "unknown" with the top log templates - a pattern is never
forced into a cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sage_ops.incidents.alarms.alarm import Alarm
from sage_ops.incidents.classification import categories as c
from sage_ops.incidents.classification.budget import ConnectionBudget
from sage_ops.incidents.classification.categories import classify_text
from sage_ops.incidents.classification.readable import readable
from sage_ops.incidents.classification.remedies import (
    DEPLOY_5XX,
    HIGH,
    LOW,
    MEDIUM,
    NONE,
    REMEDIES,
    Remedy,
)
from sage_ops.incidents.classification.templates import template_of
from sage_ops.incidents.evidence.changes import Correlated
from sage_ops.lineage.changes import DEPLOYMENT

if TYPE_CHECKING:  # a log's triage (the CLI) has no frames: pandas loads only with them
    import pandas as pd

POOL_LIMIT = re.compile(r"connection[ _]limit\W{1,3}(\d+)")
# What a planned restart or failover logs: the database is away for seconds, by design.
PLANNED_RESTART = re.compile(
    r"the database system is (?:starting up|shutting down|not yet accepting connections)"
    r"|The DB instance (?:restarted|has been rebooted)|DB instance (?:shutdown|restarted)"
    r"|Multi-AZ (?:instance )?failover|failover to DB instance|Completed failover"
)
LEVELS = (NONE, LOW, MEDIUM, HIGH)


@dataclass(frozen=True)
class Evidence:
    alarm: Alarm
    started: datetime
    errors: pd.DataFrame | None  # error log lines: timestamp, source, message
    metrics: pd.DataFrame | None  # timestamp, metric, value
    changes: list[Correlated] = field(default_factory=list)
    budget: ConnectionBudget = field(default_factory=ConnectionBudget)

    @property
    def flagged_deploys(self) -> list[Correlated]:
        return [c for c in self.changes if c.flagged and c.change.kind == DEPLOYMENT]


@dataclass(frozen=True)
class Finding:
    key: str  # the category
    title: str
    confidence: str
    score: float
    cause: str
    evidence: list[str]
    immediate: list[str]
    long_term: list[str]
    prevention: list[str]
    lines: int = 0
    first_seen: datetime | None = None

    @property
    def fixes(self) -> list[str]:
        return [*self.immediate, *self.long_term, *self.prevention]

    @property
    def staged_fixes(self) -> list[tuple[str, str]]:
        """(stage, fix) in order: immediate, long-term, prevention."""
        stages = (
            ("immediate", self.immediate),
            ("long-term", self.long_term),
            ("prevention", self.prevention),
        )
        return [(stage, fix) for stage, fixes in stages for fix in fixes]


@dataclass
class Hits:
    """The lines of one category: how many, since when, the first few (for forms and the pool
    size). Built from a frame by the sensor's triage, line by line by `triage analyze`."""

    count: int = 0
    first_seen: datetime | None = None
    examples: list[str] = field(default_factory=list)

    MAX_EXAMPLES = 20

    def add(self, at: datetime | None, message: str) -> None:
        self.count += 1
        if at is not None and (self.first_seen is None or at < self.first_seen):
            self.first_seen = at
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append(message)


def hits_by_category(errors: pd.DataFrame | None) -> dict[str, Hits]:
    import pandas as pd

    found: dict[str, Hits] = {}
    if errors is None or errors.empty:
        return found
    for row in categorized(errors).sort_values("timestamp", kind="stable").itertuples():
        if row.category != c.UNKNOWN:
            at = pd.Timestamp(row.timestamp).to_pydatetime()
            found.setdefault(str(row.category), Hits()).add(at, str(row.message))
    return found


def categorized(errors: pd.DataFrame) -> pd.DataFrame:
    """The error lines with their category."""
    return errors.assign(category=errors["message"].map(classify_text))


def classify(ev: Evidence) -> list[Finding]:
    """Every cause with evidence, most likely first; [unknown] when none has any."""
    return findings(ev, hits_by_category(ev.errors))


def findings(ev: Evidence, hits: dict[str, Hits]) -> list[Finding]:
    """Findings from lines already put in categories (ev.errors is not read again)."""
    found = [_log_finding(ev, name, h) for name, h in hits.items()]
    keys = {f.key for f in found}
    found += [
        f for extra in (_connection_alarm, _cpu_alarm, _deploy_alarm) if (f := extra(ev, keys))
    ]
    ranked = [_with_deploy_note(f, ev) for f in found]
    return sorted(ranked, key=lambda f: (-f.score, -f.lines)) or [_unknown(ev)]


def _finding(remedy: Remedy, key: str, evidence: list[str], hits: Hits | None) -> Finding:
    return Finding(
        key,
        remedy.title,
        remedy.confidence,
        remedy.score,
        remedy.cause,
        evidence,
        list(remedy.immediate),
        list(remedy.long_term),
        list(remedy.prevention),
        hits.count if hits else 0,
        hits.first_seen if hits else None,
    )


def _log_finding(ev: Evidence, key: str, hits: Hits) -> Finding:
    remedy = REMEDIES[key]
    if key == c.HTTP_5XX and ev.flagged_deploys:
        remedy = DEPLOY_5XX
    evidence = [_hits_line(hits, ev.started, remedy.title)]
    evidence += [f"form: `{m}`" for m in _forms(hits, key)]
    evidence += _context(ev, key, hits)
    return _finding(_weighed(remedy, key, hits), key, evidence, hits)


def _weighed(remedy: Remedy, key: str, hits: Hits) -> Remedy:
    """Confidence that reflects the evidence: one line is a hint, not proof (at most medium);
    a database that is only starting up or failing over, as a planned restart does, is at most
    medium, and low on one or two lines. Each level lost costs a quarter of the score."""
    level = LEVELS.index(remedy.confidence)
    if hits.count == 1:
        level = min(level, LEVELS.index(MEDIUM))
    if key == c.DB_UNREACHABLE and all(PLANNED_RESTART.search(e) for e in hits.examples):
        level = min(level, LEVELS.index(LOW if hits.count < 3 else MEDIUM))
    lost = LEVELS.index(remedy.confidence) - level
    if lost <= 0:
        return remedy
    return replace(remedy, confidence=LEVELS[level], score=remedy.score * 0.75**lost)


def _context(ev: Evidence, key: str, hits: Hits) -> list[str]:
    if key == c.PG_CONNECTION_EXHAUSTION:
        overflow = ["the pools do not fit in max_connections during a deploy"]
        return (overflow if ev.budget.overflows() else []) + ev.budget.arithmetic()
    if key == c.PRISMA_POOL_TIMEOUT:
        limits = sorted({int(m.group(1)) for e in hits.examples if (m := POOL_LIMIT.search(e))})
        return (
            [f"the client pool allows {', '.join(map(str, limits))} connection(s)"]
            if limits
            else []
        )
    if key == c.HTTP_5XX:
        return [d.describe() for d in ev.flagged_deploys[:3]]
    return []


def _connection_alarm(ev: Evidence, keys: set[str]) -> Finding | None:
    """A connection alarm before any refusal: exhaustion is coming, not here yet."""
    label = f"{ev.alarm.name} {ev.alarm.metric}".lower()
    if c.PG_CONNECTION_EXHAUSTION in keys or "connection" not in label:
        return None
    remedy = replace(
        REMEDIES[c.PG_CONNECTION_EXHAUSTION],
        title="PostgreSQL connections near exhaustion",
        cause="Connections are close to max_connections; new ones will soon be refused (53300).",
        confidence=MEDIUM,
        score=0.55,
    )
    evidence = [f"alarm {ev.alarm.name}: {ev.alarm.reason}", "no 53300 refusal logged yet"]
    return _finding(remedy, c.PG_CONNECTION_EXHAUSTION, evidence + ev.budget.arithmetic(), None)


def _cpu_alarm(ev: Evidence, keys: set[str]) -> Finding | None:
    label = f"{ev.alarm.name} {ev.alarm.metric}"
    if c.CPU_SATURATION in keys or "cpu" not in label.lower():
        return None
    import pandas as pd

    series = (
        ev.metrics[ev.metrics["metric"] == ev.alarm.metric]["value"]
        if ev.metrics is not None and not ev.metrics.empty
        else pd.Series(dtype=float)
    )
    above = series[series > ev.alarm.threshold]
    if above.empty and "ALARM" not in ev.alarm.state:
        return None
    database = "rds" in label.lower() or "database" in label.lower()
    remedy = REMEDIES[c.CPU_SATURATION]
    if database:
        remedy = replace(
            remedy,
            immediate=(
                "Find the expensive queries: pg_stat_statements ordered by total_exec_time, "
                "sequential scans on large tables (missing indexes).",
            ),
            long_term=(
                "Scale the instance class up once the queries are fixed, or add a read replica.",
            ),
        )
    peak = f"peak {series.max():.0f} %" if not series.empty else "no datapoints retrieved"
    return _finding(
        replace(
            remedy,
            title=f"CPU saturation ({'database' if database else 'service'})",
            score=0.6 if not above.empty else 0.45,
        ),
        c.CPU_SATURATION,
        [f"{ev.alarm.metric}: {peak}, {len(above)} datapoint(s) above {ev.alarm.threshold:g}"],
        None,
    )


def _deploy_alarm(ev: Evidence, keys: set[str]) -> Finding | None:
    """An error-rate alarm right after a deploy, before any 5xx line reached the logs."""
    error_alarm = re.search(r"5xx|error", f"{ev.alarm.name} {ev.alarm.metric}", re.IGNORECASE)
    if c.HTTP_5XX in keys or not error_alarm or not ev.flagged_deploys:
        return None
    evidence = [d.describe() for d in ev.flagged_deploys[:3]]
    return _finding(DEPLOY_5XX, c.HTTP_5XX, evidence, None)


def _unknown(ev: Evidence) -> Finding:
    known = ", ".join(name for name in c.NAMES if name != c.UNKNOWN)
    return Finding(
        c.UNKNOWN,
        "Unknown: no rule matches the evidence",
        NONE,
        0.0,
        f"None of the known causes ({known}) shows in the evidence; the most frequent error "
        "templates are listed for a human.",
        [f"{0 if ev.errors is None else len(ev.errors)} error line(s) in the window"],
        ["Start from the top templates and the metric plot."],
        [],
        [f"Add a category to {c.__name__.replace('.', '/')}.py when the cause is found."],
    )


def _with_deploy_note(finding: Finding, ev: Evidence) -> Finding:
    if finding.title == DEPLOY_5XX.title or not ev.flagged_deploys:
        return finding
    note = ev.flagged_deploys[0].describe()
    return replace(finding, evidence=[*finding.evidence, note])


def _hits_line(hits: Hits, started: datetime, what: str) -> str:
    first = hits.first_seen or started
    offset = (first - started).total_seconds()
    when = f"{abs(offset):.0f} s {'before' if offset < 0 else 'after'} the alarm"
    return f"{hits.count} line(s): {what}, first at {first:%Y-%m-%d %H:%M:%S} UTC ({when})"


def _forms(hits: Hits, key: str, limit: int = 4) -> list[str]:
    """The distinct shapes of the examples, in words even for JSON-wrapped lines."""
    shapes = (template_of(readable(m, key))[:160] for m in hits.examples)
    return list(dict.fromkeys(shapes))[:limit]
