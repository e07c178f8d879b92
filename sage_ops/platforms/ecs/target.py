"""ECS target URLs: `ecs://CLUSTER/SERVICE[?container=NAME&health=https://host/health]`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sage_ops.errors import ConfigError

URL_OPTIONS = ("container", "health")


@dataclass(frozen=True)
class EcsTarget:
    cluster: str
    service: str
    container: str | None  # None: the only container, or the one named like the service
    health_url: str | None


def parse_target(url: str) -> EcsTarget:
    """Validate the whole URL up front so a typo fails at configuration time, not mid-deploy."""
    usage = "use ecs://CLUSTER/SERVICE[?container=NAME&health=https://host/health]"
    parts = urlsplit(url)
    service = parts.path.strip("/")
    if parts.scheme != "ecs" or not parts.netloc or not service or "/" in service:
        raise ConfigError(f"ECS target {url!r}: {usage}")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - set(URL_OPTIONS))
    repeated = sorted(k for k, v in options.items() if len(v) > 1)
    if unknown or repeated:
        raise ConfigError(f"ECS target {url!r}: unknown or repeated options {unknown + repeated}")
    health = options.get("health", [""])[0] or None
    if health:
        check = urlsplit(health)
        if check.scheme not in ("http", "https") or not check.netloc:
            raise ConfigError(f"ECS target {url!r}: health must be an http(s) URL, not {health!r}")
    container = options.get("container", [""])[0] or None
    return EcsTarget(parts.netloc, service, container, health)


def service_url(cluster_service: str) -> str:
    """The target URL of `CLUSTER/SERVICE` (how an operator names one service's events)."""
    url = f"ecs://{cluster_service}"
    parse_target(url)
    return url
