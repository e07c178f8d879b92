from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance

from tests.backups.s3 import MotoS3, apply_env, aws_env, moto_server
from tests.incidents.small_pg import SmallServer, small_server


@pytest.fixture(autouse=True)
def _no_incident_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's alarm, notification or LLM settings."""
    for name in (
        "SAGE_OPS_ALARM_SOURCE",
        "SAGE_OPS_ALARM_PREFIX",
        "SAGE_OPS_SNS_TOPIC_ARN",
        "SAGE_OPS_LOG_GROUPS",
        "SAGE_OPS_HEALTH_URL",
        "SAGE_OPS_SERVICE",
        "SAGE_OPS_PG_LOG_FILE",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    with moto_server() as server:
        yield server


@pytest.fixture
def aws(moto: MotoS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 in sage_ops talks to the moto server, as it would to AWS; returns the endpoint."""
    apply_env(aws_env(moto.endpoint), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False))
    return moto.endpoint


@pytest.fixture(scope="session")
def small_pg() -> Iterator[SmallServer]:
    """Shared: each test closes the connections it opens (the log keeps growing)."""
    with small_server() as server:
        yield server


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst
