"""boto3 clients the way every sage_ops AWS client is built, and AWS errors in operator words."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def aws_client(service: str) -> Any:
    """A client honouring AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL (boto3 reads the last).

    Short timeouts and standard retries: a sensor tick must finish well inside Dagster's 60 s.
    """
    session = boto3.session.Session(profile_name=os.environ.get("AWS_PROFILE") or None)
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20
    )
    region = os.environ.get("AWS_REGION")
    return session.client(service, region_name=region, config=config)  # type: ignore[call-overload]


def describe(exc: Exception) -> str:
    """`Code: Message` of an AWS error, or the transport error; never credentials."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__


AWS_ERRORS = (ClientError, BotoCoreError)
