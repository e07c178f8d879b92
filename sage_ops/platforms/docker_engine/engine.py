"""The local Docker Engine: one client factory, and one-off containers (`docker://` targets).

A one-off container gets its environment over the Docker API, never in argv, and reaches the
host's network (a database on the host is reached as from the host).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import docker
import docker.errors

from sage_ops.child_env import DOCKER, blanked
from sage_ops.errors import SageOpsError
from sage_ops.platforms.deployer import Log, OneOffFailed, OneOffRunner


class DockerUnavailable(SageOpsError):
    """The Docker Engine could not be reached at all."""


def docker_client() -> docker.DockerClient:
    """One place that turns "no Docker" into an operator-readable error instead of a trace."""
    try:
        client = docker.from_env()
        # Credential helpers (docker-credential-*) run with a copy of our environment plus these
        # overrides; from_env cannot take them, so they are set on its API client.
        client.api.credstore_env = blanked(DOCKER)
        client.api._auth_configs = docker.auth.load_config(credstore_env=client.api.credstore_env)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(
            f"Docker Engine unreachable ({exc}); start it (`bash infra/local/services.sh` "
            "locally) or set DOCKER_HOST"
        ) from exc
    return client


def run_container(
    image: str,
    command: Sequence[str],
    timeout_s: float,
    log: Log,
    environment: Mapping[str, str] | None = None,
    client: docker.DockerClient | None = None,
) -> None:
    """Run `command` in `image` to its end, relaying its output; OneOffFailed unless it exits 0
    within the timeout. The container is removed either way."""
    engine = client or docker_client()
    where = f"{' '.join(command)} in {image}"
    container = engine.containers.run(
        image,
        list(command),
        environment=dict(environment or {}),
        network_mode="host",
        detach=True,
    )
    try:
        try:
            status = container.wait(timeout=timeout_s)
        except Exception as exc:  # requests' ReadTimeout: the container is still running
            raise OneOffFailed(f"{where} did not finish within {timeout_s:.0f} s") from exc
        for line in container.logs().decode(errors="replace").splitlines():
            log(line)
        code = int(status.get("StatusCode", -1))
        if code != 0:
            raise OneOffFailed(f"{where} exited {code}")
    finally:
        container.remove(force=True)


class DockerEngine(OneOffRunner):
    """One-off runs on the local Engine (`docker://`): the image is the release to run."""

    url = "docker://"

    def run_once(
        self,
        command: Sequence[str],
        timeout_s: float,
        log: Log,
        *,
        release: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        if not release:
            raise OneOffFailed(f"{' '.join(command)}: a docker:// one-off run needs an image")
        run_container(release, command, timeout_s, log, environment)
