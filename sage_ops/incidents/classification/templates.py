"""Log lines grouped into templates: what keeps going wrong, how often, since when.

Variable parts (timestamps, UUIDs, hex ids, IP addresses, quoted values, numbers) are masked so
that "connection 1234 refused" and "connection 98 refused" count as one problem. The templates
are ranked by count and dated relative to the alarm: a template that starts just before the
alarm is a suspect, one that was there all along is background noise.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from sage_ops.incidents.classification.categories import UNKNOWN, classify_text

if TYPE_CHECKING:  # template_of serves a log's triage without pandas
    import pandas as pd

# Applied in this order: the longer, more specific shapes first.
MASKS: list[tuple[str, str]] = [
    (
        r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d| ?[A-Z]{3,4}\b)?",
        "<time>",
    ),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "<uuid>"),
    (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "<ip>"),
    (r"\b(?:0x[0-9a-fA-F]+|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,})\b", "<hex>"),
    (r"\"[^\"]{0,200}\"|'[^']{0,200}'", "<str>"),
    (r"(?<![A-Za-z0-9_])[-+]?\d+(?:\.\d+)?", "<num>"),
]
_MASKS = [(re.compile(p), r) for p, r in MASKS]

ERROR_LINE = re.compile(
    r"\b(?:ERROR|FATAL|PANIC|CRITICAL|error|fatal|\w*Error|\w*Exception|exception|failed|Failed|"
    r"refused|Killed|killed|OOM\w*|out of memory|timed out|Timed out|timeout|"
    r"too many|P\d{4}|oom-kill\w*|exit(?:ed)?(?: with)? code:? 137)\b"
    r"|(?:HTTP/\d(?:\.\d)?\"?|status(?:Code)?\"?\s*[=:]|code\"?\s*[=:])\s*\"?5\d\d\b"
    r"|\" 5\d\d \d"
)


def template_of(message: str) -> str:
    for pattern, replacement in _MASKS:
        message = pattern.sub(replacement, message)
    return " ".join(message.split())


def is_error(messages: pd.Series) -> pd.Series:
    """Which lines report a failure: a coarse, deliberately inclusive net, plus every line the
    classifier puts in a category (an ALB 504 or a kernel oom_reaper line says no "error")."""
    flagged = messages.str.contains(ERROR_LINE, regex=True)
    return flagged | messages.map(classify_text).ne(UNKNOWN)


def summarize(lines: pd.DataFrame, alarm_at: datetime) -> pd.DataFrame:
    """One row per template of the error lines, most frequent first.

    Columns: template, count, first_seen, last_seen, starts_vs_alarm_s (negative: before the
    alarm fired), sources, example (the first raw line).
    """
    columns = [
        "template",
        "count",
        "first_seen",
        "last_seen",
        "starts_vs_alarm_s",
        "sources",
        "example",
    ]
    import pandas as pd

    errors = lines[is_error(lines["message"])] if not lines.empty else lines
    if errors.empty:
        return pd.DataFrame(columns=columns)
    errors = errors.assign(template=errors["message"].map(template_of))
    grouped = errors.groupby("template", sort=False).agg(
        count=("message", "size"),
        first_seen=("timestamp", "min"),
        last_seen=("timestamp", "max"),
        sources=("source", lambda s: ", ".join(sorted(set(s)))),
        example=("message", "first"),
    )
    grouped["starts_vs_alarm_s"] = (
        (grouped["first_seen"] - pd.Timestamp(alarm_at)).dt.total_seconds().round(1)
    )
    ranked = grouped.reset_index().sort_values(
        ["count", "first_seen"], ascending=[False, True], kind="stable"
    )
    return ranked[columns].reset_index(drop=True)
