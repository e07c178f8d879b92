"""The local service's containers through the Docker Engine (platforms/docker_engine): CPU for
the probe, logs for evidence.

Docker missing or not running means no sample (missing data) for the probe, and an EvidenceError
for the logs, which the triage reports as a gap instead of failing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd

from sage_ops.errors import SageOpsError
from sage_ops.incidents.errors import EvidenceError
from sage_ops.incidents.evidence.base import LogSource, log_frame
from sage_ops.incidents.evidence.probes import CONTAINER_CPU_PCT, Sample
from sage_ops.platforms.docker_engine.containers import (
    cpu_percent,
    logs_between,
    service_containers,
)

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ?(.*)$")


def probe_container_cpu(service: str) -> list[Sample]:
    """Mean CPU of the service's containers, in percent of one CPU (docker stats' CPUPerc)."""
    try:
        values = [cpu_percent(c) for c in service_containers(service)]
    except SageOpsError:
        return []
    measured = [v for v in values if v is not None]
    if not measured:
        return []
    detail = f"{len(measured)} container(s) of {service}"
    return [Sample(CONTAINER_CPU_PCT, datetime.now(UTC), sum(measured) / len(measured), detail)]


class ContainerLogs(LogSource):
    """stdout and stderr of the service's containers, with the Engine's timestamps."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.name = f"container logs of {service}"

    def lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        rows: list[tuple[datetime, str, str]] = []
        try:
            for container in service_containers(self.service):
                out = logs_between(container, start, end)
                rows += _parse(out, f"{self.service}/{container.id[:12]}")
        except SageOpsError as exc:
            raise EvidenceError(str(exc)) from None
        return log_frame(rows)


def _parse(out: str, source: str) -> list[tuple[datetime, str, str]]:
    rows = []
    for line in out.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            stamp = match.group(1)[:26].rstrip("Z") + "+00:00"  # Docker's ns -> Python's us
            rows.append((datetime.fromisoformat(stamp), source, match.group(2)))
    return rows
