"""Findings from the evidence: counts, first times, fixes in their stages, and the context
(budget, pool size, deploys, CPU metric) each cause adds. The line classifier itself is
checked on the labelled corpus (test_corpus.py)."""

from datetime import timedelta

import pytest

from sage_ops.incidents.classification.budget import ConnectionBudget
from sage_ops.incidents.classification.categories import classify_text
from sage_ops.incidents.classification.root_causes import Evidence, classify
from sage_ops.incidents.classification.templates import is_error
from sage_ops.incidents.evidence.changes import correlate
from sage_ops.lineage.changes import DEPLOYMENT, MIGRATION, Change
from tests.incidents.factories import T0, alarm, logs, metrics

PG_53300_FORMS = [
    "2026-11-25 10:00:01.123 UTC [4242] FATAL:  sorry, too many clients already",
    "2026-11-25 10:00:01 UTC:10.0.1.17(50312):app@sage:[4243]:FATAL:  remaining connection "
    "slots are reserved for non-replication superuser connections",
    "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
    "FATAL:  remaining connection slots are reserved for roles with privileges of the "
    '"pg_use_reserved_connections" role',
    'FATAL:  too many connections for role "app"',
    'FATAL:  too many connections for database "sage"',
    "PrismaClientInitializationError: Error querying the database: db error: FATAL: sorry, too "
    "many clients already",
    "Invalid `prisma.user.findMany()` invocation: Error in PostgreSQL connection: Error { kind: "
    "Db, cause: Some(DbError { severity: \"FATAL\", code: SqlState(E53300) }) } code: 'P2037'",
    "Error: P2037: Too many database connections opened: FATAL: sorry, too many clients already",
    "2026-11-25 10:00:02 UTC [4244] app@sage 53300 FATAL: sqlstate=53300 connection refused",
    "error: error code 53300 from pg pool",
]
PG_53300_NEAR_MISSES = [
    'LOG:  parameter "max_connections" cannot be changed without restarting the server',
    "could not connect to server: Connection refused Is the server running on host",
    "ERR max number of clients reached",  # Redis maxclients, not PostgreSQL
    "accept4() failed: too many open files",
    "user 53300 logged in from 10.0.0.3",
    "Timed out fetching a new connection from the connection pool (connection limit: 5)",
    "FATAL:  terminating connection due to administrator command",
    "Too many requests: rate limited by upstream",
]
P2024_FORMS = [
    "PrismaClientKnownRequestError: Timed out fetching a new connection from the connection "
    "pool. More info: http://pris.ly/d/connection-pool (Current connection pool timeout: 10, "
    "connection limit: 5)",
    "Invalid `prisma.message.create()` invocation: code: 'P2024'",
]
P2024_NEAR_MISSES = [
    "P2028: Transaction API error: Transaction already closed: timeout",
    "P1001: Can't reach database server at `db:5432`",
    "order P20245 shipped",
    "pool timeout reached while waiting for redis",
]
OOM_FORMS = [
    "OutOfMemoryError: Container killed due to memory usage",
    "Out of memory: Killed process 1234 (node) total-vm:2097152kB, anon-rss:1048576kB",
    "Memory cgroup out of memory: Killed process 812 (node)",
    "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
    "kernel: node invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0",
    '"OOMKilled": true,',
    "LOG:  server process (PID 5512) was terminated by signal 9: Killed",
    "sage-backend-1 exited with code 137 (OOMKilled)",
]
OOM_NEAR_MISSES = [
    '"OOMKilled": false,',
    "memory usage 72% of limit",
    "ERROR:  out of memory DETAIL:  Failed on request of size 1048576 in memory context",
    "exit code 1",
    "processed 137 records",
]
HTTP_5XX_FORMS = [
    '10.0.0.5 - - [25/Nov/2026:10:00:01 +0000] "GET /api/chat HTTP/1.1" 502 157 "-" "curl"',
    "request failed status=500 path=/api/messages",
    '{"level":"error","statusCode":503,"msg":"upstream unavailable"}',
]
HTTP_5XX_NEAR_MISSES = [
    '"GET /api/chat HTTP/1.1" 200 5023',
    "status=404 path=/favicon.ico",
    "processed 500 rows in 502 ms",
]


@pytest.mark.parametrize(
    ("category", "forms", "near_misses"),
    [
        ("pg_connection_exhaustion", PG_53300_FORMS, PG_53300_NEAR_MISSES),
        ("prisma_pool_timeout", P2024_FORMS, P2024_NEAR_MISSES),
        ("oom_kill", OOM_FORMS, OOM_NEAR_MISSES),
        ("http_5xx", HTTP_5XX_FORMS, HTTP_5XX_NEAR_MISSES),
    ],
)
def test_every_form_matches_and_no_near_miss_does(category, forms, near_misses):
    assert [f for f in forms if classify_text(f) != category] == []
    assert [n for n in near_misses if classify_text(n) == category] == []


def test_every_rule_form_counts_as_an_error_line():
    corpus = logs(*PG_53300_FORMS, *P2024_FORMS, *OOM_FORMS, *HTTP_5XX_FORMS)
    missed = corpus[~is_error(corpus["message"])]["message"].tolist()
    assert missed == []


def evidence(lines, a=None, changes=(), budget=None, series=None):
    a = a or alarm()
    frame = series if series is not None else metrics(a.metric, [])
    return Evidence(a, T0, lines, frame, list(changes), budget or ConnectionBudget())


