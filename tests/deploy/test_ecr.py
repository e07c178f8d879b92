"""ECR credentials and repositories against a moto server (auth errors with botocore's Stubber)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sage_ops.deploy.ecr import EcrError, ecr_credentials, ensure_repository, is_ecr_host
from sage_ops.errors import ConfigError
from tests.backups.s3 import REGION, apply_env, aws_env, moto_server

ACCOUNT = "123456789012"  # moto's default account
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as server:
        yield server.endpoint


@pytest.fixture
def ecr(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment pointed at moto; returns an independent ECR client for assertions."""
    apply_env(aws_env(moto_endpoint), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False))
    return boto3.session.Session().client(
        "ecr",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _name() -> str:
    return f"sage/api-{uuid.uuid4().hex[:8]}"


def _describe(ecr: Any, name: str) -> dict[str, Any]:
    return dict(ecr.describe_repositories(repositoryNames=[name])["repositories"][0])


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (HOST, True),
        ("123456789012.dkr.ecr.eu-central-1.amazonaws.com", True),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", True),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", True),
        ("123456789012.dkr-ecr.us-east-1.on.aws", True),
        ("123456789012.DKR.ECR.us-east-1.amazonaws.com", True),
        ("public.ecr.aws", False),
        ("localhost:5000", False),
        ("12345.dkr.ecr.us-east-1.amazonaws.com", False),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", False),
        ("registry.example.com", False),
    ],
)
def test_is_ecr_host(host: str, expected: bool):
    assert is_ecr_host(host) is expected


def test_credentials_decoded_from_the_authorization_token(ecr: Any):
    assert ecr_credentials(HOST) == ("AWS", f"{ACCOUNT}-auth-token")


def test_credentials_for_a_non_ecr_host_are_refused():
    with pytest.raises(ConfigError, match="not an ECR registry host"):
        ecr_credentials("localhost:5000")


def _stubbed_ecr() -> Any:
    return boto3.session.Session().client(
        "ecr", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.mark.parametrize("token", ["bm8tY29sb24taGVyZQ==", "%%%not-base64%%%", ""])
def test_malformed_token_is_refused_without_echoing_it(token: str):
    client = _stubbed_ecr()
    with Stubber(client) as stub:
        stub.add_response(
            "get_authorization_token", {"authorizationData": [{"authorizationToken": token}]}
        )
        with pytest.raises(EcrError, match="not base64 'user:pass'") as failure:
            ecr_credentials(HOST, client=client)
    assert not token or token not in str(failure.value)


def test_refused_authorization_is_an_ecr_error():
    client = _stubbed_ecr()
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_authorization_token", "AccessDeniedException", "not authorized", 400
        )
        with pytest.raises(EcrError, match="AccessDeniedException not authorized"):
            ecr_credentials(HOST, client=client)


def test_missing_repository_is_refused_unless_creation_is_allowed(ecr: Any):
    name = _name()
    with pytest.raises(EcrError, match=f"'{name}' does not exist in {HOST}"):
        ensure_repository(name, create=False, registry_host=HOST)
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert name not in names


def test_missing_repository_created_with_immutable_tags_and_scan_on_push(ecr: Any):
    name = _name()
    uri = ensure_repository(name, create=True, registry_host=HOST)
    repo = _describe(ecr, name)
    assert uri == repo["repositoryUri"] == f"{HOST}/{name}"
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    # Idempotent, and an existing repository is found without create.
    assert ensure_repository(name, create=True, registry_host=HOST) == uri
    assert ensure_repository(name, create=False) == uri


def test_mutable_tags_kept_re_pushable_by_exclusion(ecr: Any):
    name = _name()
    ensure_repository(name, create=True, registry_host=HOST, mutable_tags=("latest",))
    repo = _describe(ecr, name)
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageTagMutabilityExclusionFilters"] == [
        {"filterType": "WILDCARD", "filter": "latest"}
    ]


def test_existing_repository_is_left_as_it_is(ecr: Any):
    name = _name()
    ecr.create_repository(repositoryName=name, imageTagMutability="MUTABLE")
    assert ensure_repository(name, create=True, registry_host=HOST) == f"{HOST}/{name}"
    assert _describe(ecr, name)["imageTagMutability"] == "MUTABLE"


def test_token_decoding_round_trip():
    token = base64.b64encode(b"AWS:pass:with:colons").decode()
    client = _stubbed_ecr()
    with Stubber(client) as stub:
        stub.add_response(
            "get_authorization_token", {"authorizationData": [{"authorizationToken": token}]}
        )
        assert ecr_credentials(HOST, client=client) == ("AWS", "pass:with:colons")
