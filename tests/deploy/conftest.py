"""The deploy suite runs on the platform tests' real Docker Engine, swarm and registry."""

from tests.platforms.conftest import (  # noqa: F401 - pytest fixtures
    auth_registry,
    collect,
    docker_env,
    images,
    lines,
    test_id,
)