def test_53300_names_pool_exhaustion_with_fixes_and_budget():
    lines = logs(*PG_53300_FORMS[:3], *HTTP_5XX_FORMS, start=T0 - timedelta(seconds=20))
    budget = ConnectionBudget(max_connections=100, tasks=6, pool_size=9, reserved=3)
    findings = classify(evidence(lines, budget=budget))
    top = findings[0]
    assert top.key == "pg_connection_exhaustion" and top.confidence == "high"
    assert top.lines == 3
    assert "20 s before the alarm" in top.evidence[0]
    assert any("12 tasks x 9 + 5 other + 1 migration = 114" in e for e in top.evidence)
    assert any("exceeds the 97 usable slots by 17" in e for e in top.evidence)
    assert any(
        "connection_limit that fits during a deploy: (97 - 5 - 1) // 12 = 7" in e
        for e in top.evidence
    )
    assert top.fixes[0].startswith("Set an explicit `connection_limit`")
    assert "RDS Proxy or PgBouncer" in top.fixes[2] and "directUrl" in top.fixes[2]
    assert "maximumPercent" in top.fixes[3] and top.fixes[4].startswith(
        "Raise max_connections last"
    )


def test_p2024_is_a_different_cause_and_reads_the_pool_size():
    top = classify(evidence(logs(*P2024_FORMS)))[0]
    assert top.key == "prisma_pool_timeout"
    assert "the client pool allows 5 connection(s)" in top.evidence
    assert "did not refuse" in top.cause


def test_oom_kill():
    assert classify(evidence(logs(OOM_FORMS[0], "GET /health 200")))[0].key == "oom_kill"


def test_5xx_after_a_deploy_points_at_the_release_with_rollback():
    deploy = Change(
        DEPLOYMENT,
        "production_deployment",
        T0 - timedelta(minutes=7),
        "run1",
        environment="production",
        commit="0123456789abcdef0123",
    )
    changes = correlate([deploy], T0, timedelta(minutes=30))
    top = classify(evidence(logs(*HTTP_5XX_FORMS), changes=changes))[0]
    assert top.key == "http_5xx" and top.title == "5xx burst after a deploy"
    assert any(
        "deployment of 0123456789ab to production 7 min before the episode started" in e
        for e in top.evidence
    )
    assert "rollback_deployment" in top.fixes[0]


def test_5xx_without_a_deploy_is_a_low_confidence_symptom():
    findings = classify(evidence(logs(*HTTP_5XX_FORMS, "TypeError: x is undefined")))
    assert [(f.key, f.confidence) for f in findings] == [("http_5xx", "low")]
    assert findings[0].lines == 3


def test_every_cause_has_count_first_time_and_three_kinds_of_fix():
    lines = logs(
        "ERROR:  canceling statement due to lock timeout",
        "ERROR:  deadlock detected",
        "ERROR:  canceling statement due to lock timeout",
        start=T0 - timedelta(seconds=30),
    )
    findings = {f.key: f for f in classify(evidence(lines))}
    lock = findings["lock_timeout"]
    assert (lock.lines, lock.first_seen) == (2, T0 - timedelta(seconds=30))
    assert lock.immediate and lock.long_term and lock.prevention
    assert next(s for s, _ in lock.staged_fixes) == "immediate"
    assert findings["deadlock"].first_seen == T0 - timedelta(seconds=29)


def test_cpu_saturation_from_the_metric():
    cpu = alarm(
        "sage-production-ecs-cpu-high", metric="AWS/ECS CPUUtilization (Average)", threshold=80
    )
    series = metrics(cpu.metric, [40, 85, 97, 99])
    top = classify(evidence(logs(), a=cpu, series=series))[0]
    assert top.key == "cpu_saturation"
    assert "peak 99 %" in top.evidence[0] and "3 datapoint(s) above 80" in top.evidence[0]
    assert "Scale out" in top.fixes[0]
    rds = alarm("sage-production-rds-cpu-high", metric="AWS/RDS CPUUtilization (Average)")
    assert (
        "pg_stat_statements"
        in classify(evidence(logs(), a=rds, series=metrics(rds.metric, [95])))[0].fixes[0]
    )


def test_deploy_note_is_added_to_a_log_rule_finding():
    deploy = Change(
        DEPLOYMENT, "production_deployment", T0 - timedelta(minutes=4), "r", commit="abc"
    )
    migration = Change(MIGRATION, "migrate_database", T0 - timedelta(hours=5), "m")
    changes = correlate([deploy, migration], T0, timedelta(minutes=30))
    assert [c.flagged for c in changes] == [True, False]
    top = classify(evidence(logs(PG_53300_FORMS[0]), changes=changes))[0]
    assert "deployment of abc 4 min before the episode started" in top.evidence[-1]


def test_connection_alarm_without_refusals_is_a_medium_warning():
    conn = alarm("sage-local-db-connections-high", metric="pg_connections_pct")
    top = classify(evidence(logs(), a=conn))[0]
    assert top.key == "pg_connection_exhaustion" and top.confidence == "medium"


def test_budget_says_what_is_missing():
    assert "SAGE_OPS_SERVICE_TASKS" in ConnectionBudget().arithmetic()[0]
    assert ConnectionBudget(max_connections=100, tasks=2, task_vcpus=1).pool == 3
    assert not ConnectionBudget(max_connections=100, tasks=2, pool_size=10).overflows()
