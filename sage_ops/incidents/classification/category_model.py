"""The model of a root-cause category (its name, its rule groups, each citing its source) and
the pattern pieces the vocabularies share."""

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


METHOD = r"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)"
METHOD_NEEDLES = tuple(f"{m.lower()} /" for m in METHOD[3:-1].split("|"))
PG_HOST = r"(?:postgres|postgresql|rds\.amazonaws\.com|pgbouncer|\bdb\b|database)"
REDIS_HOST = r"(?:redis|elasticache|valkey|\bcache\b)"


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


# The documentation each rule group cites.
KERNEL_OOM_DOCS = (
    "https://github.com/torvalds/linux/blob/master/mm/oom_kill.c (and its v3/v4 history)"
)
LIBPQ_DOCS = "https://github.com/postgres/postgres/blob/master/src/interfaces/libpq/fe-connect.c"
PG_CODES_DOCS = "https://www.postgresql.org/docs/current/errcodes-appendix.html"
RDS_EVENTS_DOCS = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html"
ECS_SERVICE_DOCS = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages-list.html"
)
ECS_STOPPED_DOCS = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html"
)
PRISMA_DOCS = "https://www.prisma.io/docs/orm/reference/error-reference"
ELASTICACHE_DOCS = "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ElastiCacheSNS.html"
