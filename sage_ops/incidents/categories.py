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
_METHOD_NEEDLES = tuple(f"{m.lower()} /" for m in _METHOD[3:-1].split("|"))
_PG_HOST = r"(?:postgres|postgresql|rds\.amazonaws\.com|pgbouncer|\bdb\b|database)"
_REDIS_HOST = r"(?:redis|elasticache|valkey|\bcache\b)"


@dataclass(frozen=True)
class Rules:
    """The phrasings of one source, with the document or code that lists them; with needles of
    its own, the group's patterns only run on a text that holds one of them (lower-case)."""

    source: str
    patterns: tuple[str, ...]
    needles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    name: str
    # Lower-case substrings, one of which every match contains: the patterns only run on the
    # few lines that have one (`in` is cheap, regex alternations are not). The corpus's recall
    # and test_every_rule_has_a_needle are what guarantee no pattern matches without its needle.
    needles: tuple[str, ...]
    rules: tuple[Rules, ...]
    unless: str | None = None  # a near miss that contains a pattern (57014 by user request)

    def __post_init__(self) -> None:
        groups = [(r.needles, re.compile("|".join(r.patterns))) for r in self.rules]
        object.__setattr__(self, "_groups", groups)
        object.__setattr__(self, "_unless", re.compile(self.unless) if self.unless else None)

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(p for r in self.rules for p in r.patterns)

    def matches(self, text: str, lower: str) -> bool:
        return any(n in lower for n in self.needles) and self.matches_patterns(text, lower)

    def matches_patterns(self, text: str, lower: str) -> bool:
        """The patterns alone, for a text already known to hold one of the needles."""
        found = any(
            pattern.search(text)
            for needles, pattern in self._groups  # type: ignore[attr-defined]
            if not needles or any(n in lower for n in needles)
        )
        return found and (self._unless is None or not self._unless.search(text))  # type: ignore[attr-defined]


_KERNEL_OOM = "https://github.com/torvalds/linux/blob/master/mm/oom_kill.c (and its v3/v4 history)"
_LIBPQ = "https://github.com/postgres/postgres/blob/master/src/interfaces/libpq/fe-connect.c"
_PG_CODES = "https://www.postgresql.org/docs/current/errcodes-appendix.html"
_RDS_EVENTS = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html"
_ECS_SERVICE = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages-list.html"
)
_ECS_STOPPED = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html"
)
_PRISMA = "https://www.prisma.io/docs/orm/reference/error-reference"
_ELASTICACHE = "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ElastiCacheSNS.html"

