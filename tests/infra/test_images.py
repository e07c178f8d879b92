"""The images build-images.sh makes, held to their budgets and run for real.

The backend's runtime image (Dockerfile.debian's `runtime`) is the seed's: under 200 MB, non-root,
a HEALTHCHECK on port 3000, distroless (node and the libraries it links; no shell, no package
manager, no Prisma CLI or engine). The sage-ops image, which every run's container pulls afresh on
Fargate, stays within its budget. benchmarks/images.py prints the per-layer sizes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from sage_ops.postgres import PgTarget
from tests.infra.conftest import BACKEND_IMAGE, docker
from tests.infra.test_slim_venv import REPO, called, launcher_services

pytestmark = pytest.mark.stack
MB = 1_000_000  # docker's unit
BACKEND_BUDGET = 200 * MB  # the seed's limit
# 852 MB before issue 21, 424 MB after (benchmarks/README.md says what each layer costs). The budget
# is that size with a little room, so growth fails the test; half the before is 426 MB.
SAGE_OPS_BUDGET = 430 * MB
HEALTHY_WITHIN_S = 60


def image_size(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image))


def image_files(image: str, directory: Path) -> set[str]:
    """Every path in the image's filesystem, from `docker export` of a container never started."""
    container = docker("create", image).strip()
    try:
        archive = directory / "rootfs.tar"
        with archive.open("wb") as out:
            subprocess.run(["docker", "export", container], stdout=out, check=True, timeout=120)
        with tarfile.open(archive) as tar:
            return {"/" + name.lstrip("./") for name in tar.getnames()}
    finally:
        docker("rm", container)


def test_the_backend_image_is_under_200_mb(stack_images):
    size = image_size(BACKEND_IMAGE)
    assert size < BACKEND_BUDGET, f"{BACKEND_IMAGE} is {size / MB:.1f} MB"


def test_the_sage_ops_image_is_within_its_budget(stack_images):
    size = image_size(stack_images)
    assert size <= SAGE_OPS_BUDGET, f"sage-ops is {size / MB:.1f} MB"


def test_the_sage_ops_image_loads_a_client_for_every_aws_service_called(stack_images):
    """slim-venv.sh keeps some of botocore's models: the image itself must load every one that
    sage_ops and dagster.yaml's launcher call, or a run fails there with UnknownServiceError."""
    services = sorted(called(*(REPO / "sage_ops").rglob("*.py")) | launcher_services())
    code = "import sys, boto3; [boto3.client(s, region_name='us-east-1') for s in sys.argv[1:]]"
    command = ["docker", "run", "--rm", "--entrypoint", "python", stack_images, "-c", code]
    run = subprocess.run([*command, *services], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-600:]


PLOT = """
import datetime as dt, pandas as pd
from sage_ops.incidents.reports.plot import metric_plot
now = dt.datetime.now(dt.UTC)
series = pd.DataFrame({"timestamp": [now - dt.timedelta(minutes=m) for m in range(10)],
                       "value": [float(m) for m in range(10)]})
assert metric_plot(series, "CPU", 5.0, now).startswith(b"\\x89PNG")
"""


def test_the_images_own_migrations_are_what_migrate_database_reads(stack_images):
    """Without any setting (compose, or an operator's `docker run`), the stand-alone
    migrate_database finds the migrations baked into the image."""
    code = (
        "from sage_ops.migrations.discovery import load_migrations;"
        "from sage_ops.migrations.resources import MigrationConfig;"
        "from pathlib import Path;"
        "print(len(load_migrations(Path(MigrationConfig.from_env().migrations_dir))))"
    )
    run = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "python", stack_images, "-c", code],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-600:]
    baked = REPO / "infra/sample-backend/prisma/migrations"
    assert int(run.stdout) == len([d for d in baked.iterdir() if d.is_dir()]) > 0


def test_the_triage_plot_renders_in_the_image_under_a_read_only_root(stack_images):
    """As on Fargate: only /tmp is writable, and matplotlib keeps its cache there, silently."""
    command = ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--entrypoint", "python"]
    run = subprocess.run(
        [*command, stack_images, "-c", PLOT], capture_output=True, text=True, timeout=120
    )
    assert (run.returncode, run.stderr) == (0, "")


def test_the_backend_image_is_distroless_and_non_root(stack_images, tmp_path):
    files = image_files(BACKEND_IMAGE, tmp_path)
    assert "/usr/local/bin/node" in files and "/app/src/main.js" in files
    for absent in ("/bin/sh", "/bin/bash", "/usr/bin/apt-get", "/usr/bin/npm", "/bin/busybox"):
        assert absent not in files
    modules = {f for f in files if f.startswith("/app/node_modules/")}
    assert "/app/node_modules/.prisma/client/query_compiler_bg.wasm" in modules
    assert not any(
        f.startswith(("/app/node_modules/prisma/", "/app/node_modules/@prisma/engines/"))
        or "query_engine" in f
        or f.endswith(".so.node")
        for f in modules
    ), "the Prisma CLI or a query engine is in the runtime image"
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", BACKEND_IMAGE))
    assert config["User"] == "node" and "/etc/passwd" in files
    assert list(config["ExposedPorts"]) == ["3000/tcp"]
    assert config["Healthcheck"]["Test"][0] == "CMD"  # exec form: there is no shell to run it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_backend_turns_healthy_and_queries_postgres_through_prisma_client(
    stack_images, empty_db: PgTarget
):
    """Its own HEALTHCHECK passes, as uid 1000, and GET /db asks PostgreSQL for the time through
    Prisma Client and @prisma/adapter-pg, with no query engine in the image."""
    port = free_port()
    container = subprocess.run(  # the URL from the environment, not the command line
        ["docker", "run", "-d", "--network", "host", "-e", f"PORT={port}", "-e", "DATABASE_URL",
         BACKEND_IMAGE],
        env={**os.environ, "DATABASE_URL": empty_db.secret_url()},
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    try:
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while (status := health(container)) != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
        assert status == "healthy", docker("logs", container)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/db", timeout=10) as response:
            assert response.status == 200 and json.loads(response.read())["now"]
        [process] = docker("top", container, "-o", "pid,uid,args").splitlines()[1:]
        assert process.split()[1:3] == ["1000", "node"]
    finally:
        docker("rm", "-f", container)


def health(container: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container).strip()
