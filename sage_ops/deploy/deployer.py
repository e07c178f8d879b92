"""Deploy targets behind one small interface, picked by URL: ecs://cluster/service, swarm://service.

A deploy either ends with the new image serving (success) or raises: DeployRolledBack when the
platform rolled back to the previous version (the old one keeps serving), DeployTimeout when the
rollout did not settle in time. "Stable" is never taken for "succeeded".
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sage_ops.errors import ConfigError, SageOpsError

Log = Callable[[str], None]


class DeployError(SageOpsError):
    """The deployment could not be started or failed."""


class DeployRolledBack(DeployError):
    """The new version failed its health checks and the platform restored the previous one."""


class DeployTimeout(DeployError):
    """The rollout did not reach a final state within the wall-clock timeout."""


@dataclass(frozen=True)
class DeployResult:
    target: str  # the target URL
    image: str  # the immutable reference now serving: repo@sha256:...
    revision: str  # ECS task-definition ARN, or swarm service version
    previous_image: str | None
    seconds: float


class Deployer(abc.ABC):
    url: str

    @abc.abstractmethod
    def current_image(self) -> str | None:
        """The image the target runs now (None if it does not exist yet)."""

    @abc.abstractmethod
    def deploy(self, image: str, timeout_s: float, log: Log) -> DeployResult:
        """Roll out `image` (repo@sha256:...) and wait for the outcome of THIS rollout."""

    @abc.abstractmethod
    def smoke_check(self, timeout_s: float) -> None:
        """Raise DeployError unless the service's health endpoint answers 200."""


def open_deployer(url: str) -> Deployer:
    parts = urlsplit(url)
    if parts.scheme == "ecs":
        from sage_ops.deploy.ecs import EcsDeployer

        return EcsDeployer(url)
    if parts.scheme == "swarm":
        from sage_ops.deploy.swarm import SwarmDeployer

        return SwarmDeployer(url)
    raise ConfigError(f"deploy target {url!r}: use ecs://cluster/service or swarm://service")
