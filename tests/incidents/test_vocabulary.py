"""Each source's documented wording, one example per rule group at least, including every miss
the issue lists; and the near misses it names stay out."""

import re

import pytest

from sage_ops.incidents.classification.categories import BY_NAME, CATEGORIES, classify_text
from tests.incidents.corpus import positives

CASES = [
    # kernel OOM killer, 2.6 to 6.x; cgroup v1; ECS agent; Kubernetes
    (
        "oom_kill",
        "[12345.678] Out of memory: Kill process 18694 (perl) score 246 or sacrifice child",
    ),
    (
        "oom_kill",
        "Killed process 18694 (java) total-vm:1972392kB, anon-rss:1953348kB, file-rss:0kB",
    ),
    ("oom_kill", "Task in /docker/4f1a9c killed as a result of limit of /docker/4f1a9c"),
    ("oom_kill", "Out of memory and no killable processes..."),
    ("oom_kill", 'level=info msg="Container 4f1a9c died due to OOM" module=docker_container'),
    ("oom_kill", "      Reason:       OOMKilled"),
    ("oom_kill", "web-5d8f7c9b4-x2x9z   0/1     OOMKilled   3          2m"),
    ("oom_kill", 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space'),
    # libpq, psql, pg_dump, psycopg; JDBC; pgx
    ("db_unreachable", "psql: could not connect to server: No such file or directory"),
    (
        "db_unreachable",
        'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
        "No such file or directory",
    ),
    (
        "db_unreachable",
        'pg_dump: error: connection to server at "db.internal" (10.0.1.5), port 5432 failed: '
        "Connection timed out",
    ),
    ("db_unreachable", "could not receive data from server: Connection refused"),
    ("db_unreachable", "psycopg2.OperationalError: server closed the connection unexpectedly"),
    (
        "db_unreachable",
        "org.postgresql.util.PSQLException: Connection to localhost:5432 refused. Check that the "
        "hostname and port are correct and that the postmaster is accepting TCP/IP connections.",
    ),
    (
        "db_unreachable",
        "failed to connect to `host=db user=app database=sage`: dial error (dial tcp "
        "10.0.1.5:5432: connect: connection refused)",
    ),
    ("db_unreachable", "FATAL:  terminating connection because of crash of another server process"),
    ("db_unreachable", "Multi-AZ instance failover started."),
    ("db_unreachable", "The DB instance restarted."),
    # disk
    (
        "disk_full",
        'ERROR:  could not extend file "base/16384/16385": wrote only 4096 of 8192 bytes at block 9',
    ),
    (
        "disk_full",
        "The free storage capacity for DB instance sage-production is low at 4% of the allocated "
        "storage [Allocated storage: 20.00 GB, Free storage: 0.80 GB].",
    ),
    # Prisma 2's pool timeout
    (
        "prisma_pool_timeout",
        "Timed out fetching a new connection from the pool. Please consider reducing the number of "
        "requests or increasing the `connection_limit` parameter",
    ),
    # redis-py, ioredis, redis-cli, Redis replicas, ElastiCache
    (
        "redis_unavailable",
        "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection "
        "refused.",
    ),
    (
        "redis_unavailable",
        "MaxRetriesPerRequestError: Reached the max retries per request limit (which is 20).",
    ),
    ("redis_unavailable", "Error: Connection is closed."),
    ("redis_unavailable", "Could not connect to Redis at 127.0.0.1:6379: Connection refused"),
    ("redis_unavailable", "1:S 06 Dec 2026 03:00:01.001 # Connection with master lost."),
    ("redis_unavailable", "ElastiCache:FailoverComplete : sage-redis"),
    (
        "redis_unavailable",
        "Failover from master node sage-redis-001 to replica node sage-redis-002 completed",
    ),
    # ECS service events and stopped reasons
    (
        "ecs_task_failure",
        "(service sage-backend) is unable to consistently start tasks successfully.",
    ),
    ("ecs_task_failure", "(service sage-backend) rolling back to deployment ecs-svc/1234567890."),
    (
        "ecs_task_failure",
        "(service sage-backend) was unable to assume the role 'arn:aws:iam::1:role/ecs'.",
    ),
    (
        "ecs_task_failure",
        "Task failed to start: Timeout waiting for network interface provisioning to complete.",
    ),
    # classic ELB, Envoy, nginx
    (
        "http_5xx",
        "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 "
        '0.001048 0.000057 502 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -',
    ),
    (
        "http_5xx",
        '[2026-12-06T03:00:01.000Z] "GET /api/chat HTTP/1.1" 503 UF 0 91 30 - "-" "curl/8.0" '
        '"5f2c" "api.sage.ai" "10.0.1.17:3000"',
    ),
    (
        "http_5xx",
        "2026/12/06 03:00:01 [error] 31#31: *7 upstream timed out (110: Connection timed out) while "
        'reading response header from upstream, client: 10.0.0.1, server: _, request: "GET / HTTP/1.1"',
    ),
    (
        "http_5xx",
        "2026/12/06 03:00:01 [error] 31#31: *7 connect() failed (111: Connection refused) while "
        "connecting to upstream, client: 10.0.0.1",
    ),
]

NEAR_MISSES = [
    "2026-12-06 03:00:01 UTC [4401] LOG:  could not accept SSL connection: EOF detected",
    "[worker] outcome: success (essential container exited with code 0)",
    "2026-12-06 03:00:01 UTC [77] LOG:  duration: 0.5 ms  statement: SELECT 'deadlock detected'",
    '2026-12-06 03:00:01 UTC [77] LOG:  listening on Unix socket "/var/run/postgresql/.s.PGSQL.5432"',
    '2026/12/06 03:00:01 [error] 31#31: *1 open() "/usr/share/nginx/html/favicon.ico" failed '
    "(2: No such file or directory)",
]


@pytest.mark.parametrize(("category", "line"), CASES)
def test_documented_wording(category, line):
    assert classify_text(line) == category


@pytest.mark.parametrize("line", NEAR_MISSES)
def test_near_miss(line):
    assert classify_text(line) == "unknown"


def test_every_rule_group_cites_its_source():
    assert all(rule.source.strip() for c in CATEGORIES for rule in c.rules)


def test_every_rule_has_a_needle():
    """A pattern that matched a line without its category's (and its group's) needle would be
    skipped by the prefilter: every labelled line holds one of each."""
    for category, line in [*positives(), *CASES]:
        lower = line.lower()
        rules = BY_NAME[category]
        assert any(n in lower for n in rules.needles), line
        matching = [r for r in rules.rules if any(re.search(p, line) for p in r.patterns)]
        assert any(not r.needles or any(n in lower for n in r.needles) for r in matching), line
