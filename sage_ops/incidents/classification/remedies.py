"""What each root cause means and what to do about it: now, for good, and so it does not recur.

Plain data, one entry per category of categories.py; root_causes.py adds the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from sage_ops.incidents.classification import categories as c


@dataclass(frozen=True)
class Remedy:
    title: str
    cause: str
    confidence: str
    score: float  # ranks findings when several causes have evidence
    immediate: tuple[str, ...]
    long_term: tuple[str, ...]
    prevention: tuple[str, ...]


HIGH, MEDIUM, LOW, NONE = "high", "medium", "low", "none"

REMEDIES: dict[str, Remedy] = {
    c.PG_CONNECTION_EXHAUSTION: Remedy(
        "PostgreSQL connection pool exhaustion (53300)",
        "The database refused new connections because every slot was taken: the application's "
        "pools (tasks x pool size) plus one-off, migration and admin connections exceed "
        "max_connections.",
        HIGH,
        0.95,
        (
            "Set an explicit `connection_limit` in the service's DATABASE_URL so that tasks x "
            "limit + one-off, migration and admin connections stay below max_connections (see "
            "the budget).",
        ),
        (
            "Create one PrismaClient per process: a client per request or per module multiplies "
            "pools.",
            "Put RDS Proxy or PgBouncer (transaction pooling) in front of the database; give "
            "migrations a direct URL (Prisma `directUrl`), since the migration advisory lock "
            "needs a session.",
            "Lower the ECS deployment maximumPercent: at 200 % old and new tasks run side by "
            "side and hold two sets of pools during every deploy.",
            "Raise max_connections last: every connection costs server memory.",
        ),
        (
            "Alarm on DatabaseConnections at 80 % of max_connections, and check the connection "
            "budget (SAGE_OPS_SERVICE_TASKS x pool) before raising the service's task count.",
        ),
    ),
    c.PRISMA_POOL_TIMEOUT: Remedy(
        "Prisma client pool timeout (P2024)",
        "Requests waited longer than pool_timeout for a connection from the application's own "
        "Prisma pool: the pool is too small for the concurrency, or its connections are held by "
        "slow queries or long transactions. The database did not refuse anything.",
        HIGH,
        0.85,
        (
            "Find what holds connections: slow queries, long interactive transactions "
            "(pg_stat_activity state 'idle in transaction', query_start).",
        ),
        (
            "Raise `connection_limit` within the database's connection budget, or scale out "
            "tasks so each serves less concurrency.",
            "Raise `pool_timeout` only as a stopgap: it hides the wait, not the cause.",
        ),
        ("Keep interactive transactions short and time-boxed (`timeout` on $transaction).",),
    ),
    c.DB_UNREACHABLE: Remedy(
        "Database unreachable",
        "The application could not reach PostgreSQL at all: refused or dropped connections, "
        "an unresolvable host name, a failed TLS handshake, or a server starting up, shutting "
        "down or failing over.",
        HIGH,
        0.9,
        (
            "Check the instance: RDS events (reboot, failover, maintenance, storage-full), its "
            "status, and that the endpoint in DATABASE_URL resolves and accepts TCP on 5432 from "
            "the tasks' subnets (security groups).",
        ),
        (
            "Retry connection errors with backoff at startup and per request (Prisma reconnects; "
            "node-postgres needs an `error` handler on the pool).",
            "Use Multi-AZ and the cluster/instance endpoint (never an IP) so failovers are a DNS "
            "change of seconds.",
        ),
        (
            "Keep `sslmode`/CA bundle settings in the task definition tested in staging; alarm "
            "on RDS events and on the health endpoint's database check.",
        ),
    ),
    c.LOCK_TIMEOUT: Remedy(
        "Lock timeout (55P03)",
        "Statements gave up waiting for a lock (lock_timeout or NOWAIT): another transaction "
        "held a conflicting lock - often a migration's ALTER TABLE or a long transaction.",
        HIGH,
        0.8,
        (
            "Find the blocker: pg_stat_activity joined with pg_locks (pg_blocking_pids()); end "
            "it with pg_cancel_backend if it is a stuck session or an unfinished migration.",
        ),
        (
            "Make migrations lock-friendly: CREATE INDEX CONCURRENTLY, add columns without "
            "defaults that rewrite, short lock_timeout with retries.",
        ),
        ("Run migrations outside peak hours and keep transactions short; enable log_lock_waits.",),
    ),
    c.STATEMENT_TIMEOUT: Remedy(
        "Statement timeout (57014)",
        "Queries ran longer than statement_timeout and were cancelled: a slow plan, a missing "
        "index, lock waits or an overloaded database.",
        HIGH,
        0.8,
        (
            "Find the slow statements: pg_stat_statements by mean_exec_time, EXPLAIN (ANALYZE, "
            "BUFFERS) of the cancelled query from the log.",
        ),
        ("Add the missing index or paginate/rewrite the query; move long reports to a replica.",),
        ("Track p95 query time per endpoint and keep statement_timeout below the ALB timeout.",),
    ),
    c.DEADLOCK: Remedy(
        "Deadlock (40P01)",
        "Two transactions waited on each other's row locks; PostgreSQL aborted one of them.",
        HIGH,
        0.8,
        ("Retry the aborted transaction (it is safe to retry 40P01); read the DETAIL lines.",),
        (
            "Lock rows in one consistent order (sort ids before updating), and keep "
            "transactions short.",
        ),
        ("Alarm on pg_stat_database.deadlocks increasing.",),
    ),
    c.DISK_FULL: Remedy(
        "Disk full (53100 / ENOSPC)",
        "A write failed because the volume is full: the database's storage, WAL, temporary "
        "files, or the container's / host's disk.",
        HIGH,
        0.95,
        (
            "Free or add space now: raise RDS allocated storage (or enable storage autoscaling); "
            "on hosts, prune images and logs.",
        ),
        (
            "Find the growth: table and index bloat, unarchived WAL (replication slots), "
            "temp files from large sorts (work_mem).",
        ),
        ("Alarm on FreeStorageSpace below 20 % and on the hosts' disk usage.",),
    ),
    c.OOM_KILL: Remedy(
        "Out-of-memory kill",
        "A process ran out of memory and was killed (container memory limit, kernel OOM killer "
        "or V8 heap limit); its requests failed and its connections dropped.",
        HIGH,
        0.9,
        (
            "Raise the task's memory, and keep Node's --max-old-space-size below the container "
            "limit so V8 collects before the kernel kills.",
        ),
        (
            "Find the growth: a heap snapshot of a running task, large result sets loaded at "
            "once (stream or paginate them), unbounded caches.",
            "For killed PostgreSQL backends: lower work_mem x concurrent queries, check "
            "shared_buffers against the instance's memory.",
        ),
        ("Alarm on MemoryUtilization at 80 % and load-test memory per request.",),
    ),
    c.REDIS_UNAVAILABLE: Remedy(
        "Redis unavailable",
        "Redis refused or dropped connections, or refused writes (READONLY after a failover, "
        "OOM at maxmemory, still loading): sessions, caches and queues that need it failed.",
        HIGH,
        0.85,
        (
            "Check the Redis node: ElastiCache events (failover, reboot), memory against "
            "maxmemory, connected clients; point the client at the primary endpoint.",
        ),
        (
            "Set a maxmemory-policy that evicts (allkeys-lru) for caches; size the node for the "
            "working set; let the client reconnect on READONLY (ioredis `reconnectOnError`).",
        ),
        ("Alarm on DatabaseMemoryUsagePercentage and on CurrConnections; degrade without cache.",),
    ),
    c.ECS_TASK_FAILURE: Remedy(
        "ECS tasks failing to start or stay healthy",
        "ECS could not start the service's tasks or stopped them: image pull failures, secrets "
        "or log-group initialisation errors, the essential container exiting, or failed ELB "
        "health checks.",
        HIGH,
        0.85,
        (
            "Read the stopped tasks' stoppedReason (aws ecs describe-tasks) and the service "
            "events; roll back with `rollback_deployment` if a new image is failing.",
        ),
        (
            "Fix the cause: the image tag and ECR permissions, the execution role's "
            "secretsmanager/logs permissions, VPC endpoints or NAT for the subnets, the health "
            "check path and grace period.",
        ),
        ("Enable the deployment circuit breaker with rollback, and deploy to staging first.",),
    ),
    c.CPU_SATURATION: Remedy(
        "CPU saturation",
        "Sustained CPU above the threshold: the load exceeds the capacity, or the work per "
        "request grew.",
        MEDIUM,
        0.6,
        (
            "Scale out: raise the service's desired count or its CPU target-tracking policy "
            "(for the database: find the expensive queries in pg_stat_statements).",
        ),
        (
            "Profile the hot path (a CPU profile of one task); a regression in the latest "
            "deploy is the first suspect when one is flagged below.",
        ),
        ("Autoscale on CPU at 60-70 % so bursts have headroom; load-test each release.",),
    ),
    c.HTTP_5XX: Remedy(
        "HTTP 5xx responses",
        "The service answered with server errors; no other cause shows in the evidence, so the "
        "failing endpoints and the top log templates are the place to start.",
        LOW,
        0.35,
        ("Find the failing endpoints (ALB target 5xx by path) and their exceptions in the logs.",),
        ("Fix the exception; return 4xx for client errors so 5xx means a server fault.",),
        ("Alarm on the 5xx rate per target group and smoke-test each deploy.",),
    ),
}

DEPLOY_5XX = Remedy(
    "5xx burst after a deploy",
    "Server errors started shortly after a deployment: the new release is the first suspect.",
    MEDIUM,
    0.75,
    (
        "Roll back: launch the `rollback_deployment` job (link below) to restore the previous "
        "image, then investigate without user impact.",
    ),
    ("Compare the release's diff with the failing endpoints and the top log templates.",),
    ("Gate production on staging smoke tests and a canary; keep rollback one click away.",),
)
