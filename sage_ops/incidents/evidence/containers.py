"""The local service's containers through the Docker CLI: CPU for the probe, logs for evidence.

A swarm service is found by the label Docker puts on its task containers; a plain container by
its name. Docker missing or not running means no sample (missing data) for the probe, and an
EvidenceError for the logs, which the triage reports as a gap instead of failing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime

import pandas as pd

from sage_ops.child_env import DOCKER, child_env
from sage_ops.incidents.errors import EvidenceError
from sage_ops.incidents.evidence.base import LogSource, log_frame
from sage_ops.incidents.evidence.probes import CONTAINER_CPU_PCT, Sample

SERVICE_LABEL = "com.docker.swarm.service.name"
_TIMEOUT_S = 15
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ?(.*)$")


def service_containers(service: str) -> list[str]:
    """Ids of the running containers of a swarm service, else of a container with that name."""
    ids = _docker("ps", "-q", "--filter", f"label={SERVICE_LABEL}={service}").split()
    return ids or _docker("ps", "-q", "--filter", f"name=^{re.escape(service)}$").split()


def probe_container_cpu(service: str) -> list[Sample]:
    """Mean CPU of the service's containers, in percent of one CPU (docker stats' CPUPerc)."""
    try:
        ids = service_containers(service)
        if not ids:
            return []
        out = _docker("stats", "--no-stream", "--format", "{{.CPUPerc}}", *ids)
    except EvidenceError:
        return []
    values = [float(v.rstrip("%")) for v in out.split() if v.rstrip("%").replace(".", "").isdigit()]
    if not values:
        return []
    detail = f"{len(values)} container(s) of {service}"
    return [Sample(CONTAINER_CPU_PCT, datetime.now(UTC), sum(values) / len(values), detail)]


class ContainerLogs(LogSource):
    """stdout and stderr of the service's containers (`docker logs --timestamps`)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.name = f"container logs of {service}"

    def lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        rows: list[tuple[datetime, str, str]] = []
        for cid in service_containers(self.service):
            out = _docker(
                "logs",
                "--timestamps",
                "--since",
                _iso(start),
                "--until",
                _iso(end),
                cid,
                merge_stderr=True,
            )
            rows += _parse(out, f"{self.service}/{cid[:12]}")
        return log_frame(rows)


def _parse(out: str, source: str) -> list[tuple[datetime, str, str]]:
    rows = []
    for line in out.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            stamp = match.group(1)[:26].rstrip("Z") + "+00:00"  # Docker's ns -> Python's us
            rows.append((datetime.fromisoformat(stamp), source, match.group(2)))
    return rows


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _docker(*args: str, merge_stderr: bool = False) -> str:
    exe = shutil.which("docker")
    if not exe:
        raise EvidenceError("docker CLI not found: install Docker to probe the local service")
    try:
        done = subprocess.run(
            [exe, *args],
            env=child_env(DOCKER),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise EvidenceError(f"docker {args[0]} did not answer in {_TIMEOUT_S} s") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout or "").strip().splitlines()
        raise EvidenceError(
            f"docker {args[0]} failed: {why[-1] if why else done.returncode} (is dockerd running?)"
        )
    return done.stdout
