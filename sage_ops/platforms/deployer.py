"""Deploy targets behind one small interface: roll an image out, check it, run a command once.

A deploy either ends with the new image serving (success) or raises: DeployRolledBack when the
platform rolled back to the previous version (the old one keeps serving), DeployTimeout when the
rollout did not settle in time. "Stable" is never taken for "succeeded". Targets are opened by URL
in sage_ops.platforms.targets.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sage_ops.errors import SageOpsError

Log = Callable[[str], None]


class DeployError(SageOpsError):
    """The deployment could not be started or failed."""


class DeployRolledBack(DeployError):
    """The new version failed its health checks and the platform restored the previous one."""


class DeployTimeout(DeployError):
    """The rollout did not reach a final state within the wall-clock timeout."""


class OneOffFailed(DeployError):
    """A one-off run (e.g. migrations) did not start, or ended with a non-zero exit."""


@dataclass(frozen=True)
class DeployResult:
    target: str  # the target URL
    image: str  # the immutable reference now serving: repo@sha256:...
    revision: str  # ECS task-definition ARN, or swarm service version
    previous_image: str | None
    seconds: float


# What a service event says of a rollout, whatever the platform's own words.
STARTED, FAILED, ROLLED_BACK, SETTLED = "started", "failed", "rolled back", "settled"


@dataclass(frozen=True)
class ServiceEvent:
    """One of the platform's own events about a rollout of the service (for incident triage:
    rollouts sage_ops did not make are suspects too)."""

    at: datetime
    service: str
    meaning: str  # STARTED (tasks started), FAILED, ROLLED_BACK, SETTLED (steady state)
    deployment: str  # the platform's id of the rollout, when the event names one
    platform: str  # the registry's name of the platform that reported it


class OneOffRunner(abc.ABC):
    """Where a command can run once: every deploy target, and docker:// (the local Engine)."""

    url: str
    # Whether `environment` may carry a secret: False where the platform's API shows a run's
    # environment to anyone who can describe it (ECS overrides); the secret then comes from the
    # release itself (ECS: the task definition's `secrets`).
    takes_secrets: bool = True

    def release_of(self, image: str, log: Log) -> str:
        """The `release` that runs `image` (repo@sha256:...) here: the image itself, unless the
        platform runs something else (ECS: a task-definition revision of it)."""
        return image

    @abc.abstractmethod
    def run_once(
        self,
        command: Sequence[str],
        timeout_s: float,
        log: Log,
        *,
        release: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """Run `command` once to its end on this target, every output line to `log`; raise
        OneOffFailed unless it exits 0. `release`: what runs it - an image (Docker) or a task
        definition (ECS); None: what the target serves now. `environment` reaches the command
        through the platform's API, never its argv."""


class Deployer(OneOffRunner):
    """A service that runs images: roll one out, check it, and (inherited) run a command once."""

    @abc.abstractmethod
    def current_image(self) -> str | None:
        """The image the target runs now (None if it does not exist yet)."""

    @abc.abstractmethod
    def deploy(self, image: str, timeout_s: float, log: Log) -> DeployResult:
        """Roll out `image` (repo@sha256:...) and wait for the outcome of THIS rollout."""

    @abc.abstractmethod
    def smoke_check(self, timeout_s: float) -> None:
        """Raise DeployError unless the service's health endpoint answers 200."""

    @abc.abstractmethod
    def health_source(self) -> str:
        """What smoke_check judges by, in words: the doctor's probe of this target."""

    def service_events(self) -> list[ServiceEvent]:
        """The service's recent rollout events as the platform records them; none where the
        platform keeps no such record."""
        return []
