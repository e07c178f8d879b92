"""A moto S3 server in its own process, with one bucket, for the S3 variant."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
from botocore.exceptions import EndpointConnectionError

STARTUP_TIMEOUT_S = 30.0
# moto accepts any credentials; these keep boto3 from looking for real ones.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_REGION": "us-east-1",
}


@contextlib.contextmanager
def moto_s3(bucket: str, log_path: Path) -> Iterator[dict[str, str]]:
    """Start moto_server, create `bucket`; yield the environment that points boto3 at it."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = Path(sys.executable).parent / "moto_server"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
        )
    try:
        env = {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint}
        _create_bucket(endpoint, bucket)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _create_bucket(endpoint: str, bucket: str) -> None:
    """Create the bucket, retrying until the server answers."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=AWS_ENV["AWS_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            return
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
