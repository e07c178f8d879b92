"""The service's containers through the real Docker Engine (the SDK, as every platform call):
CPU for the probe, logs as evidence.

The image is built FROM scratch with Debian's static busybox (no registry is reachable). The
container carries the label swarm puts on a service's task containers, so the lookup is the one
used for the local swarm service.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sage_ops.incidents.errors import EvidenceError
from sage_ops.incidents.evidence.containers import ContainerLogs, probe_container_cpu
from sage_ops.incidents.evidence.probes import CONTAINER_CPU_PCT
from sage_ops.platforms.docker_engine.containers import SERVICE_LABEL, service_containers

IMAGE = "sage-ops-test-busybox:1"
SCRIPT = (
    "echo 'Nest application successfully started'; "
    "echo 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory' >&2; "
    "while :; do :; done"
)


def _image() -> str:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        with tempfile.TemporaryDirectory() as ctx:
            shutil.copy("/bin/busybox", Path(ctx) / "busybox")
            (Path(ctx) / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
            subprocess.run(
                ["docker", "build", "-q", "-t", IMAGE, ctx], check=True, capture_output=True
            )
    return IMAGE


@pytest.fixture(scope="module")
def busy_service() -> Iterator[str]:
    service = f"sage-test-{uuid.uuid4().hex[:8]}"
    cid = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--label",
            f"{SERVICE_LABEL}={service}",
            _image(),
            "/bin/busybox",
            "sh",
            "-c",
            SCRIPT,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        yield service
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def test_cpu_of_a_busy_service(busy_service):
    assert len(service_containers(busy_service)) == 1
    [sample] = probe_container_cpu(busy_service)
    # A busy loop, on a machine whose cores other work shares: far above an idle container's 0.
    assert sample.metric == CONTAINER_CPU_PCT and sample.value > 20
    assert probe_container_cpu("sage-test-no-such-service") == []


def test_logs_of_the_service_with_timestamps(busy_service):
    deadline = time.monotonic() + 10
    while True:
        frame = ContainerLogs(busy_service).lines(
            datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC) + timedelta(seconds=1)
        )
        if len(frame) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(frame["message"]) == [
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "Nest application successfully started",
    ]
    assert frame["source"].iloc[0].startswith(f"{busy_service}/")
    assert (datetime.now(UTC) - frame["timestamp"].iloc[0].to_pydatetime()) < timedelta(minutes=1)


def test_without_docker_logs_are_an_evidence_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-dockerd.sock")
    with pytest.raises(EvidenceError, match="Docker Engine unreachable"):
        ContainerLogs("x").lines(datetime.now(UTC), datetime.now(UTC))
    assert probe_container_cpu("x") == []
