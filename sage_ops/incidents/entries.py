"""Physical log lines grouped into entries before classifying, one entry at a time.

A stack trace, PostgreSQL's DETAIL/HINT/CONTEXT/STATEMENT lines, a pretty-printed error object
and a csvlog record with a newline inside a quoted field all belong to the line that started
them: the cause is often stated on the first line and the code on a later one. An entry keeps
the number of its first physical line and how many lines it spans, so every input line can be
reported with its entry's category. Entries are capped (MAX_LINES, MAX_CHARS) so a log without
line starts cannot grow one entry without bound: memory stays flat whatever the input size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_LINES = 200
MAX_CHARS = 64 * 1024

# PostgreSQL's secondary fields, at the start of a line or after a log_line_prefix that starts
# with a time (stderr, RDS) or syslog's header; "... deadlock detected DETAIL:  ..." inside a
# driver's one-line message is not one.
_PG_SECONDARY = re.compile(
    r"^(?:\d{4}-\d\d-\d\d[ T]\S+ .{0,200}?|\w{3} +\d+ [\d:]+ .{0,200}?)?"
    r"\b(?:DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  "
)
_CLOSING = re.compile(r"^[}\])]+[,;]?\s*$")
_CSVLOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Za-z0-9+-]+,")


@dataclass(frozen=True)
class Entry:
    line: int  # 1-based number of its first physical line
    lines: int  # physical lines it spans
    text: str  # the lines joined with "\n"


def group(lines: Iterable[str]) -> Iterator[Entry]:
    """Entries from physical lines (without their line ends), in order."""
    parts: list[str] = []
    start, size, open_quote = 1, 0, False
    for number, line in enumerate(lines, 1):
        joins = parts and (open_quote or _continues(line))
        if not joins or len(parts) >= MAX_LINES or size + len(line) > MAX_CHARS:
            if parts:
                yield Entry(start, len(parts), "\n".join(parts))
            parts, start, size, open_quote = [], number, 0, bool(_CSVLOG.match(line))
            open_quote = open_quote and line.count('"') % 2 == 1
        elif open_quote:
            open_quote = line.count('"') % 2 == 0
        parts.append(line)
        size += len(line)
    if parts:
        yield Entry(start, len(parts), "\n".join(parts))


def _continues(line: str) -> bool:
    if line[:1] in (" ", "\t"):
        return bool(line.strip())
    return bool(_PG_SECONDARY.match(line) or _CLOSING.match(line))
