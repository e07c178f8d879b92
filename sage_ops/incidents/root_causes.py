"""Root-cause rules: from the evidence to the most likely cause, with the fix.

Log rules match the systems' own messages (every form they take, wrapped or not) and are
checked against near misses in the tests. Context rules (deploy then 5xx, CPU saturation) need
the alarm and the metrics. A rule only speaks when its evidence is there; when none does, the
result is "unknown" with the top log templates - a pattern is never forced into a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

import pandas as pd

from sage_ops.incidents.alarms import Alarm
from sage_ops.incidents.budget import ConnectionBudget
from sage_ops.incidents.changes import DEPLOYMENT, Correlated
from sage_ops.incidents.templates import template_of

HIGH, MEDIUM, LOW, NONE = "high", "medium", "low", "none"

PG_53300 = re.compile(
    r"sorry, too many clients already"
    r"|remaining connection slots are reserved for"
    r"|too many connections for (?:role|database) \""
    r"|\bP2037\b|Too many database connections opened|\bTooManyConnections\b"
    r"|(?:SQLSTATE|sqlstate|error code|code)[\s:=\[\('\"]*53300\b"
)
PRISMA_P2024 = re.compile(r"\bP2024\b|Timed out fetching a new connection from the connection pool")
POOL_LIMIT = re.compile(r"connection limit: (\d+)")
OOM_KILL = re.compile(
    r"OutOfMemoryError: Container killed due to memory usage"
    r"|Out of memory: Kill(?:ed)? process|Memory cgroup out of memory|\boom-kill(?:er)?\b"
    r"|JavaScript heap out of memory|\bOOMKilled\b\W{0,3}\s*true"
    r"|terminated by signal 9: Killed|exit(?:ed)?(?: with)? code:? 137\b"
)
HTTP_5XX = re.compile(
    r"(?:HTTP/\d(?:\.\d)?\"?|status(?:Code)?\"?\s*[=:]|code\"?\s*[=:])\s*\"?5\d\d\b"
    r"|\" 5\d\d \d"
)

PG_EXHAUSTION_FIXES = (
    "Set an explicit `connection_limit` in the service's DATABASE_URL so that tasks x limit + "
    "one-off, migration and admin connections stay below max_connections (see the budget).",
    "Create one PrismaClient per process: a client per request or per module multiplies pools.",
    "Put RDS Proxy or PgBouncer (transaction pooling) in front of the database; give migrations "
    "a direct URL (Prisma `directUrl`), since the migration advisory lock needs a session.",
    "Lower the ECS deployment maximumPercent: at 200 % old and new tasks run side by side and "
    "hold two sets of pools during every deploy.",
    "Raise max_connections last: every connection costs server memory.",
)


@dataclass(frozen=True)
class Evidence:
    alarm: Alarm
    started: datetime
    errors: pd.DataFrame  # error log lines: timestamp, source, message
    metrics: pd.DataFrame  # timestamp, metric, value
    changes: list[Correlated] = field(default_factory=list)
    budget: ConnectionBudget = field(default_factory=ConnectionBudget)

    @property
    def flagged_deploys(self) -> list[Correlated]:
        return [c for c in self.changes if c.flagged and c.change.kind == DEPLOYMENT]


@dataclass(frozen=True)
class Finding:
    key: str
    title: str
    confidence: str
    score: float
    cause: str
    evidence: list[str]
    fixes: list[str]
    lines: int = 0
    first_seen: datetime | None = None


def classify(ev: Evidence) -> list[Finding]:
    """Every rule with evidence, most likely first; [unknown] when none has any."""
    findings = [
        f
        for rule in (_pg_exhaustion, _prisma_pool_timeout, _oom_kill, _deploy_5xx, _cpu)
        if (f := rule(ev)) is not None
    ]
    findings = [_with_deploy_note(f, ev) for f in findings]
    return sorted(findings, key=lambda f: -f.score) or [_unknown(ev)]


def matching(errors: pd.DataFrame, pattern: re.Pattern[str]) -> pd.DataFrame:
    if errors.empty:
        return errors
    return errors[errors["message"].str.contains(pattern, regex=True)]


def _pg_exhaustion(ev: Evidence) -> Finding | None:
    hits = matching(ev.errors, PG_53300)
    connection_alarm = "connection" in f"{ev.alarm.name} {ev.alarm.metric}".lower()
    if hits.empty and not connection_alarm:
        return None
    budget = ev.budget.arithmetic()
    if hits.empty:
        evidence = [f"alarm {ev.alarm.name}: {ev.alarm.reason}", "no 53300 refusal logged yet"]
        return Finding(
            "pg_connection_exhaustion",
            "PostgreSQL connections near exhaustion",
            MEDIUM,
            0.55,
            "Connections are close to max_connections; new ones will soon be refused (53300).",
            evidence + budget,
            list(PG_EXHAUSTION_FIXES),
        )
    evidence = [_hits_line(hits, ev.started, "refused connections (SQLSTATE 53300)")]
    evidence += [f"form: `{m}`" for m in _forms(hits)]
    if ev.budget.overflows():
        evidence.append("the pools do not fit in max_connections during a deploy")
    return Finding(
        "pg_connection_exhaustion",
        "PostgreSQL connection pool exhaustion (53300)",
        HIGH,
        0.95,
        "The database refused new connections because every slot was taken: the application's "
        "pools (tasks x pool size) plus one-off, migration and admin connections exceed "
        "max_connections.",
        evidence + budget,
        list(PG_EXHAUSTION_FIXES),
        len(hits),
        _first(hits),
    )


def _prisma_pool_timeout(ev: Evidence) -> Finding | None:
    hits = matching(ev.errors, PRISMA_P2024)
    if hits.empty:
        return None
    limits = sorted({int(m) for m in hits["message"].str.extract(POOL_LIMIT)[0].dropna()})
    evidence = [_hits_line(hits, ev.started, "Prisma pool timeouts (P2024)")]
    if limits:
        evidence.append(f"the client pool allows {', '.join(map(str, limits))} connection(s)")
    return Finding(
        "prisma_pool_timeout",
        "Prisma client pool timeout (P2024)",
        HIGH,
        0.85,
        "Requests waited longer than pool_timeout for a connection from the application's own "
        "Prisma pool: the pool is too small for the concurrency, or its connections are held by "
        "slow queries or long transactions. The database did not refuse anything.",
        evidence,
        [
            "Find what holds connections: slow queries, long interactive transactions "
            "(pg_stat_activity state 'idle in transaction', query_start).",
            "Raise `connection_limit` within the database's connection budget, or scale out "
            "tasks so each serves less concurrency.",
            "Raise `pool_timeout` only as a stopgap: it hides the wait, not the cause.",
        ],
        len(hits),
        _first(hits),
    )


def _oom_kill(ev: Evidence) -> Finding | None:
    hits = matching(ev.errors, OOM_KILL)
    if hits.empty:
        return None
    return Finding(
        "oom_kill",
        "Out-of-memory kill",
        HIGH,
        0.9,
        "A process ran out of memory and was killed (container memory limit, kernel OOM killer "
        "or V8 heap limit); its requests failed and its connections dropped.",
        [_hits_line(hits, ev.started, "out-of-memory kills")]
        + [f"form: `{m}`" for m in _forms(hits)],
        [
            "Raise the task's memory, and keep Node's --max-old-space-size below the container "
            "limit so V8 collects before the kernel kills.",
            "Find the growth: a heap snapshot of a running task, large result sets loaded at "
            "once (stream or paginate them), unbounded caches.",
            "For killed PostgreSQL backends: lower work_mem x concurrent queries, check "
            "shared_buffers against the instance's memory.",
        ],
        len(hits),
        _first(hits),
    )


def _deploy_5xx(ev: Evidence) -> Finding | None:
    deploys = ev.flagged_deploys
    hits = matching(ev.errors, HTTP_5XX)
    error_alarm = re.search(r"5xx|error", f"{ev.alarm.name} {ev.alarm.metric}", re.IGNORECASE)
    if not deploys or not (error_alarm or len(hits) >= 5):
        return None
    evidence = [f"{d.describe()} the episode started" for d in deploys[:3]]
    if not hits.empty:
        evidence.append(_hits_line(hits, ev.started, "5xx responses logged"))
    return Finding(
        "deploy_5xx",
        "5xx burst after a deploy",
        MEDIUM,
        0.75,
        "Server errors started shortly after a deployment: the new release is the first suspect.",
        evidence,
        [
            "Roll back: launch the `rollback_deployment` job (link below) to restore the "
            "previous image, then investigate without user impact.",
            "Compare the release's diff with the failing endpoints and the top log templates.",
        ],
        len(hits),
        _first(hits) if not hits.empty else None,
    )


def _cpu(ev: Evidence) -> Finding | None:
    label = f"{ev.alarm.name} {ev.alarm.metric}"
    if "cpu" not in label.lower():
        return None
    series = (
        ev.metrics[ev.metrics["metric"] == ev.alarm.metric]["value"]
        if not ev.metrics.empty
        else pd.Series(dtype=float)
    )
    above = series[series > ev.alarm.threshold]
    if above.empty and "ALARM" not in ev.alarm.state:
        return None
    database = "rds" in label.lower() or "database" in label.lower()
    peak = f"peak {series.max():.0f} %" if not series.empty else "no datapoints retrieved"
    fixes = (
        [
            "Find the expensive queries: pg_stat_statements ordered by total_exec_time, "
            "sequential scans on large tables (missing indexes).",
            "Scale the instance class up once the queries are fixed, or add a read replica.",
        ]
        if database
        else [
            "Scale out: raise the service's desired count or its CPU target-tracking policy.",
            "Profile the hot path (a CPU profile of one task); a regression in the latest "
            "deploy is the first suspect when one is flagged below.",
        ]
    )
    return Finding(
        "cpu_saturation",
        f"CPU saturation ({'database' if database else 'service'})",
        MEDIUM,
        0.6 if not above.empty else 0.45,
        "Sustained CPU above the threshold: the load exceeds the capacity, or the work per "
        "request grew.",
        [f"{ev.alarm.metric}: {peak}, {len(above)} datapoint(s) above {ev.alarm.threshold:g}"],
        fixes,
    )


def _unknown(ev: Evidence) -> Finding:
    return Finding(
        "unknown",
        "Unknown: no rule matches the evidence",
        NONE,
        0.0,
        "None of the known causes (53300, P2024, OOM kills, 5xx after a deploy, CPU saturation) "
        "shows in the evidence; the most frequent error templates are listed for a human.",
        [f"{len(ev.errors)} error line(s) in the window"],
        ["Start from the top templates and the metric plot; add a rule when the cause is found."],
    )


def _with_deploy_note(finding: Finding, ev: Evidence) -> Finding:
    if finding.key == "deploy_5xx" or not ev.flagged_deploys:
        return finding
    note = f"{ev.flagged_deploys[0].describe()} the episode started"
    return replace(finding, evidence=[*finding.evidence, note])


def _hits_line(hits: pd.DataFrame, started: datetime, what: str) -> str:
    first = _first(hits)
    offset = (pd.Timestamp(first) - pd.Timestamp(started)).total_seconds()
    when = f"{abs(offset):.0f} s {'before' if offset < 0 else 'after'} the alarm"
    return f"{len(hits)} {what}, first at {first:%Y-%m-%d %H:%M:%S} UTC ({when})"


def _forms(hits: pd.DataFrame, limit: int = 4) -> list[str]:
    return list(dict.fromkeys(template_of(m)[:160] for m in hits["message"]))[:limit]


def _first(hits: pd.DataFrame) -> datetime:
    return pd.Timestamp(hits["timestamp"].min()).to_pydatetime()
