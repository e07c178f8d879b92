"""Local probes: what CloudWatch would measure, measured here by asking the systems directly.

Each probe returns samples (metric name, time, value) for the probe history; a probe that cannot
measure returns no sample, which alarm evaluation treats as missing data - except a PostgreSQL
server that refuses the probe with 53300, which is itself a full reading.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sage_ops import postgres
from sage_ops.errors import DatabaseError
from sage_ops.postgres import PgTarget

PG_CONNECTIONS_PCT = "pg_connections_pct"
PG_CONNECTIONS = "pg_connections"
PG_MAX_CONNECTIONS = "pg_max_connections"
PG_RESERVED = "pg_reserved_connections"
HTTP_ERROR_PCT = "http_error_pct"
HTTP_LATENCY_S = "http_latency_s"
CONTAINER_CPU_PCT = "container_cpu_pct"

# The server's own words for "no connection slot left" (SQLSTATE 53300), as libpq reports them.
REFUSED_FOR_SLOTS = re.compile(
    r"sorry, too many clients already|remaining connection slots are reserved"
    r"|too many connections for (role|database)"
)

_SLOTS_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()),
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int
         + coalesce(current_setting('reserved_connections', true), '0')::int
FROM pg_stat_activity
"""


@dataclass(frozen=True)
class Sample:
    metric: str
    at: datetime
    value: float
    detail: str = ""


@dataclass(frozen=True)
class PgSlots:
    """Client connections against the slots an ordinary role may use."""

    used: int
    max_connections: int
    reserved: int

    @property
    def available(self) -> int:
        return max(self.max_connections - self.reserved, 1)

    @property
    def used_pct(self) -> float:
        return round(100.0 * self.used / self.available, 2)


def probe_pg_connections(target: PgTarget, timeout_s: int = 3) -> list[Sample]:
    """Share of usable connection slots taken (the probe's own connection not counted)."""
    now = datetime.now(UTC)
    quick = replace(target, params=(*target.params, ("connect_timeout", str(timeout_s))))
    try:
        slots = pg_slots(quick)
    except DatabaseError as exc:
        if REFUSED_FOR_SLOTS.search(str(exc)):
            return [Sample(PG_CONNECTIONS_PCT, now, 100.0, f"probe refused: {exc}")]
        return []  # down or unreachable: missing data, not saturation
    detail = (
        f"{slots.used} of {slots.available} usable slots (max_connections {slots.max_connections})"
    )
    return [
        Sample(PG_CONNECTIONS_PCT, now, slots.used_pct, detail),
        Sample(PG_CONNECTIONS, now, float(slots.used), detail),
        Sample(PG_MAX_CONNECTIONS, now, float(slots.max_connections)),
        Sample(PG_RESERVED, now, float(slots.reserved)),
    ]


def pg_slots(target: PgTarget) -> PgSlots:
    with postgres.connect(target) as conn:
        row = conn.execute(_SLOTS_SQL).fetchone()
    assert row is not None
    return PgSlots(used=int(row[0]), max_connections=int(row[1]), reserved=int(row[2]))


def probe_http(url: str, requests: int = 5, timeout_s: float = 2.0) -> list[Sample]:
    """`requests` concurrent GETs of the health endpoint: a latency and an error (0 or 100)
    sample each. Concurrent, so a slow service costs the sensor tick one timeout, not five.

    An error is a 5xx, a refused connection or a timeout (counted at the timeout); 4xx means the
    service answered, as a load balancer's 5XX count would see it.
    """
    with ThreadPoolExecutor(max_workers=requests) as pool:
        results = list(pool.map(lambda _: _timed_get(url, timeout_s), range(requests)))
    samples: list[Sample] = []
    for at, latency, failed, detail in results:
        samples.append(Sample(HTTP_LATENCY_S, at, round(latency, 4), detail))
        samples.append(Sample(HTTP_ERROR_PCT, at, 100.0 if failed else 0.0, detail))
    return samples


def _timed_get(url: str, timeout_s: float) -> tuple[datetime, float, bool, str]:
    started = time.perf_counter()
    failed, detail = _get(url, timeout_s)
    return datetime.now(UTC), min(time.perf_counter() - started, timeout_s), failed, detail


def _get(url: str, timeout_s: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            response.read()
            return False, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.code >= 500, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return True, f"no answer: {reason}"
