"""The platform registry: every URL scheme sage_ops runs things on, and what opens it. A new
deploy target is its own package under platforms/ and one entry in PLATFORMS; nothing outside
platforms/ names a scheme (tests/platforms/test_platform_registry.py holds that).

Each platform is imported on first use, so a deploy to swarm never loads boto3 and an ECS one
never needs a Docker Engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sage_ops.errors import ConfigError
from sage_ops.platforms.deployer import Deployer, OneOffRunner


@dataclass(frozen=True)
class Platform:
    scheme: str
    url_form: str  # what an operator writes, for errors and docs
    open: Callable[[str], OneOffRunner]
    deploys: bool  # a deploy target (a Deployer); False: one-off runs only


def _ecs(url: str) -> OneOffRunner:
    from sage_ops.platforms.ecs.deployer import EcsDeployer

    return EcsDeployer(url)


def _swarm(url: str) -> OneOffRunner:
    from sage_ops.platforms.swarm.deployer import SwarmDeployer

    return SwarmDeployer(url)


def _docker(url: str) -> OneOffRunner:
    from sage_ops.platforms.docker_engine.engine import DockerEngine

    return DockerEngine()


PLATFORMS = {
    p.scheme: p
    for p in (
        Platform("ecs", "ecs://CLUSTER/SERVICE[?container=NAME&health=URL]", _ecs, True),
        Platform(
            "swarm", "swarm://SERVICE[?replicas=N&monitor=5s&health_interval=1s]", _swarm, True
        ),
        Platform("docker", "docker://", _docker, False),
    )
}
LOCAL_ONE_OFF = "docker://"  # one-off runs on this machine's Docker Engine
LOCAL_TARGET = "swarm"  # the deploy target of a machine without a cloud: a swarm of one node


def local_service(service: str, **options: str) -> str:
    """The URL of `service` on the local deploy target (`options`: its URL options)."""
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{LOCAL_TARGET}://{service}" + (f"?{query}" if query else "")


def _usage(deploys: bool) -> str:
    forms = [p.url_form for p in PLATFORMS.values() if p.deploys or not deploys]
    return "use " + " or ".join(forms)


def open_deployer(url: str) -> Deployer:
    platform = PLATFORMS.get(urlsplit(url).scheme)
    if platform is None or not platform.deploys:
        raise ConfigError(f"deploy target {url!r}: {_usage(True)}")
    deployer = platform.open(url)
    assert isinstance(deployer, Deployer)  # every platform that deploys opens a Deployer
    return deployer


def open_one_off(url: str) -> OneOffRunner:
    """Where a command runs once: any deploy target, or the local Engine (LOCAL_ONE_OFF)."""
    platform = PLATFORMS.get(urlsplit(url).scheme)
    if platform is None:
        raise ConfigError(f"one-off runner {url!r}: {_usage(False)}")
    return platform.open(url)