CATEGORIES: tuple[Category, ...] = (
    Category(
        OOM_KILL,
        (
            "oom",
            "outofmemory",
            "out of memory",
            "signal 9",
            "killed process",
            "killed as a result of limit",
            "memory usage",
        ),
        (
            Rules(
                _KERNEL_OOM + ": every wording from 2.6 to 6.x, global and cgroup",
                (
                    r"\bOut of memory(?: \(oom_kill_allocating_task\))?: Kill(?:ed)? process",
                    r"\bOut of memory and no killable processes",
                    r"Memory cgroup out of memory: Kill",
                    r"\bKilled process \d+ \([^)]*\),? (?:UID \d+, )?total-vm:",
                    r"\bTask in \S+ killed as a result of limit of ",
                    r"\boom_reaper: reaped process",
                    r"invoked oom-killer",
                    r"\boom-kill:constraint=",
                ),
            ),
            Rules(
                "systemd(-oomd), journald and docker/containerd events",
                (
                    r"killed by the OOM killer",
                    r"Failed with result 'oom-kill'",
                    r"systemd-oomd\[\d+\]: Killed",
                    r"\bcontainer oom [0-9a-f]{12}",
                    r"\bOOMKilled\W{0,3}\s*true\b",
                ),
            ),
            Rules(
                _ECS_STOPPED + "; the ECS agent's container state log",
                (
                    r"OutOfMemoryError: Container killed due to memory usage",
                    r"\bdied due to OOM\b",
                    r"container init was OOM-killed",  # runc, in CannotStartContainerError
                    r"\bexit(?:ed)?(?: with)? code\W{0,3}137\b.{0,40}"
                    r"(?:OOM|[Oo]ut ?[Oo]f ?[Mm]emory)",
                ),
            ),
            Rules(
                "https://kubernetes.io/docs/tasks/configure-pod-container/assign-memory-resource/",
                (
                    r"[Rr]eason\W{0,3}\s*OOMKill(?:ed|ing)\b",
                    r"\bSystem OOM encountered",
                    r"\s\d+/\d+\s+OOMKilled\s+\d+",  # kubectl get pods' STATUS column
                ),
            ),
            Rules(
                "runtimes: Node's V8 heap limit, the JVM",
                (
                    r"JavaScript heap out of memory",
                    r"terminated by signal 9: Killed",
                    r"java\.lang\.OutOfMemoryError: (?:Java heap space|GC overhead limit exceeded)",
                ),
            ),
        ),
    ),
    Category(
        DISK_FULL,
        (
            "no space left",
            "enospc",
            "storage",
            "53100",
            "wrote only",
            "disk space",
            "disk quota",
        ),
        (
            Rules(
                "POSIX ENOSPC/EDQUOT as strerror prints them; Node's error codes",
                (r"(?i:no space left on device)", r"\bENOSPC\b", r"\bDisk quota exceeded\b"),
            ),
            Rules(
                _PG_CODES + " (53100 disk_full); md.c's short write on extend",
                (
                    r"could not extend file .{0,200}wrote only \d+ of \d+ bytes",
                    r"HINT:\s+Check free disk space",
                    sqlstate("53100"),
                ),
            ),
            Rules(
                _RDS_EVENTS + " (low storage: RDS-EVENT-0007, 0089, 0221, 0222)",
                (
                    r"[Aa]llocated storage has been exhausted",
                    r"storage-full",
                    r"[Ff]ree storage capacity for DB instance \S+ is low",
                    r"reached the storage-full threshold",
                ),
            ),
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
            Rules(
                _PG_CODES + " (53300 too_many_connections); postinit.c's wordings",
                (
                    r"sorry, too many clients already",
                    r"remaining connection slots are reserved for",
                    r"too many connections for (?:role|database)\b",
                    sqlstate("53300"),
                ),
            ),
            Rules(
                _PRISMA + " (P2037); PgBouncer's max_client_conn refusal",
                (
                    r"\bP2037\b|Too many database connections opened|\bTooManyConnections\b",
                    r"no more connections allowed \(max_client_conn\)",
                ),
            ),
        ),
    ),
    Category(
        PRISMA_POOL_TIMEOUT,
        ("p2024", "timed out fetching"),
        (
            Rules(
                _PRISMA + " (P2024, and Prisma 2's wording without 'connection')",
                (
                    r"(?<![\w-])P2024\b",
                    # the engine's own log line omits "new" (prisma/prisma-engines#2403)
                    r"Timed out fetching a (?:new )?connection from the (?:connection )?pool",
                ),
            ),
        ),
    ),
    Category(
        LOCK_TIMEOUT,
        ("lock timeout", "could not obtain lock", "55p03"),
        (
            Rules(
                _PG_CODES + " (55P03 lock_not_available)",
                (
                    r"canceling statement due to lock timeout",
                    r"could not obtain lock on (?:row|relation)",
                    sqlstate("55P03"),
                ),
            ),
        ),
    ),
    Category(
        STATEMENT_TIMEOUT,
        ("statement timeout", "57014"),
        (
            Rules(
                _PG_CODES + " (57014 query_canceled)",
                (r"canceling statement due to statement timeout", sqlstate("57014")),
            ),
        ),
        unless=r"due to user request",  # 57014 too, but a cancel, not a timeout
    ),
    Category(
        DEADLOCK,
        ("deadlock", "40p01"),
        (
            Rules(
                _PG_CODES + " (40P01 deadlock_detected)",
                (r"\bdeadlock detected\b", r"\bdetected deadlock while waiting", sqlstate("40P01")),
            ),
        ),
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
            "connection is closed",
            "master",
            "misconf",
            "for sync",
            "failover",
        ),
        (
            Rules(
                "Node's socket errors on Redis' ports or hosts (ioredis, node-redis)",
                (
                    r"ECONNREFUSED \S*:63[78]\d\b",
                    rf"(?i:{_REDIS_HOST}).{{0,120}}\b(?:ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET)\b",
                    rf"\b(?:ENOTFOUND|EAI_AGAIN) \S*(?i:{_REDIS_HOST})",
                ),
            ),
            Rules(
                "https://github.com/redis/ioredis/blob/main/lib/errors/ and its Error messages",
                (
                    r"\bMaxRetriesPerRequestError\b",
                    r"\bClusterAllFailedError\b",
                    r"\bError: Connection is closed\.",
                    r"\[ioredis\] Unhandled error event",
                ),
            ),
            Rules(
                "https://github.com/redis/redis-py/blob/master/redis/exceptions.py",
                (
                    r"\bredis\.exceptions\.(?:ConnectionError|TimeoutError|BusyLoadingError"
                    r"|ReadOnlyError|ClusterDownError|MasterDownError|OutOfMemoryError)\b",
                    r"\bError -?\d+ connecting to \S+:63[78]\d\.",
                ),
            ),
            Rules(
                "Redis server replies and log (https://github.com/redis/redis/blob/unstable/src/"
                "server.c, replication.c), redis-cli (redis-cli.c)",
                (
                    r"\bREADONLY You can't write against a read only replica",
                    r"\bOOM command not allowed when used memory",
                    r"\bLOADING Redis is loading the dataset",
                    r"\bERR max number of clients reached",
                    r"\bMISCONF Redis is configured to save RDB snapshots",
                    r"\bMASTERDOWN Link with MASTER is down",
                    r"\bCLUSTERDOWN\b",
                    r"connecting to \S+:63[78]\d\. Connection refused",
                    r"Could not connect to Redis at \S+: ",
                    r"\bConnection with master lost\b",
                    r"Error condition on socket for SYNC",
                ),
            ),
            Rules(
                _ELASTICACHE + " (failover, node replacement and recovery events)",
                (
                    r"\bElastiCache:(?:FailoverComplete|CacheNodeReplaceStarted|CacheNodesRebooted"
                    r"|CacheClusterRecoveryFailed|NodeReplacementScheduled)\b",
                    r"\bFailover (?:from master node \S+ )?to (?:replica|primary) node \S+ "
                    r"completed",
                    r"\bRecovering cache nodes? \d+",
                ),
            ),
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
            "57p02",
            "08006",
            "08001",
            "could not receive data from server",
            "psqlexception",
            "connection attempt failed",
            "multi-az",
            "failover",
            "db instance",
            "crash of another server process",
            "check that the hostname",
            "is the server running",
            "unix domain socket",
            "kind: closed",
            "failed to connect",
            "was reached but timed out",
        ),
        (
            Rules(
                _LIBPQ + ": connection failures as libpq (psql, pg_dump, psycopg) prints them, "
                "before and after PostgreSQL 14's `connection to server ... failed:`",
                (
                    r"could not connect to server: (?:Connection refused|No such file or directory"
                    r"|Connection timed out|No route to host|Network is unreachable)",
                    r"connection to server (?:at \S+(?: \(\S+\))?, port \d+|on socket \S+) failed: "
                    r"(?!FATAL|(?:SSL )?error: (?:password|FATAL))",
                    r"could not receive data from server: (?:Connection refused|Connection reset|"
                    r"Connection timed out)",
                    r"server closed the connection unexpectedly",
                    r"could not translate host name \S+ to address",
                    r"SSL SYSCALL error",
                    r"server does not support SSL",
                    r"no pg_hba\.conf entry for host .{0,200}no encryption",
                    # the hint lines after a refusal, when a shipper splits the message
                    r"Is the server running (?:locally|on (?:that )?host\b.{0,80}?) and accepting",
                    r"connections on Unix domain socket \"[^\"]*\.s\.PGSQL\.\d+\"\?",
                ),
            ),
            Rules(
                _PG_CODES + " (57P02 crash_shutdown, 57P03 cannot_connect_now, 08001, 08006)",
                (
                    r"the database system is (?:starting up|shutting down|in recovery mode|"
                    r"not (?:yet )?accepting connections)",
                    r"terminating connection because of crash of another server process",
                    sqlstate("57P0[23]"),
                    sqlstate("0800[16]"),
                ),
            ),
            Rules(
                "node-postgres (pg/lib/client.js) and Node's socket errors on PostgreSQL's port",
                (
                    r"ECONNREFUSED \S*(?::5432\b|\.s\.PGSQL\.)",
                    r"\b(?:ETIMEDOUT|EHOSTUNREACH|ECONNRESET) \S*:5432\b",
                    rf"\b(?:ENOTFOUND|EAI_AGAIN) \S*(?i:{_PG_HOST})",
                    r"Connection terminated unexpectedly",
                    r"Connection terminated due to connection timeout",
                    r"\bError: Connection terminated\s*$",  # a query pending when it closed
                ),
            ),
            Rules(
                _PRISMA + " (P1001, P1002, P1017; TLS from the query engine)",
                (
                    r"\bP1001\b|Can't reach database server at",
                    r"database server at .{0,80} was reached but timed out",
                    r"\bP1017\b|Server has closed the connection",
                    r"Error opening a TLS connection",
                    r"\bError \{ kind: Closed, cause: None \}",  # quaint's closed connection
                ),
            ),
            Rules(
                "JDBC (pgjdbc's PSQLException texts) and Go's pgx (`failed to connect to`)",
                (
                    r"Connection to \S+ refused\. Check that the hostname and port are correct",
                    r"PSQLException: The connection attempt failed",
                    r"failed to connect to `.{0,200}(?:dial error|connect: connection refused"
                    r"|i/o timeout|no such host)",
                    r"\bdial tcp \S+:5432: (?:connect: connection refused|i/o timeout)",
                    # pgx v5 puts each host's error on the lines after this one
                    r"failed to connect to `(?:host=\S+ )?user=\S+ database=\S+`:\s*$",
                ),
            ),
            Rules(
                _RDS_EVENTS + " (availability and failover: RDS-EVENT-0004, 0006, 0013, 0015, "
                "0031, 0049, 0071-0073)",
                (
                    r"\bMulti-AZ (?:instance )?failover (?:started|completed|to standby complete)",
                    r"\bA Multi-AZ failover (?:that resulted in .{0,80})?"
                    r"(?:has started|has completed|is complete)",
                    r"\b(?:Started (?:same|cross)-AZ failover|Completed failover) to DB instance",
                    r"\bThe DB instance (?:restarted|has failed|has been rebooted)\b",
                    r"\bDB instance (?:shutdown|restarted)\b",
                ),
            ),
        ),
        unless=r"advisory lock",  # P1002 from `migrate deploy` waiting for its lock
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
            "consistently start tasks",
            "rolling back",
            "assume the role",
            "network interface",
            "taskfailedtostart",
            "capacity is unavailable",
            "failed to launch",
            "failed to register targets",
        ),
        (
            Rules(
                _ECS_STOPPED + " (stopped reasons and error codes)",
                (
                    r"\bCannotPullContainerError\b",
                    r"\bResourceInitializationError\b",
                    r"\bCannot(?:Start|Create|Inspect|Stop)ContainerError\b",
                    r"\bCannotCreateVolumeError\b|\bContainerRuntime(?:Timeout)?Error\b",
                    r"Essential container in task exited",
                    r"Task failed ELB health checks",
                    r"failed container health checks",
                    r"\bTaskFailedToStart\b",
                    r"Timeout waiting for network interface provisioning to complete",
                ),
            ),
            Rules(
                _ECS_SERVICE + " (service event messages)",
                (
                    r"is unhealthy in \(?(?:target-group|elb)\b",
                    r"\bdeployment failed: tasks failed to start",
                    r"is unable to consistently start tasks successfully",
                    r"\) rolling back to deployment\b",
                    r"was unable to place a task",
                    r"was unable to assume the role",
                    r"failed to launch a task with \(error",
                    r"failed to register targets in \(target-group",
                    r"Capacity is unavailable at this time",
                ),
            ),
        ),
    ),
    Category(
        CPU_SATURATION,
        ("cpu",),
        (
            Rules(
                "CloudWatch alarm state changes (EventBridge/SNS JSON and the console's subject), "
                "Prometheus' standard CPU alerts, ECS task metadata",
                (
                    r"CPUUtilization.{0,1000}\"(?:NewStateValue|value)\":\s*\"ALARM\"",
                    r"\"(?:NewStateValue|value)\":\s*\"ALARM\".{0,1000}CPUUtilization",
                    r"ALARM: \"[^\"]*(?i:cpu)[^\"]*\"",
                    r"\b(?:CPUThrottlingHigh|HostHighCpuLoad|NodeHighCPUUsage)\b",
                    # kubernetes-mixin's CPUThrottlingHigh description, sent without the alert name
                    r"\b\d+(?:\.\d+)?% throttling of CPU in namespace \S+ for container",
                    r"\"cpuUtilization\":\{[^}]*\"total\":(?:9\d|100)(?:\.\d+)?\b",
                ),
            ),
        ),
    ),
    Category(
        HTTP_5XX,
        (
            "http",  # every access log's request field, and HTTP/1.1 in common-log lines
            "status",
            *_METHOD_NEEDLES,
            "exception",
            "health check has failed",
            "upstream",
        ),
        (
            Rules(
                "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
                "load-balancer-access-logs.html "
                "and .../classic/access-log-collection.html: elb_status_code after three timings",
                (
                    r"^(?:https?|h2|grpcs|wss?) \S+ \S+ \S+ \S+ \S+ \S+ \S+ 5\d\d ",
                    # a classic ELB line, alone or after the file name grep prints
                    r"(?:^|\.(?:txt|log):)\d{4}-\d\d-\d\dT\S+Z \S+ \S+:\d+ \S+ [-\d.]+ [-\d.]+ "
                    r"[-\d.]+ 5\d\d ",
                ),
            ),
            Rules(
                "common/combined access logs (nginx, Envoy's default format, morgan)",
                (r"HTTP/\d(?:\.\d)?\"? 5\d\d\b", rf"\b{_METHOD} /\S* 5\d\d (?:\d|-)"),
                ("http", *_METHOD_NEEDLES),
            ),
            Rules(
                "nginx's upstream errors (ngx_http_upstream.c) and Envoy's local replies",
                (
                    r"\bupstream timed out \(110: Connection timed out\) while",
                    r"\bconnect\(\) failed \(111: Connection refused\) while connecting to "
                    r"upstream",
                    r"\bno live upstreams while connecting to upstream",
                    r"\bupstream prematurely closed connection while reading",
                    r"upstream connect error or disconnect/reset before headers",
                    r"^no healthy upstream$",
                ),
                ("upstream",),
            ),
            Rules(
                "JSON and key=value loggers (pino-http, Nest LoggerService, winston)",
                (r"\b(?:status|statusCode|status_code)\"?\s*[=:]\s*\"?5\d\d\b",),
                ("status",),
            ),
            Rules(
                "Nest's HTTP exceptions, its ExceptionsHandler and Terminus health checks",
                (
                    r"\b(?:InternalServerError|BadGateway|ServiceUnavailable|GatewayTimeout)Exception\b",
                    r"ERROR \[ExceptionsHandler\]",
                    r"Health Check has failed!",
                ),
                ("exception", "health check has failed"),
            ),
        ),
    ),
)

