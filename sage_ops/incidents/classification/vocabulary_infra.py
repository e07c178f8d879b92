"""The infrastructure's vocabulary: the kernel, ECS, load balancers and proxies, Redis and
ElastiCache, CPU, in classification order (after the databases')."""

from __future__ import annotations

from sage_ops.incidents.classification.category_model import (
    CPU_SATURATION,
    DB_UNREACHABLE,
    ECS_SERVICE_DOCS,
    ECS_STOPPED_DOCS,
    ECS_TASK_FAILURE,
    HTTP_5XX,
    LIBPQ_DOCS,
    METHOD,
    METHOD_NEEDLES,
    PG_CODES_DOCS,
    PG_HOST,
    PRISMA_DOCS,
    RDS_EVENTS_DOCS,
    Category,
    Rules,
    sqlstate,
)

INFRASTRUCTURE: tuple[Category, ...] = (
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
                LIBPQ_DOCS + ": connection failures as libpq (psql, pg_dump, psycopg) prints them, "
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
                PG_CODES_DOCS + " (57P02 crash_shutdown, 57P03 cannot_connect_now, 08001, 08006)",
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
                    rf"\b(?:ENOTFOUND|EAI_AGAIN) \S*(?i:{PG_HOST})",
                    r"Connection terminated unexpectedly",
                    r"Connection terminated due to connection timeout",
                    r"\bError: Connection terminated\s*$",  # a query pending when it closed
                ),
            ),
            Rules(
                PRISMA_DOCS + " (P1001, P1002, P1017; TLS from the query engine)",
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
                RDS_EVENTS_DOCS + " (availability and failover: RDS-EVENT-0004, 0006, 0013, 0015, "
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
                ECS_STOPPED_DOCS + " (stopped reasons and error codes)",
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
                ECS_SERVICE_DOCS + " (service event messages)",
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
            *METHOD_NEEDLES,
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
                (r"HTTP/\d(?:\.\d)?\"? 5\d\d\b", rf"\b{METHOD} /\S* 5\d\d (?:\d|-)"),
                ("http", *METHOD_NEEDLES),
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
