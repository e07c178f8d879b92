"""infra/local/build-images.sh from a fresh clone: no .venv, no infra/local/.cache.

The clone is the repository's tracked and untracked-but-not-ignored files, so it is what `git
clone` gives plus the edits not yet committed. The script builds the wheelhouse with a throwaway
venv of the host's python3; a build that fails part-way leaves no wheelhouse for a later run to
take for complete. Both tests run in the `stack` step: they build a venv and a wheelhouse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import REPO, SAGE_OPS_IMAGE, docker


def fresh_clone(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is not in the clone
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    assert not (destination / ".venv").exists()
    return destination


def build_images(clone: Path, *steps: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "infra/local/build-images.sh", *steps],
        cwd=clone,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


@pytest.mark.stack
def test_a_wheelhouse_that_fails_part_way_is_not_kept(tmp_path):
    """pip cannot reach its index: the script stops before any image build, says why, and leaves
    neither a wheelhouse nor its temporary directory behind."""
    clone = fresh_clone(tmp_path / "clone")
    result = build_images(
        clone,
        "sage-ops",
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL="http://127.0.0.1:9/simple",
        PIP_RETRIES="0",
        PIP_TIMEOUT="2",
    )
    assert result.returncode != 0
    assert "pip wheel failed (above); no wheelhouse was kept" in result.stderr, result.stderr
    assert "docker build" not in result.stderr and "steps from cache" not in result.stderr
    cache = clone / "infra" / "local" / ".cache"
    assert not list(cache.glob("wheels*")), list(cache.iterdir())


@pytest.mark.stack
def test_a_fresh_clone_builds_the_sage_ops_image(tmp_path):
    """The README's build from a clone where `python3 dev.py` never ran: the wheelhouse is made
    with the host's python3, kept once complete, and the image builds from it."""
    clone = fresh_clone(tmp_path / "clone")
    result = build_images(clone, "base", "sage-ops")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    [wheelhouse] = (clone / "infra" / "local" / ".cache").glob("wheels*")
    assert (wheelhouse / ".complete").exists() and wheelhouse.name.startswith("wheels-")
    assert any(wheelhouse.glob("dagster-1.13.27-*.whl"))
    assert not (clone / ".venv").exists()
    user = docker("image", "inspect", "--format", "{{.Config.User}}", SAGE_OPS_IMAGE).strip()
    assert user == "10001"
