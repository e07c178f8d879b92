"""One boto3 client factory for every AWS service sage_ops calls.

boto3 itself reads AWS_ENDPOINT_URL (moto in tests, a VPC endpoint in production); the profile and
region are passed explicitly so that AWS_PROFILE and AWS_REGION win over any config file. Retries
use botocore's standard mode: throttling and 5xx are retried a bounded number of times; a caller
inside a sensor tick passes WITHIN_A_TICK, whose short timeouts end a tick well inside Dagster's
60 s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.errors import ConfigError, SageOpsError

T = TypeVar("T")
RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)
WITHIN_A_TICK = Config(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20
)
ERRORS = (ClientError, BotoCoreError)  # what a call of a client made here raises


def client(service: str, region: str | None = None, config: Config = RETRIES) -> Any:
    """A client honouring AWS_PROFILE, AWS_REGION (unless `region` is given), AWS_ENDPOINT_URL."""
    try:
        session = boto3.session.Session(profile_name=os.environ.get("AWS_PROFILE") or None)
        # The service name is a plain str here, which boto3-stubs' overloads do not cover.
        return session.client(  # type: ignore[call-overload]
            service, region_name=region or os.environ.get("AWS_REGION"), config=config
        )
    except BotoCoreError as exc:
        raise ConfigError(
            f"cannot create an AWS {service} client ({exc}); set AWS_REGION"
        ) from None


def error_text(exc: Exception) -> str:
    """`Code Message` of a ClientError (what an operator searches for), else the exception."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '')} {err.get('Message', '')}".strip()
    return str(exc)


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class AwsError(SageOpsError):
    """An AWS call failed; the message is its `Code Message`."""


def explained(call: Callable[[], T]) -> Callable[[], T]:
    """`call` with AWS errors raised as AwsError, which says what an operator searches for."""

    def wrapped() -> T:
        try:
            return call()
        except ERRORS as exc:
            raise AwsError(error_text(exc)) from None

    return wrapped


def readable_prefix(bucket: str, prefix: str, named_by: str) -> None:
    """The bucket exists and its `prefix` may be listed - the permission sage_ops' role has
    (ListBucket scoped by prefix), unlike HeadBucket's; a failure names the setting `named_by`."""
    try:
        client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ERRORS as exc:
        raise ConfigError(f"bucket {bucket} ({named_by}): {error_text(exc)}") from None
