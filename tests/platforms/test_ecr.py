"""ECR credentials and repositories against a moto server (auth errors with botocore's Stubber)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from sage_ops.errors import ConfigError
from sage_ops.platforms.registries.ecr import (
    EcrError,
    ecr_credentials,
    ensure_repository,
    image_digest,
    is_ecr_host,
)
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


# --- deploys in a row: `latest` moves, SHA tags never do --------------------------------------


def _manifest(commit: str) -> str:
    """A distinct image manifest per commit (what `docker push` PUTs to the registry)."""
    config = hashlib.sha256(commit.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 100,
                "digest": f"sha256:{config}",
            },
            "layers": [],
        }
    )


def _push(ecr: Any, name: str, commit: str) -> str:
    """What a deploy pushes, at the ECR API level: the SHA tag, then `latest`, one manifest."""
    manifest = _manifest(commit)
    digest = ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=commit)
    ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag="latest")
    return str(digest["image"]["imageId"]["imageDigest"])


def test_three_deploys_in_a_row_push_latest_and_keep_sha_tags_immutable(ecr: Any):
    name = _name()
    for n in range(3):
        commit = f"{n:040x}"
        # push_commit's path: the repository check first, then the pushes.
        ensure_repository(name, create=True, registry_host=HOST, mutable_tags=("latest",))
        digest = _push(ecr, name, commit)
        assert image_digest(name, commit, HOST).digest == digest
        latest = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "latest"}])
        assert latest["imageDetails"][0]["imageDigest"] == digest
    with pytest.raises(ClientError, match="already exists"):  # a SHA tag never moves
        ecr.put_image(repositoryName=name, imageManifest=_manifest("other"), imageTag=f"{0:040x}")


def test_immutable_repository_without_exclusion_is_refused_before_the_second_push(ecr: Any):
    name = _name()
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    _push(ecr, name, "1" * 40)
    with pytest.raises(ClientError, match="already exists"):  # what the second deploy hit
        _push(ecr, name, "2" * 40)
    with pytest.raises(EcrError, match="does not exclude latest.*IMMUTABLE_WITH_EXCLUSION"):
        ensure_repository(name, create=False, registry_host=HOST, mutable_tags=("latest",))


def test_exclusion_by_wildcard_is_accepted(ecr: Any):
    name = _name()
    ecr.create_repository(
        repositoryName=name,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "lat*"}],
    )
    assert ensure_repository(name, False, registry_host=HOST, mutable_tags=("latest",))


def test_digest_of_a_missing_tag_is_an_error(ecr: Any):
    name = _name()
    ecr.create_repository(repositoryName=name)
    with pytest.raises(EcrError, match=f"{name}:nope"):
        image_digest(name, "nope", HOST)
