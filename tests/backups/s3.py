"""A moto S3 server for tests and benchmarks: one per session, a fresh bucket per test.

The server is moto's `ThreadedMotoServer` on 127.0.0.1 (port 0: the OS picks a free one, so
there is no race between choosing a port and binding it). Code under test reaches it the way it
reaches AWS: boto3 reads `AWS_ENDPOINT_URL`, dummy credentials and `AWS_REGION` from the
environment (see `aws_env`), so nothing in sage_ops knows it is talking to moto.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
MIB = 1024 * 1024
W = TypeVar("W")


class MotoS3:
    """A running moto server; `endpoint` is what AWS_ENDPOINT_URL should be set to."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def wrap(self, middleware: Callable[[Any], W]) -> W:
        """Put a WSGI middleware in front of moto's app (what moto does not do between calls);
        returns it."""
        wsgi = self._server._server
        assert wsgi is not None, "the server is started in __init__"
        wrapped = middleware(wsgi.app)
        wsgi.app = wrapped
        return wrapped

    def stop(self) -> None:
        self._server.stop()


@contextmanager
def moto_server() -> Iterator[MotoS3]:
    server = MotoS3()
    try:
        yield server
    finally:
        server.stop()


def aws_env(endpoint: str) -> dict[str, str | None]:
    """Environment for boto3 to use the moto server; None means "must be unset".

    Apply with `monkeypatch.setenv`/`delenv` in tests (or os.environ in a benchmark). Settings
    that could send requests elsewhere or change what sage_ops asks for are cleared.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/sage_ops-test-aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/sage_ops-test-aws-credentials",
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_ENDPOINT_URL_S3": None,
        "SAGE_OPS_S3_SSE": None,
        "SAGE_OPS_S3_KMS_KEY_ID": None,
    }


def apply_env(env: Mapping[str, str | None], setenv: Any, delenv: Any) -> None:
    """`apply_env(aws_env(url), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False))`."""
    for name, value in env.items():
        if value is None:
            delenv(name)
        else:
            setenv(name, value)


def client(endpoint: str, max_pool_connections: int = 10) -> Any:
    """A plain S3 client on the server, independent of the environment (for assertions)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=max_pool_connections),
    )


def make_bucket(s3: Any, prefix: str = "sage-ops-test") -> str:
    """Create a bucket with a unique name and return the name."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def bucket_exists(s3: Any, name: str) -> bool:
    return any(b["Name"] == name for b in s3.list_buckets().get("Buckets", []))


def all_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """Every key in the bucket under `prefix`, all pages, in S3's (lexicographic) order."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def open_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Multipart uploads started and neither completed nor aborted."""
    uploads: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        uploads += page.get("Uploads", [])
    return uploads


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
