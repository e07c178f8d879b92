"""ECR: docker login credentials from boto3, and repositories that exist only on purpose.

Credentials come from `get_authorization_token` (a 12-hour token, base64 of "AWS:<password>") so
no long-lived registry password is stored anywhere. A missing repository is created only when the
caller says so; otherwise a typo in the registry setting would silently create a new repository.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.platforms import aws

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
    """Region: the registry host's, else AWS_REGION."""
    return aws.client("ecr", region)


def _error(action: str, exc: Exception) -> EcrError:
    return EcrError(f"cannot {action}: {aws.error_text(exc)}")


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
    with plain IMMUTABLE a second push of `latest` is refused, so an existing repository whose
    policy would refuse it fails here, before anything is built. Deployments use digests anyway.
    """
    account, region = _parse_host(registry_host) if registry_host else (None, None)
    client = client if client is not None else ecr_client(region)
    registry = {"registryId": account} if account else {}
    existing = _describe(client, name, registry)
    if existing is not None:
        _require_repushable(existing, mutable_tags)
        return str(existing["repositoryUri"])
    where = registry_host or "the default ECR registry"
    if not create:
        raise EcrError(
            f"ECR repository {name!r} does not exist in {where}: create it (e.g. with the "
            "project's Terraform) or enable repository creation for this pipeline"
        )
    return _create(client, name, registry, mutable_tags, where)


def _describe(client: Any, name: str, registry: dict[str, str]) -> dict[str, Any] | None:
    try:
        answer = client.describe_repositories(repositoryNames=[name], **registry)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
            return None
        raise _error(f"look up ECR repository {name!r}", exc) from None
    except BotoCoreError as exc:
        raise _error(f"look up ECR repository {name!r}", exc) from None
    return dict(answer["repositories"][0])


def _require_repushable(repository: Mapping[str, Any], tags: Sequence[str]) -> None:
    """Refuse an IMMUTABLE repository that does not exclude `tags` (the second push would fail)."""
    mutability = repository.get("imageTagMutability", "MUTABLE")
    if not mutability.startswith("IMMUTABLE"):
        return
    filters = [
        f["filter"]
        for f in repository.get("imageTagMutabilityExclusionFilters") or []
        if f.get("filterType") == "WILDCARD"
    ]
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        tags = [t for t in tags if not any(fnmatch.fnmatchcase(t, f) for f in filters)]
    if tags:
        raise EcrError(
            f"ECR repository {repository['repositoryName']!r} has immutable tags and does not "
            f"exclude {', '.join(tags)}, which every deploy moves: set image_tag_mutability "
            "IMMUTABLE_WITH_EXCLUSION with a wildcard filter for them (the project's Terraform "
            "does), or `aws ecr put-image-tag-mutability`"
        )


def image_digest(repository: str, tag: str, registry_host: str, client: Any = None) -> Image:
    """The digest and size ECR holds for `repository:tag` (ask by an immutable tag: the SHA)."""
    image = find_image(repository, tag, registry_host, client)
    if image is None:
        raise EcrError(f"ECR has no image {registry_host}/{repository}:{tag}")
    return image


def find_image(repository: str, tag: str, registry_host: str, client: Any = None) -> Image | None:
    """Like image_digest, but None when ECR has no such tag."""
    account, region = _parse_host(registry_host)
    client = client if client is not None else ecr_client(region)
    try:
        answer = client.describe_images(
            repositoryName=repository, registryId=account, imageIds=[{"imageTag": tag}]
        )
    except (ClientError, BotoCoreError) as exc:
        if aws.error_code(exc) == "ImageNotFoundException":
            return None
        raise _error(f"find {registry_host}/{repository}:{tag} in ECR", exc) from None
    details = answer.get("imageDetails") or []
    if not details:
        return None
    return Image(str(details[0]["imageDigest"]), int(details[0].get("imageSizeInBytes") or 0))


@dataclass(frozen=True)
class Image:
    digest: str  # sha256:...
    size_bytes: int  # compressed layers, as ECR counts them


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
            return str(
                (_describe(client, name, registry) or {"repositoryUri": name})["repositoryUri"]
            )
        raise _error(f"create ECR repository {name!r} in {where}", exc) from None
    except BotoCoreError as exc:
        raise _error(f"create ECR repository {name!r} in {where}", exc) from None
    return str(answer["repository"]["repositoryUri"])
