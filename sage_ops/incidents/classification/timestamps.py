"""When a log line was written, from the formats the classifier reads: ISO 8601 (PostgreSQL's
prefixes, csvlog, jsonlog, ALB, docker, pino's ISO time), epoch milliseconds in JSON (pino),
Nest's `12/01/2026, 3:00:00 AM`, the common log format's `[25/Nov/2026:10:00:01 +0000]` and
syslog's `Nov 25 10:00:01` (no year: the caller's). Times without a zone are taken as UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_ISO = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d{1,9}))?\s?(Z|[+-]\d\d:?\d\d|UTC|GMT)?"
)
_EPOCH_MS = re.compile(r"\"(?:time|timestamp)\":(\d{13})\b")
_NEST = re.compile(r"(\d\d)/(\d\d)/(\d{4}), (\d{1,2}):(\d\d):(\d\d) ([AP]M)")
_COMMON = re.compile(r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")
_SYSLOG = re.compile(r"^(\w{3}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d) ")


def find_time(text: str, year: int) -> datetime | None:
    """The first time the line states, in UTC, or None."""
    head = text[:400]  # times lead their lines; a statement's literals further on do not count
    if m := _ISO.search(head):
        fraction = (m.group(3) or "0")[:6].ljust(6, "0")
        zone = m.group(4) or "Z"
        zone = "+00:00" if zone in ("Z", "UTC", "GMT") else zone
        return datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{fraction}{zone}").astimezone(UTC)
    if m := _EPOCH_MS.search(head):
        return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
    if m := _NEST.search(head):
        month, day, yr, hour, minute, second, half = m.groups()
        hour24 = int(hour) % 12 + (12 if half == "PM" else 0)
        return datetime(int(yr), int(month), int(day), hour24, int(minute), int(second), tzinfo=UTC)
    if m := _COMMON.search(head):
        return datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
    if m := _SYSLOG.match(head):
        try:
            stamp = datetime.strptime(
                f"{year} {m.group(1)} {m.group(2)} {m.group(3)}", "%Y %b %d %H:%M:%S"
            )
        except ValueError:
            return None
        return stamp.replace(tzinfo=UTC)
    return None
