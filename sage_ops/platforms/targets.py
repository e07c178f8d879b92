"""Deploy targets and one-off runners opened by URL: a new platform is one module and one line.

ecs://cluster/service (sage_ops.platforms.ecs), swarm://service (sage_ops.platforms.swarm),
docker:// (one-off runs on the local Engine, sage_ops.platforms.docker_engine).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sage_ops.errors import ConfigError
from sage_ops.platforms.deployer import Deployer, OneOffRunner

USAGE = "use ecs://cluster/service or swarm://service"


def open_deployer(url: str) -> Deployer:
    scheme = urlsplit(url).scheme
    if scheme == "ecs":
        from sage_ops.platforms.ecs import EcsDeployer

        return EcsDeployer(url)
    if scheme == "swarm":
        from sage_ops.platforms.swarm import SwarmDeployer

        return SwarmDeployer(url)
    raise ConfigError(f"deploy target {url!r}: {USAGE}")


def open_one_off(url: str) -> OneOffRunner:
    """Where a command runs once: any deploy target, or docker:// for the local Engine."""
    if urlsplit(url).scheme == "docker":
        from sage_ops.platforms.docker_engine import DockerEngine

        return DockerEngine()
    return open_deployer(url)
