"""staging/production_deployment's swarm target, for real: rollouts, rollbacks, timeouts, smoke.

Every test gets its own service (removed afterwards). Health checks run every second
(`health_interval=1s`) and a new task must stay up 2 s (`monitor=2s`) so the suite stays quick;
the rollout logic is the same as with production intervals.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from sage_ops.errors import ConfigError
from sage_ops.platforms.deployer import DeployError, DeployRolledBack, DeployTimeout
from sage_ops.platforms.registries.push import PushedImage
from sage_ops.platforms.swarm.deployer import SwarmDeployer, parse_target
from sage_ops.platforms.targets import open_deployer
from tests.platforms.conftest import Images

FAST = "health_interval=1s&monitor=2s"
TIMEOUT_S = 90


@dataclass(frozen=True)
class Releases:
    v1: PushedImage
    v2: PushedImage
    unhealthy: PushedImage
    crash: PushedImage


@pytest.fixture(scope="module")
def releases(images: Images) -> Releases:
    """Four pushed builds of the sample backend: two good ones and two bad ones."""
    return Releases(
        v1=images.build_and_push("healthy", "v1"),
        v2=images.build_and_push("healthy", "v2"),
        unhealthy=images.build_and_push("unhealthy", "v3-unhealthy"),
        crash=images.build_and_push("crash", "v4-crash"),
    )


@pytest.fixture
def deployer(docker_env: docker.DockerClient, test_id: str) -> Iterator[SwarmDeployer]:
    name = f"sageops-test-{test_id}-{uuid.uuid4().hex[:6]}"
    target = open_deployer(f"swarm://{name}?{FAST}")
    assert isinstance(target, SwarmDeployer)
    yield target
    target.remove()
    _wait_for_containers_gone(docker_env, name)


def _wait_for_containers_gone(client: docker.DockerClient, name: str) -> None:
    """So that image cleanup at the end of the session finds nothing still using the images."""
    label = f"com.docker.swarm.service.name={name}"
    for _ in range(40):
        if not client.containers.list(all=True, filters={"label": label}):
            return
        time.sleep(0.25)


def _versions(target: SwarmDeployer) -> list[str]:
    return sorted(probe.detail for probe in target.probe_health() if probe.ok)


def test_first_deploy_creates_then_update_rolls_out_the_new_digest(
    deployer: SwarmDeployer, releases: Releases, lines: list[str], collect
) -> None:
    assert deployer.current_image() is None

    first = deployer.deploy(releases.v1.reference, TIMEOUT_S, collect)

    assert first.previous_image is None
    assert first.image == deployer.current_image() == releases.v1.reference
    deployer.smoke_check(10)
    assert _versions(deployer) == ["ok version=v1"]

    second = deployer.deploy(releases.v2.reference, TIMEOUT_S, collect)

    assert second.previous_image == releases.v1.reference
    assert deployer.current_image() == releases.v2.reference
    assert deployer.serving_images() == [releases.v2.reference]
    assert int(second.revision) > int(first.revision)
    deployer.smoke_check(10)
    assert _versions(deployer) == ["ok version=v2"]
    assert any("update completed" in line for line in lines)
    assert any("running (desired running)" in line for line in lines), "task states are logged"

    again = deployer.deploy(releases.v2.reference, TIMEOUT_S, collect)
    assert again.revision == second.revision, "redeploying the serving digest changes nothing"


@pytest.mark.parametrize(
    ("release", "reason"),
    [
        ("unhealthy", "unhealthy: wget: can't connect to remote host"),
        ("crash", "non-zero exit (3)"),
    ],
)
def test_failing_new_version_is_rolled_back_and_the_old_one_keeps_serving(
    deployer: SwarmDeployer, releases: Releases, release: str, reason: str, collect
) -> None:
    deployer.deploy(releases.v1.reference, TIMEOUT_S, collect)
    bad: PushedImage = getattr(releases, release)

    with pytest.raises(DeployRolledBack) as caught:
        deployer.deploy(bad.reference, TIMEOUT_S, collect)

    message = str(caught.value)
    assert reason in message
    assert f"previous image {releases.v1.digest[:19]} keeps serving (1 task(s)" in message
    assert deployer.current_image() == releases.v1.reference
    assert deployer.serving_images() == [releases.v1.reference]
    deployer.smoke_check(10)
    assert _versions(deployer) == ["ok version=v1"]


def test_rollout_that_outlasts_its_deadline_raises_timeout(
    deployer: SwarmDeployer, releases: Releases, collect
) -> None:
    deployer.deploy(releases.v1.reference, TIMEOUT_S, collect)

    with pytest.raises(DeployTimeout, match="at the deadline"):
        deployer.deploy(releases.v2.reference, 0.2, collect)


def test_new_service_that_never_gets_healthy_is_removed(
    deployer: SwarmDeployer, releases: Releases, collect
) -> None:
    with pytest.raises(DeployError, match="never became healthy") as caught:
        deployer.deploy(releases.crash.reference, TIMEOUT_S, collect)

    assert not isinstance(caught.value, DeployRolledBack)
    assert deployer.current_image() is None


def test_smoke_check_fails_when_health_endpoint_does_not_answer(
    docker_env: docker.DockerClient, releases: Releases, test_id: str, collect
) -> None:
    """Same service, but the smoke check asks a path the backend does not serve (404)."""
    name = f"sageops-test-{test_id}-smoke"
    target = SwarmDeployer(f"swarm://{name}?{FAST}&health_url=http://127.0.0.1:8080/missing")
    try:
        target.deploy(releases.v1.reference, TIMEOUT_S, collect)
        with pytest.raises(DeployError, match="404 Not Found"):
            target.smoke_check(1.5)
    finally:
        target.remove()
        _wait_for_containers_gone(docker_env, name)


def test_mutable_tags_are_refused() -> None:
    with pytest.raises(DeployError, match="immutable"):
        SwarmDeployer("swarm://svc").deploy("127.0.0.1:5000/sage/backend:latest", 5, print)


def test_target_options() -> None:
    target = parse_target("swarm://api?replicas=3&monitor=500ms&health_interval=2s")
    assert (target.service, target.replicas, target.monitor_s) == ("api", 3, 0.5)
    assert target.health_interval_s == 2.0
    assert parse_target("swarm://api").health_url == "http://127.0.0.1:8080/health"
    for bad in (
        "swarm://",
        "swarm://api?replicas=0",
        "swarm://api?color=red",
        "swarm://a?monitor=x",
    ):
        with pytest.raises(ConfigError):
            parse_target(bad)
