"""Physical log lines grouped into entries before classifying, one entry at a time.

A stack trace, PostgreSQL's DETAIL/HINT/CONTEXT/STATEMENT lines, a pretty-printed error object
and a csvlog record with a newline inside a quoted field all belong to the line that started
them: the cause is often stated on the first line and the code on a later one. An entry keeps
the number of its first physical line and how many lines it spans, so every input line can be
reported with its entry's category.

Joining fails safe, because real logs hold malformed records (a csvlog line truncated by a
terminal, a file cut by rotation or a shipper's line limit, a binary blob):

- a line that starts a record in any known format (a leading timestamp, syslog's header, Nest's
  `[Nest]`, a JSON object, an access log, the kernel's `[  12.345]`) always starts a new entry;
- an open csvlog quote joins at most MAX_QUOTED_LINES lines (a real multi-line field is a
  statement or a detail, rarely longer), and a line with NUL or undecodable bytes joins nothing;
- every entry is capped (MAX_LINES, MAX_CHARS), so memory stays flat whatever the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

MAX_LINES = 200
MAX_CHARS = 64 * 1024
MAX_QUOTED_LINES = 20

# PostgreSQL's secondary fields, at the start of a line or after a log_line_prefix that starts
# with a time (stderr, RDS) or syslog's header; "... deadlock detected DETAIL:  ..." inside a
# driver's one-line message is not one.
_PG_SECONDARY = re.compile(
    r"^(?:\d{4}-\d\d-\d\d[ T]\S+ .{0,200}?|\w{3} +\d+ [\d:]+ .{0,200}?)?"
    r"\b(?:DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  "
)
_CLOSING = re.compile(r"^[}\])]+[,;]?\s*$")
_CSVLOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Za-z0-9+-]+,")
# The first characters of a record in the formats triage reads: ISO dates (PostgreSQL, RDS,
# csvlog, docker, classic ELB, CloudWatch), syslog, Nest, JSON loggers, ALB and common-log access
# lines, dmesg. Its secondary lines (DETAIL ...) also start with a date, so they are tested first.
_RECORD_START = re.compile(
    r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d "
    r"|\[Nest\] "
    r"|\{\""
    r"|(?:https?|h2|grpcs|wss?) \d{4}-"
    r"|\S+ \S+ \S+ \[\d\d/\w{3}/\d{4}:"
    r"|\[ *\d+\.\d+\] "
)


class Entry(NamedTuple):  # a tuple: millions are made, one per record
    line: int  # 1-based number of its first physical line
    lines: int  # physical lines it spans
    text: str  # the lines joined with "\n"


def group(lines: Iterable[str]) -> Iterator[Entry]:
    """Entries from physical lines (without their line ends), in order."""
    parts: list[str] = []
    start, size, quoted = 1, 0, 0  # quoted: lines joined since a csvlog quote opened (0: none)
    for number, line in enumerate(lines, 1):
        if (
            parts
            and _joins(line, quoted)
            and len(parts) < MAX_LINES
            and size + len(line) <= MAX_CHARS
        ):
            if quoted:
                quoted = quoted + 1 if line.count('"') % 2 == 0 else 0
        else:
            if parts:
                yield Entry(start, len(parts), "\n".join(parts))
            parts, start, size = [], number, 0
            quoted = 1 if _CSVLOG.match(line) and line.count('"') % 2 == 1 else 0
        parts.append(line)
        size += len(line)
    if parts:
        yield Entry(start, len(parts), "\n".join(parts))


def _joins(line: str, quoted: int) -> bool:
    if _RECORD_START.match(line):  # a new record, unless PostgreSQL's prefixed DETAIL & co
        return not quoted and _secondary(line)
    if "\x00" in line or "\ufffd" in line:
        return False
    if quoted:
        return quoted < MAX_QUOTED_LINES and not _secondary(line)
    if line[:1] in (" ", "\t"):
        return bool(line.strip())
    return _secondary(line) or bool(_CLOSING.match(line))


def _secondary(line: str) -> bool:
    # Substring tests first: _PG_SECONDARY's lazy prefix is costly, and most lines have none.
    fields = (
        "DETAIL:  " in line
        or "HINT:  " in line
        or "CONTEXT:  " in line
        or "STATEMENT:  " in line
        or "QUERY:  " in line
        or "LOCATION:  " in line
    )
    return fields and bool(_PG_SECONDARY.match(line))
