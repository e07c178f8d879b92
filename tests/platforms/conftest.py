"""The deploy suite's real Docker Engine and registry fixtures, shared with the platform tests."""

from tests.deploy.conftest import docker_env, test_id  # noqa: F401 - pytest fixtures
