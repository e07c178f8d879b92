"""The images of infra/local/build-images.sh, for the tests marked `stack`.

Those tests build (or find cached) images and start containers, so the main suite deselects them;
`.ci/run` runs them as their own step with `pytest -m stack`. Deselection is reported in the
summary, and a stack test that is selected fails - never skips - without Docker.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# The migration tests' fixtures (a scratch database, a migrations directory), for the Prisma tests.
from tests.migrations.conftest import empty_db, write_migrations  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
BACKEND_IMAGE = "sage-backend:local"  # the distroless runtime
MIGRATE_IMAGE = "sage-backend:migrate"  # the Prisma CLI and the migrations
SAGE_OPS_IMAGE = "sage-ops:local"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "stack" in (config.option.markexpr or ""):
        return
    stack = [item for item in items if item.get_closest_marker("stack")]
    if stack:
        config.hook.pytest_deselected(items=stack)
        items[:] = [item for item in items if item not in stack]


@pytest.fixture(scope="session")
def stack_images() -> Iterator[str]:
    """Docker, the registry and every image of the stack, built once per session (seconds when
    the build cache holds). Returns the sage_ops image pinned for the session: sage-ops:local as
    built now, under a tag of its own, so that a later rebuild of sage-ops:local (another
    checkout's, or from a tree someone is editing) changes nothing in this session's stack."""
    for script in ("services.sh", "build-images.sh"):
        result = subprocess.run(
            ["bash", f"infra/local/{script}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                f"infra/local/{script} failed (exit {result.returncode}):\n"
                + (result.stdout + result.stderr)[-3000:],
                pytrace=False,
            )
    image_id = docker("image", "inspect", "--format", "{{.Id}}", SAGE_OPS_IMAGE).strip()
    pinned = f"sage-ops:session-{image_id.removeprefix('sha256:')[:12]}"
    docker("tag", SAGE_OPS_IMAGE, pinned)
    yield pinned
    # Untags only; the image stays while sage-ops:local or a container still uses it.
    subprocess.run(["docker", "rmi", pinned], capture_output=True, check=False)


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout
