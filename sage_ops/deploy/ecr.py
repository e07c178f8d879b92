"""ECR: docker login credentials from boto3, and repositories that exist only on purpose.

Credentials come from `get_authorization_token` (a 12-hour token, base64 of "AWS:<password>") so
no long-lived registry password is stored anywhere. A missing repository is created only when the
caller says so; otherwise a typo in the registry setting would silently create a new repository.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.errors import ConfigError, SageOpsError

# ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn], or dual-stack ACCOUNT.dkr-ecr.REGION.on.aws
ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr[.-]ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)"
    r"\.(?:amazonaws\.com(?:\.cn)?|on\.aws)(?::443)?$"
)


class EcrError(SageOpsError):
    """ECR refused a request, or a repository is missing and may not be created."""


def is_ecr_host(host: str) -> bool:
    """True for a private ECR registry host (ECR Public, public.ecr.aws, is not supported)."""
    return ECR_HOST.match(host.lower()) is not None


def _parse_host(registry_host: str) -> tuple[str, str]:
    """(account id, region) of an ECR registry host."""
    match = ECR_HOST.match(registry_host.lower())
    if match is None:
        raise ConfigError(
            f"{registry_host!r} is not an ECR registry host "
            "(expected ACCOUNT.dkr.ecr.REGION.amazonaws.com)"
        )
    return match["account"], match["region"]


def ecr_client(region: str | None = None) -> Any:
    """A client honouring AWS_PROFILE and AWS_ENDPOINT_URL; region: the host's, else AWS_REGION."""
    session = boto3.session.Session(profile_name=os.environ.get("AWS_PROFILE") or None)
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)
    try:
        return session.client(
            "ecr", region_name=region or os.environ.get("AWS_REGION"), config=config
        )
    except BotoCoreError as exc:
        raise ConfigError(f"cannot create an ECR client ({exc}); set AWS_REGION") from None


def _error(action: str, exc: Exception) -> EcrError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return EcrError(f"cannot {action}: {err.get('Code', '')} {err.get('Message', '')}".rstrip())
    return EcrError(f"cannot {action}: {exc}")


def ecr_credentials(registry_host: str, client: Any = None) -> tuple[str, str]:
    """(username, password) for `docker login registry_host`; never logged or put in messages."""
    _, region = _parse_host(registry_host)
    client = client if client is not None else ecr_client(region)
    try:
        answer = client.get_authorization_token()
    except (ClientError, BotoCoreError) as exc:
        raise _error(f"get an ECR authorization token for {registry_host}", exc) from None
    data = answer.get("authorizationData") or []
    if not data:
        raise EcrError(f"ECR returned no authorization data for {registry_host}")
    return decode_token(data[0].get("authorizationToken", ""), registry_host)


def decode_token(token: str, registry_host: str) -> tuple[str, str]:
    """Split base64("AWS:<password>") into its two parts."""
    try:
        user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, sep, password = "", "", ""
    if not (user and sep and password):
        raise EcrError(f"the ECR authorization token for {registry_host} is not base64 'user:pass'")
    return user, password


def ensure_repository(
    name: str,
    create: bool,
    *,
    registry_host: str | None = None,
    mutable_tags: Sequence[str] = (),
    client: Any = None,
) -> str:
    """The repository's URI; create it (immutable tags, scan on push) only when `create` is True.

    `mutable_tags` (e.g. `("latest",)`) stay re-pushable through ECR's IMMUTABLE_WITH_EXCLUSION;
    with plain IMMUTABLE a second push of `latest` is refused. Deployments use digests anyway.
    """
    account, region = _parse_host(registry_host) if registry_host else (None, None)
    client = client if client is not None else ecr_client(region)
    registry = {"registryId": account} if account else {}
    existing = _describe(client, name, registry)
    if existing is not None:
        return existing
    where = registry_host or "the default ECR registry"
    if not create:
        raise EcrError(
            f"ECR repository {name!r} does not exist in {where}: create it (e.g. with the "
            "project's Terraform) or enable repository creation for this pipeline"
        )
    return _create(client, name, registry, mutable_tags, where)


def _describe(client: Any, name: str, registry: dict[str, str]) -> str | None:
    try:
        answer = client.describe_repositories(repositoryNames=[name], **registry)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
            return None
        raise _error(f"look up ECR repository {name!r}", exc) from None
    except BotoCoreError as exc:
        raise _error(f"look up ECR repository {name!r}", exc) from None
    return str(answer["repositories"][0]["repositoryUri"])


def _create(
    client: Any, name: str, registry: dict[str, str], mutable_tags: Sequence[str], where: str
) -> str:
    """Create with immutable tags and scan on push; a concurrent creator wins harmlessly."""
    mutability: dict[str, Any] = {"imageTagMutability": "IMMUTABLE"}
    if mutable_tags:
        mutability = {
            "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": [
                {"filterType": "WILDCARD", "filter": tag} for tag in mutable_tags
            ],
        }
    try:
        answer = client.create_repository(
            repositoryName=name,
            imageScanningConfiguration={"scanOnPush": True},
            **mutability,
            **registry,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "RepositoryAlreadyExistsException":
            return _describe(client, name, registry) or name
        raise _error(f"create ECR repository {name!r} in {where}", exc) from None
    except BotoCoreError as exc:
        raise _error(f"create ECR repository {name!r} in {where}", exc) from None
    return str(answer["repository"]["repositoryUri"])
