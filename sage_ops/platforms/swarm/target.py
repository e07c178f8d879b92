"""Swarm target URLs: `swarm://svc?replicas=2&monitor=5s&health_interval=1s&health_url=...`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sage_ops.errors import ConfigError

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class SwarmTarget:
    service: str
    replicas: int = 1
    monitor_s: float = 5.0
    health_interval_s: float | None = None
    health_url: str = "http://127.0.0.1:8080/health"


def parse_target(url: str) -> SwarmTarget:
    """`swarm://svc?replicas=2&monitor=5s&health_interval=1s` -> SwarmTarget, or ConfigError."""
    parts = urlsplit(url)
    service = (parts.netloc or parts.path).strip("/")
    if parts.scheme != "swarm" or not SERVICE_NAME.match(service):
        raise ConfigError(f"deploy target {url!r}: expected swarm://<service name>")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"replicas", "monitor", "health_interval", "health_url"}
    if unknown:
        raise ConfigError(f"deploy target {url!r}: unknown option(s) {', '.join(sorted(unknown))}")
    try:
        replicas = int(query.get("replicas", "1"))
    except ValueError as exc:
        raise ConfigError(f"deploy target {url!r}: replicas must be a whole number") from exc
    if replicas < 1:
        raise ConfigError(f"deploy target {url!r}: replicas must be at least 1")
    interval = query.get("health_interval")
    return SwarmTarget(
        service=service,
        replicas=replicas,
        monitor_s=parse_duration(query.get("monitor", "5s"), url),
        health_interval_s=parse_duration(interval, url) if interval else None,
        health_url=query.get("health_url", SwarmTarget.health_url),
    )


def parse_duration(text: str, url: str = "") -> float:
    """Docker-style durations: 500ms, 5s, 2m, or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match:
        raise ConfigError(f"deploy target {url!r}: bad duration {text!r} (use 500ms, 5s or 2m)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
