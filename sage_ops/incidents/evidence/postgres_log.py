"""The PostgreSQL server's own log file as evidence (stderr logging, default `%m [%p] ` prefix).

53300 is decided by the server, so its log is the first-hand record of every refused connection.
Continuation lines (DETAIL, HINT, STATEMENT come with their own prefix; wrapped text without
one) are joined to the line they belong to. Large files are read from the end.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from sage_ops.incidents.errors import EvidenceError
from sage_ops.incidents.evidence.base import LogSource, log_frame

MAX_READ_BYTES = 64 * 1024 * 1024
_PREFIX = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ?([A-Za-z]+|[+-]\d\d(?::?\d\d)?)?[ :]"
)
_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)?$")


class PostgresLogFile(LogSource):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"PostgreSQL log {self.path}"

    def lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        rows = [(at, self.name, text) for at, text in parse(self._tail()) if start <= at <= end]
        return log_frame(rows)

    def _tail(self) -> str:
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                f.seek(max(size - MAX_READ_BYTES, 0), os.SEEK_SET)
                return f.read().decode("utf-8", errors="replace")
        except OSError as exc:
            raise EvidenceError(
                f"cannot read the PostgreSQL log {self.path}: {exc.strerror} "
                "(check SAGE_OPS_PG_LOG_FILE and that logging_collector/stderr goes there)"
            ) from None


def parse(text: str) -> list[tuple[datetime, str]]:
    """(time, line) per log entry; lines without a timestamp prefix continue the previous one."""
    entries: list[tuple[datetime, str]] = []
    for line in text.splitlines():
        match = _PREFIX.match(line)
        if match:
            entries.append((_timestamp(match.group(1), match.group(2)), line))
        elif entries and line.strip():
            at, previous = entries[-1]
            entries[-1] = (at, f"{previous} {line.strip()}")
    return entries


def _timestamp(stamp: str, zone: str | None) -> datetime:
    naive = datetime.fromisoformat(stamp)
    offset = _OFFSET.match(zone or "")
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
        return naive.replace(tzinfo=timezone(sign * delta)).astimezone(UTC)
    # UTC/GMT, or an abbreviation Python cannot resolve: set log_timezone = 'UTC' on the server.
    return naive.replace(tzinfo=UTC)
