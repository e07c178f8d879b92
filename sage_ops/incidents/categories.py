"""Root-cause categories of a log entry: the one classifier behind the sensor's triage and
`sage-ops triage classify`.

Each category is a list of the systems' own phrasings (PostgreSQL in every log format, RDS,
Prisma and its Rust error wrapping, node-postgres, Nest, ALB, morgan/pino-http, ECS, the kernel,
systemd, docker, Redis), checked in order: the first category that matches wins, so specific
causes come before their symptoms (a 500 that says "too many clients" is connection
exhaustion, not "HTTP 5xx"). A number only counts as a SQLSTATE or an HTTP status where the
format puts one (`SQLSTATE 53300`, csvlog's `ERROR,55P03,`, an access log's status field),
never as a port, a byte count or an id. tests/incidents/corpus holds the labelled lines and the
near misses every pattern is checked against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PG_CONNECTION_EXHAUSTION = "pg_connection_exhaustion"
PRISMA_POOL_TIMEOUT = "prisma_pool_timeout"
DB_UNREACHABLE = "db_unreachable"
LOCK_TIMEOUT = "lock_timeout"
STATEMENT_TIMEOUT = "statement_timeout"
DEADLOCK = "deadlock"
DISK_FULL = "disk_full"
OOM_KILL = "oom_kill"
HTTP_5XX = "http_5xx"
REDIS_UNAVAILABLE = "redis_unavailable"
ECS_TASK_FAILURE = "ecs_task_failure"
CPU_SATURATION = "cpu_saturation"
UNKNOWN = "unknown"


def sqlstate(code: str) -> str:
    """A SQLSTATE where a format puts one: `SQLSTATE 53300`, `code: '53300'`, jsonlog's
    `"state_code":"53300"`, Rust's `SqlState(E53300)`, Prisma's ``Code: `53300` ``, csvlog's
    `FATAL,53300,` and a `%e` in log_line_prefix (`53300 FATAL:`)."""
    return (
        rf"\b(?:SQLSTATE|sqlstate|state_code|code|Code|error code)\W{{0,4}}{code}\b"
        rf"|SqlState\(E{code}\)|\b(?:FATAL|ERROR|PANIC),{code},|\b{code} (?:FATAL|ERROR|PANIC):"
    )


_METHOD = r"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)"
_PG_HOST = r"(?:postgres|postgresql|rds\.amazonaws\.com|pgbouncer|\bdb\b|database)"
_REDIS_HOST = r"(?:redis|elasticache|valkey|\bcache\b)"


@dataclass(frozen=True)
class Category:
    name: str
    # Lower-case substrings, one of which every match contains: the patterns only run on the
    # few lines that have one (`in` is cheap, regex alternations are not). The corpus's 100 %
    # recall is what guarantees no pattern can match without its needle.
    needles: tuple[str, ...]
    patterns: tuple[str, ...]
    unless: str | None = None  # a near miss that contains a pattern (57014 by user request)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_match", re.compile("|".join(self.patterns)))
        object.__setattr__(self, "_unless", re.compile(self.unless) if self.unless else None)

    def matches(self, text: str, lower: str) -> bool:
        if not any(n in lower for n in self.needles):
            return False
        if not self._match.search(text):  # type: ignore[attr-defined]
            return False
        return self._unless is None or not self._unless.search(text)  # type: ignore[attr-defined]


CATEGORIES: tuple[Category, ...] = (
    Category(
        OOM_KILL,
        ("oom", "outofmemory", "out of memory", "signal 9"),
        (
            r"OutOfMemoryError: Container killed due to memory usage",
            r"\bOut of memory: Kill(?:ed)? process",
            r"Memory cgroup out of memory: Kill",
            r"\boom_reaper: reaped process",
            r"invoked oom-killer",
            r"\boom-kill:constraint=",
            r"killed by the OOM killer",
            r"Failed with result 'oom-kill'",
            r"systemd-oomd\[\d+\]: Killed",
            r"\bcontainer oom [0-9a-f]{12}",
            r"\bOOMKilled\W{0,3}\s*true\b",
            r"[Rr]eason\W{0,3}\s*OOMKilled",
            r"JavaScript heap out of memory",
            r"terminated by signal 9: Killed",
            r"\bexit(?:ed)?(?: with)? code\W{0,3}137\b.{0,40}(?:OOM|[Oo]ut ?[Oo]f ?[Mm]emory)",
        ),
    ),
    Category(
        DISK_FULL,
        ("no space left", "enospc", "storage", "53100"),
        (
            r"(?i:no space left on device)",
            r"\bENOSPC\b",
            r"[Aa]llocated storage has been exhausted",
            r"storage-full",
            sqlstate("53100"),
        ),
        unless=r"file watchers",  # Node's inotify limit says ENOSPC too
    ),
    Category(
        PG_CONNECTION_EXHAUSTION,
        (
            "too many",
            "remaining connection slots",
            "p2037",
            "toomanyconnections",
            "no more connections",
            "53300",
        ),
        (
            r"sorry, too many clients already",
            r"remaining connection slots are reserved for",
            r"too many connections for (?:role|database)\b",
            r"\bP2037\b|Too many database connections opened|\bTooManyConnections\b",
            r"no more connections allowed \(max_client_conn\)",
            sqlstate("53300"),
        ),
    ),
    Category(
        PRISMA_POOL_TIMEOUT,
        ("p2024", "timed out fetching"),
        (
            r"(?<![\w-])P2024\b",
            r"Timed out fetching a new connection from the connection pool",
        ),
    ),
    Category(
        LOCK_TIMEOUT,
        ("lock timeout", "could not obtain lock", "55p03"),
        (
            r"canceling statement due to lock timeout",
            r"could not obtain lock on (?:row|relation)",
            sqlstate("55P03"),
        ),
    ),
    Category(
        STATEMENT_TIMEOUT,
        ("statement timeout", "57014"),
        (r"canceling statement due to statement timeout", sqlstate("57014")),
        unless=r"due to user request",  # 57014 too, but a cancel, not a timeout
    ),
    Category(
        DEADLOCK,
        ("deadlock", "40p01"),
        (r"\bdeadlock detected\b", r"\bdetected deadlock while waiting", sqlstate("40P01")),
    ),
    Category(
        REDIS_UNAVAILABLE,
        (
            ":63",
            "redis",
            "elasticache",
            "valkey",
            "cache",
            "readonly",
            "oom command",
            "max number of clients",
            "clusterdown",
            "maxretriesperrequest",
            "clusterallfailed",
        ),
        (
            r"ECONNREFUSED \S*:63[78]\d\b",
            rf"(?i:{_REDIS_HOST}).{{0,120}}\b(?:ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET)\b",
            rf"\b(?:ENOTFOUND|EAI_AGAIN) \S*(?i:{_REDIS_HOST})",
            r"\bREADONLY You can't write against a read only replica",
            r"\bOOM command not allowed when used memory",
            r"\bLOADING Redis is loading the dataset",
            r"\bERR max number of clients reached",
            r"connecting to \S+:63[78]\d\. Connection refused",
            r"\bCLUSTERDOWN\b",
            r"\bMaxRetriesPerRequestError\b",
            r"\bClusterAllFailedError\b",
        ),
    ),
    Category(
        DB_UNREACHABLE,
        (
            "5432",
            "pgsql",
            "enotfound",
            "eai_again",
            "p1001",
            "reach database",
            "p1017",
            "closed the connection",
            "connection terminated",
            "could not connect",
            " failed: ",
            "could not translate",
            "database system is",
            "tls connection",
            "ssl",
            "pg_hba",
            "57p03",
        ),
        (
            r"ECONNREFUSED \S*(?::5432\b|\.s\.PGSQL\.)",
            r"\b(?:ETIMEDOUT|EHOSTUNREACH|ECONNRESET) \S*:5432\b",
            rf"\b(?:ENOTFOUND|EAI_AGAIN) \S*(?i:{_PG_HOST})",
            r"\bP1001\b|Can't reach database server at",
            r"\bP1017\b|Server has closed the connection",
            r"Connection terminated unexpectedly",
            r"Connection terminated due to connection timeout",
            r"could not connect to server: Connection refused",
            r"port \d+ failed: (?:Connection refused|Connection timed out|No route to host)",
            r"could not translate host name \S+ to address",
            r"the database system is (?:starting up|shutting down|in recovery mode)",
            r"Error opening a TLS connection",
            r"could not accept SSL connection",
            r"SSL SYSCALL error",
            r"server does not support SSL",
            r"no pg_hba\.conf entry for host .{0,200}no encryption",
            sqlstate("57P03"),
        ),
    ),
    Category(
        ECS_TASK_FAILURE,
        (
            "container",
            "resourceinitialization",
            "health check",
            "unhealthy",
            "deployment failed",
            "place a task",
        ),
        (
            r"\bCannotPullContainerError\b",
            r"\bResourceInitializationError\b",
            r"\bCannot(?:Start|Create|Inspect)ContainerError\b",
            r"Essential container in task exited",
            r"Task failed ELB health checks",
            r"is unhealthy in \(?target-group",
            r"failed container health checks",
            r"\bdeployment failed: tasks failed to start",
            r"unable to place a task because no container instance met",
        ),
    ),
    Category(
        CPU_SATURATION,
        ("cpu",),
        (
            r"CPUUtilization.{0,1000}\"(?:NewStateValue|value)\":\s*\"ALARM\"",
            r"\"(?:NewStateValue|value)\":\s*\"ALARM\".{0,1000}CPUUtilization",
            r"ALARM: \"[^\"]*(?i:cpu)[^\"]*\"",
            r"\b(?:CPUThrottlingHigh|HostHighCpuLoad|NodeHighCPUUsage)\b",
            r"\"cpuUtilization\":\{[^}]*\"total\":(?:9\d|100)(?:\.\d+)?\b",
        ),
    ),
    Category(
        HTTP_5XX,
        (" 5", ":5", "=5", "exception", "health check has failed"),
        (
            # ALB access log: type, time, elb, client, target, 3 timings, then elb_status_code.
            r"^(?:https?|h2|grpcs|wss?) \S+ \S+ \S+ \S+ \S+ \S+ \S+ 5\d\d ",
            # Common/combined (morgan, nginx) and morgan's short/tiny/dev formats.
            r"HTTP/\d(?:\.\d)?\"? 5\d\d\b",
            rf"\b{_METHOD} /\S* 5\d\d (?:\d|-)",
            # JSON and key=value loggers (pino-http, Nest LoggerService, winston).
            r"\b(?:status|statusCode|status_code)\"?\s*[=:]\s*\"?5\d\d\b",
            r"\b(?:InternalServerError|BadGateway|ServiceUnavailable|GatewayTimeout)Exception\b",
            r"ERROR \[ExceptionsHandler\]",
            r"Health Check has failed!",
        ),
    ),
)

BY_NAME = {c.name: c for c in CATEGORIES}
NAMES = (*(c.name for c in CATEGORIES), UNKNOWN)


def classify_text(text: str) -> str:
    """The category of one log entry (possibly several lines), or "unknown"."""
    lower = text.lower()
    for category in CATEGORIES:
        if category.matches(text, lower):
            return category.name
    return UNKNOWN
