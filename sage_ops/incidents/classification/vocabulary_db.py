"""The databases' vocabulary: PostgreSQL, libpq, RDS and the clients' (Prisma, node-postgres,
psycopg, pgx, JDBC) phrasings of each cause, in classification order."""

from __future__ import annotations

from sage_ops.incidents.classification.category_model import (
    DEADLOCK,
    DISK_FULL,
    ECS_STOPPED_DOCS,
    ELASTICACHE_DOCS,
    KERNEL_OOM_DOCS,
    LOCK_TIMEOUT,
    OOM_KILL,
    PG_CODES_DOCS,
    PG_CONNECTION_EXHAUSTION,
    PRISMA_DOCS,
    PRISMA_POOL_TIMEOUT,
    RDS_EVENTS_DOCS,
    REDIS_HOST,
    REDIS_UNAVAILABLE,
    STATEMENT_TIMEOUT,
    Category,
    Rules,
    sqlstate,
)

DATABASE: tuple[Category, ...] = (
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
                KERNEL_OOM_DOCS + ": every wording from 2.6 to 6.x, global and cgroup",
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
                ECS_STOPPED_DOCS + "; the ECS agent's container state log",
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
                PG_CODES_DOCS + " (53100 disk_full); md.c's short write on extend",
                (
                    r"could not extend file .{0,200}wrote only \d+ of \d+ bytes",
                    r"HINT:\s+Check free disk space",
                    sqlstate("53100"),
                ),
            ),
            Rules(
                RDS_EVENTS_DOCS + " (low storage: RDS-EVENT-0007, 0089, 0221, 0222)",
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
                PG_CODES_DOCS + " (53300 too_many_connections); postinit.c's wordings",
                (
                    r"sorry, too many clients already",
                    r"remaining connection slots are reserved for",
                    r"too many connections for (?:role|database)\b",
                    sqlstate("53300"),
                ),
            ),
            Rules(
                PRISMA_DOCS + " (P2037); PgBouncer's max_client_conn refusal",
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
                PRISMA_DOCS + " (P2024, and Prisma 2's wording without 'connection')",
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
                PG_CODES_DOCS + " (55P03 lock_not_available)",
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
                PG_CODES_DOCS + " (57014 query_canceled)",
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
                PG_CODES_DOCS + " (40P01 deadlock_detected)",
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
                    rf"(?i:{REDIS_HOST}).{{0,120}}\b(?:ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET)\b",
                    rf"\b(?:ENOTFOUND|EAI_AGAIN) \S*(?i:{REDIS_HOST})",
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
                ELASTICACHE_DOCS + " (failover, node replacement and recovery events)",
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
)
