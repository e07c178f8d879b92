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

from sage_ops.incidents.classification.category_model import (
    CPU_SATURATION,
    DB_UNREACHABLE,
    DEADLOCK,
    DISK_FULL,
    ECS_TASK_FAILURE,
    HTTP_5XX,
    LOCK_TIMEOUT,
    OOM_KILL,
    PG_CONNECTION_EXHAUSTION,
    PRISMA_POOL_TIMEOUT,
    REDIS_UNAVAILABLE,
    STATEMENT_TIMEOUT,
    UNKNOWN,
    Category,
)
from sage_ops.incidents.classification.vocabulary_db import DATABASE
from sage_ops.incidents.classification.vocabulary_infra import INFRASTRUCTURE

# Callers name a category as categories.<NAME>; its rules live in the vocabulary modules.
__all__ = [
    "BY_NAME",
    "CATEGORIES",
    "CPU_SATURATION",
    "DB_UNREACHABLE",
    "DEADLOCK",
    "DISK_FULL",
    "ECS_TASK_FAILURE",
    "HTTP_5XX",
    "LOCK_TIMEOUT",
    "NAMES",
    "OOM_KILL",
    "PG_CONNECTION_EXHAUSTION",
    "PRISMA_POOL_TIMEOUT",
    "REDIS_UNAVAILABLE",
    "STATEMENT_TIMEOUT",
    "UNKNOWN",
    "classify_text",
]

CATEGORIES: tuple[Category, ...] = (*DATABASE, *INFRASTRUCTURE)
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
