"""backend_image's building blocks against the real Docker Engine: build, cache reuse, checks, faults."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest

from sage_ops.platforms.docker_engine.image import (
    CREATED_LABEL,
    REVISION_LABEL,
    ImageBuildError,
    build_image,
    check_image,
)
from tests.platforms.conftest import BUSYBOX, Images, sample_context


def _health_file(client: docker.DockerClient, image_id: str) -> str:
    """What /health serves, read straight from the image (no server needed)."""
    out = client.containers.run(
        image_id, entrypoint=["/bin/cat", "/app/www/health"], remove=True, user="10001"
    )
    return out.decode().strip()


def test_sample_backend_builds_with_labels_tags_and_passes_checks(
    images: Images, docker_env: docker.DockerClient, lines: list[str], collect
) -> None:
    built = images.build("healthy", "a1b2c3d", log=collect)

    assert built.tags == (f"{images.repository}:a1b2c3d", f"{images.repository}:latest")
    assert built.labels[REVISION_LABEL] == "a1b2c3d"
    created = datetime.fromisoformat(built.labels[CREATED_LABEL].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - created).total_seconds()) < 120
    assert docker_env.images.get(f"{images.repository}:latest").id == built.id
    assert any(line.startswith("Step 1/") for line in lines), "progress is streamed to the log"
    assert lines[-1].startswith(f"built {images.repository}:a1b2c3d")
    assert _health_file(docker_env, built.id) == "ok version=a1b2c3d"
    checks = check_image(built.id, client=docker_env)
    assert [(c.name, c.passed) for c in checks] == [
        ("size_under_limit", True),
        ("non_root_user", True),
        ("healthcheck_present", True),
    ]
    staged = images.root / "healthy-a1b2c3d" / "busybox"
    assert not staged.exists(), "the staged busybox is removed from the context after the build"


def test_second_commit_reuses_cached_layers(
    images: Images, docker_env: docker.DockerClient, tmp_path: Path
) -> None:
    context = sample_context(tmp_path / "repo")
    quiet = lambda _line: None  # noqa: E731
    cold = build_image(
        context, "Dockerfile", images.repository, "c0ld", {"VERSION": "c0ld"}, quiet,
        context_files=BUSYBOX, nocache=True, client=docker_env,
    )  # fmt: skip
    images.built.append(cold)
    start = context / "rootfs" / "app" / "start"
    start.write_text(start.read_text() + "# next commit touched the app\n")
    warm = build_image(
        context, "Dockerfile", images.repository, "w4rm", {"VERSION": "w4rm"}, quiet,
        context_files=BUSYBOX, client=docker_env,
    )  # fmt: skip
    images.built.append(warm)

    print(
        f"\ncold build {cold.build_seconds:.2f} s ({cold.cached_steps}/{cold.total_steps} cached);"
        f" changed commit {warm.build_seconds:.2f} s ({warm.cached_steps}/{warm.total_steps} cached)"
    )
    assert cold.cached_steps == 0
    assert warm.cached_steps >= 2, "busybox COPY and its install RUN come from the cache"
    cold_layers = docker_env.api.inspect_image(cold.id)["RootFS"]["Layers"]
    warm_layers = docker_env.api.inspect_image(warm.id)["RootFS"]["Layers"]
    assert warm_layers[:2] == cold_layers[:2]
    assert warm_layers[2] != cold_layers[2], "the changed rootfs layer was rebuilt"


def test_dockerfile_syntax_error_is_reported_with_the_line(tmp_path: Path, docker_env) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nFROBNICATE everything\n")

    with pytest.raises(ImageBuildError) as caught:
        build_image(
            tmp_path, "Dockerfile", "sageops-test/syntax", "s1", {}, print, client=docker_env
        )

    message = str(caught.value)
    assert "line 2" in message and "unknown instruction: FROBNICATE" in message
    assert str(tmp_path / "Dockerfile") in message


def test_failing_run_step_names_the_step_and_quotes_its_output(
    tmp_path: Path, docker_env, lines: list[str], collect
) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo generating prisma client; exit 7"]\n'
    )

    with pytest.raises(ImageBuildError) as caught:
        build_image(
            tmp_path, "Dockerfile", "sageops-test/runfail", "r1", {}, collect,
            context_files=BUSYBOX, client=docker_env,
        )  # fmt: skip

    error = caught.value
    assert error.step is not None and error.step.startswith("Step 3/")
    assert "returned a non-zero code: 7" in str(error)
    assert "generating prisma client" in str(error), "the last log lines are quoted"
    assert "generating prisma client" in lines
    assert not docker_env.images.list(name="sageops-test/runfail")


def test_missing_dockerfile(tmp_path: Path, docker_env) -> None:
    with pytest.raises(ImageBuildError, match="no Dockerfile at"):
        build_image(tmp_path, "Dockerfile", "sageops-test/none", "n1", {}, print, client=docker_env)


def test_image_over_the_size_limit_fails_its_check(images: Images, docker_env) -> None:
    built = images.build("healthy", "s1z3")

    size, user, health = check_image(built.id, max_bytes=1_000_000, client=docker_env)

    assert not size.passed
    assert "limit 1.0 MB" in size.detail
    assert user.passed and health.passed


def test_root_image_without_healthcheck_fails_both_checks(
    images: Images, docker_env, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    built = build_image(
        tmp_path, "Dockerfile", images.repository, "r00t", {}, lambda _l: None,
        context_files=BUSYBOX, client=docker_env,
    )  # fmt: skip
    images.built.append(built)

    checks = {c.name: c for c in check_image(built.id, client=docker_env)}

    assert checks["size_under_limit"].passed
    assert not checks["non_root_user"].passed
    assert "root" in checks["non_root_user"].detail
    assert not checks["healthcheck_present"].passed
