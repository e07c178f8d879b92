"""infra/codebuild/buildspec.yml run for real: its phases' commands in bash, in order, against the
local Docker Engine and the registry at 127.0.0.1:5000, with the variables CodeBuild would set.

CodeBuild semantics reproduced: one shell for the whole build (variables carry over between
commands and phases), a failing command fails its phase, and `on-failure: ABORT` stops the build
there. The one local difference: DOCKER_BUILDKIT=0, because this machine's docker CLI has no
buildx plugin (CodeBuild's standard image has one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from tests.platforms.conftest import (
    BUSYBOX,
    REGISTRY,
    REPO_ROOT,
    delete_manifest,
    manifest_digest,
    remove_image,
    sample_context,
)

BUILDSPEC = REPO_ROOT / "infra" / "codebuild" / "buildspec.yml"
PHASES = ("install", "pre_build", "build", "post_build")


def script(spec: dict[str, Any]) -> str:
    """The buildspec as one bash script that stops at the first failing command."""
    lines = []
    for phase in PHASES:
        for command in (spec["phases"].get(phase) or {}).get("commands", []):
            lines.append(command)
            lines.append(
                f"__rc=$?; [ $__rc -eq 0 ] || {{ echo 'phase {phase} FAILED' >&2; exit $__rc; }}"
            )
    return "\n".join(lines) + "\n"


def codebuild_env(source: Path, repository: str, sha: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DOCKER_BUILDKIT": "0",  # see the module docstring
        # CodeBuild's own
        "CODEBUILD_SRC_DIR": str(source),
        "CODEBUILD_BUILD_ID": f"sage-production-backend:{uuid.uuid4()}",
        "AWS_REGION": "us-west-2",
        "AWS_DEFAULT_REGION": "us-west-2",
        # sage_ops' environmentVariablesOverride (platforms/codebuild.py)
        "IMAGE_REPO_URI": f"{REGISTRY}/{repository}",
        "IMAGE_TAG": sha,
        "DOCKERFILE": "Dockerfile",
        "VERSION": sha[:12],
    }


def run_buildspec(source: Path, repository: str, sha: str) -> subprocess.CompletedProcess[str]:
    spec = yaml.safe_load(BUILDSPEC.read_text())
    assert spec["env"]["shell"] == "bash"
    return subprocess.run(
        ["bash", "-c", script(spec)],
        cwd=source,  # CodeBuild starts in CODEBUILD_SRC_DIR
        env=codebuild_env(source, repository, sha),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def unpacked_source(tmp: Path, variant: str = "healthy") -> Path:
    """What CodeBuild unpacks from sage_ops' zip: the context plus SAGE_OPS_BUILD_FILES."""
    source = sample_context(tmp / f"src-{uuid.uuid4().hex[:6]}", variant)
    for name, host in BUSYBOX.items():
        shutil.copy2(host, source / name)
    return source


@pytest.fixture
def repository(docker_env: docker.DockerClient, test_id: str):
    name = f"sageops-test/{test_id}-codebuild-{uuid.uuid4().hex[:6]}"
    yield name
    for tag in ("latest", *(f"{n:040x}" for n in range(1, 4))):
        digest = manifest_digest(REGISTRY, name, tag)
        if digest:
            delete_manifest(REGISTRY, name, digest)
        remove_image(docker_env, f"{REGISTRY}/{name}:{tag}")


def test_buildspec_pushes_sha_and_latest_and_moves_latest_on_the_next_build(
    docker_env: docker.DockerClient, repository: str, tmp_path: Path
) -> None:
    digests = []
    for n in (1, 2):
        sha = f"{n:040x}"
        source = unpacked_source(tmp_path)
        (source / "rootfs" / "app" / "build-note").write_text(f"build {n}\n")  # a new commit
        done = run_buildspec(source, repository, sha)
        assert done.returncode == 0, done.stdout + done.stderr

        digest = manifest_digest(REGISTRY, repository, sha)
        assert digest and digest == manifest_digest(REGISTRY, repository, "latest")
        labels = docker_env.images.get(f"{REGISTRY}/{repository}:{sha}").labels
        assert labels["org.opencontainers.image.revision"] == sha
        digests.append(digest)
    assert digests[0] != digests[1]
    assert manifest_digest(REGISTRY, repository, f"{1:040x}") == digests[0]  # SHA tag unmoved


def test_buildspec_refuses_a_root_image_before_pushing(
    docker_env: docker.DockerClient, repository: str, tmp_path: Path
) -> None:
    source = unpacked_source(tmp_path)
    dockerfile = source / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001:10001", "USER root"))
    sha = f"{3:040x}"
    done = run_buildspec(source, repository, sha)
    assert done.returncode != 0
    assert "image policy: the image runs as root" in done.stderr
    assert manifest_digest(REGISTRY, repository, sha) is None  # post_build never ran