BY_NAME = {c.name: c for c in CATEGORIES}
NAMES = (*(c.name for c in CATEGORIES), UNKNOWN)

# PostgreSQL's statement logging (log_statement, log_min_duration_statement): the bulk of a busy
# RDS log, and never an error itself - the SQL after it is the application's text, so it is not
# read as evidence either (a `WHERE note = 'deadlock detected'` is no deadlock).
_STATEMENT_LOG = re.compile(
    r"(?:LOG|DEBUG\d?|INFO):  (?:duration: [\d.]+ ms  )?"
    r"(?:statement|(?:execute|parse|bind) [^:]*): "
)
_STATEMENT_MARKS = ("LOG:  duration: ", "LOG:  statement: ", "LOG:  execute ")


def _needle_trie(words: set[str]) -> str:
    """One regex for many literals, factored by prefix: `re` tries the alternatives of a
    branch one after the other, so a flat 100-way alternation costs 100 tries per position."""
    tree: dict[str, dict] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + pattern(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return pattern(tree)


# The prefilter: every category's needles in one scan, which also says which categories can
# match. An entry without any (most of a log: checkpoints, connections, 200s) skips every rule.
_NEEDLES = {n for c in CATEGORIES for n in c.needles}
_ANY_NEEDLE = re.compile(_needle_trie(_NEEDLES))
# A scan reports the longest needle at each place, so a needle also stands for those inside it.
_OWNERS = {
    found: frozenset(i for i, c in enumerate(CATEGORIES) if any(n in found for n in c.needles))
    for found in _NEEDLES
}


def classify_text(text: str) -> str:
    """The category of one log entry (possibly several lines), or "unknown"."""
    head = text[:400]
    if any(m in head for m in _STATEMENT_MARKS) and _STATEMENT_LOG.search(head):
        return UNKNOWN
    lower = text.lower()
    found = set(_ANY_NEEDLE.findall(lower))
    if not found:
        return UNKNOWN
    candidates = frozenset().union(*(_OWNERS[n] for n in found))
    for index, category in enumerate(CATEGORIES):
        if index in candidates and category.matches_patterns(text, lower):
            return category.name
    return UNKNOWN
