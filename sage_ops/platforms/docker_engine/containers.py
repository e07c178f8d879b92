"""A service's containers on the local Docker Engine: which run it, their CPU, their logs.

A swarm service is found by the label Docker puts on its task containers; a plain container by
its name. Every failure of the Engine is a DockerUnavailable or a ContainerError, so a caller
tells "no Docker" from "no such service" without knowing the SDK's errors.
"""

from __future__ import annotations

import re
from datetime import datetime

import docker
import docker.errors
from docker.models.containers import Container

from sage_ops.errors import SageOpsError
from sage_ops.platforms.docker_engine.engine import docker_client

SERVICE_LABEL = "com.docker.swarm.service.name"


class ContainerError(SageOpsError):
    """A call about a container failed (it vanished, the Engine refused)."""


def service_containers(service: str, client: docker.DockerClient | None = None) -> list[Container]:
    """The running containers of a swarm service, else the container with that name."""
    engine = client or docker_client()
    # sparse: no inspect per container, which fails when a task container exits meanwhile
    by_label = {"label": f"{SERVICE_LABEL}={service}"}
    by_name = {"name": f"^{re.escape(service)}$"}
    try:
        found = engine.containers.list(sparse=True, filters=by_label)
        return found or engine.containers.list(sparse=True, filters=by_name)
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot list the containers of {service}: {exc}") from None


def cpu_percent(container: Container) -> float | None:
    """CPU in percent of one CPU over the Engine's last sampling interval, as `docker stats`
    computes it; None before the Engine has two samples."""
    try:
        stats = container.stats(stream=False)
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot read the stats of {container.short_id}: {exc}") from None
    now, before = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = now.get("cpu_usage", {}).get("total_usage", 0)
    used -= before.get("cpu_usage", {}).get("total_usage", 0)
    system = now.get("system_cpu_usage", 0) - before.get("system_cpu_usage", 0)
    if system <= 0 or used < 0:
        return None
    cpus = now.get("online_cpus") or len(now.get("cpu_usage", {}).get("percpu_usage") or ()) or 1
    return float(used / system * cpus * 100)


def logs_between(container: Container, start: datetime, end: datetime) -> str:
    """stdout and stderr of the container between `start` and `end`, each line prefixed with
    its RFC 3339 timestamp (nanoseconds, UTC)."""
    try:
        raw = container.logs(
            stdout=True,
            stderr=True,
            timestamps=True,
            since=start.timestamp(),  # floats: the Engine keeps the fraction, datetimes lose it
            until=end.timestamp(),
        )
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot read the logs of {container.short_id}: {exc}") from None
    return bytes(raw).decode(errors="replace")
