"""Build the backend image on the local Docker Engine and check it before it goes anywhere.

Builds go through the Engine's build API (the `docker` SDK), so progress arrives as a stream we can
relay line by line and failures arrive as structured errors rather than CLI exit codes. The API
runs Docker's classic builder: BuildKit needs the buildx client plugin, which neither the SDK nor
this machine's CLI has. The classic builder keeps the Engine's layer cache, which is the reuse that
matters between commits: a commit that only changes app files rebuilds from its first changed
COPY, and the base layers come from cache (counted in `BuiltImage.cached_steps`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import docker
import docker.errors

from sage_ops.errors import SageOpsError
from sage_ops.platforms.docker_engine.engine import docker_client

Log = Callable[[str], None]

REVISION_LABEL = "org.opencontainers.image.revision"
CREATED_LABEL = "org.opencontainers.image.created"
DEFAULT_MAX_BYTES = 200 * 1000 * 1000  # the seed's "< 200 MB" target, in Docker's decimal MB
LOG_TAIL_LINES = 15
ROOT_USERS = frozenset({"", "0", "root"})


class ImageBuildError(SageOpsError):
    """`docker build` failed; the message names the failing step and quotes the last log lines."""

    def __init__(self, message: str, step: str | None = None, log_tail: tuple[str, ...] = ()):
        super().__init__(message)
        self.step = step
        self.log_tail = log_tail


@dataclass(frozen=True)
class BuiltImage:
    id: str  # sha256:... (the local image id, not a registry digest)
    tags: tuple[str, ...]  # <repository>:<sha>, <repository>:latest
    size_bytes: int
    labels: Mapping[str, str]
    build_seconds: float
    cached_steps: int = 0  # Dockerfile steps served from the layer cache
    total_steps: int = 0
    warnings: tuple[str, ...] = field(default=())


class ImageCheck(NamedTuple):
    name: str
    passed: bool
    detail: str


def build_image(
    context_dir: str | Path,
    dockerfile: str,
    repository: str,
    sha: str,
    build_args: Mapping[str, str] | None,
    log: Log,
    *,
    context_files: Mapping[str, str | Path] | None = None,
    nocache: bool = False,
    client: docker.DockerClient | None = None,
) -> BuiltImage:
    """Build `<repository>:<sha>` (+ `:latest`) from `context_dir`, labelled with commit and time.

    `context_files` stages host files into the context for this build only (the sample backend
    needs {"busybox": "/bin/busybox"}); files already present are left alone, staged ones removed.
    """
    client = client or docker_client()
    context = Path(context_dir)
    if not (context / dockerfile).is_file():
        raise ImageBuildError(f"no Dockerfile at {context / dockerfile}: check the path")
    labels = {REVISION_LABEL: sha, CREATED_LABEL: _utc_now()}
    tag = f"{repository}:{sha}"
    started = time.monotonic()
    with _staged(context, context_files or {}):
        events = _build_events(client, context, dockerfile, tag, build_args, labels, nocache)
        progress = _relay(events, log)
    if progress.image_id is None:
        raise ImageBuildError(f"docker build of {tag} ended without an image id", progress.step)
    client.api.tag(progress.image_id, repository, "latest")
    attrs = client.api.inspect_image(progress.image_id)
    built = BuiltImage(
        id=progress.image_id,
        tags=(tag, f"{repository}:latest"),
        size_bytes=int(attrs.get("Size") or 0),
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
        build_seconds=round(time.monotonic() - started, 3),
        cached_steps=progress.cached_steps,
        total_steps=progress.total_steps,
        warnings=tuple(progress.warnings),
    )
    log(
        f"built {tag} ({built.id[:19]}, {built.size_bytes / 1e6:.1f} MB) in "
        f"{built.build_seconds:.1f} s, {built.cached_steps}/{built.total_steps} steps from cache"
    )
    return built


def check_image(
    image_id: str, max_bytes: int = DEFAULT_MAX_BYTES, *, client: docker.DockerClient | None = None
) -> list[ImageCheck]:
    """The seed's production rules for an image: small, not root, and self-reporting its health."""
    client = client or docker_client()
    try:
        attrs = client.api.inspect_image(image_id)
    except docker.errors.ImageNotFound as exc:
        raise ImageBuildError(f"image {image_id} not found on the Docker Engine") from exc
    config = attrs.get("Config") or {}
    return [
        _size_check(int(attrs.get("Size") or 0), max_bytes),
        _user_check(config.get("User") or ""),
        _healthcheck_check(config.get("Healthcheck")),
    ]


def _size_check(size: int, max_bytes: int) -> ImageCheck:
    detail = f"{size / 1e6:.1f} MB (limit {max_bytes / 1e6:.1f} MB)"
    return ImageCheck("size_under_limit", size <= max_bytes, detail)


def _user_check(user: str) -> ImageCheck:
    """Config.User may be "name", "uid" or "uid:gid"; only the user part decides."""
    name = user.split(":", 1)[0].strip()
    if name in ROOT_USERS:
        return ImageCheck("non_root_user", False, f"runs as root (USER {user or 'not set'})")
    return ImageCheck("non_root_user", True, f"USER {user}")


def _healthcheck_check(healthcheck: Mapping[str, Any] | None) -> ImageCheck:
    test = list((healthcheck or {}).get("Test") or [])
    if not test or test == ["NONE"]:
        return ImageCheck("healthcheck_present", False, "no HEALTHCHECK in the image")
    return ImageCheck("healthcheck_present", True, " ".join(test))


def _utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@contextmanager
def _staged(context: Path, files: Mapping[str, str | Path]) -> Iterator[None]:
    """Copy host files into the context for one build, removing only the ones we added."""
    added: list[Path] = []
    try:
        for name, source in files.items():
            target = context / name
            if target.exists():
                continue
            if not Path(source).is_file():
                raise ImageBuildError(f"context file {name}: {source} does not exist on this host")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            added.append(target)
        yield
    finally:
        for path in added:
            path.unlink(missing_ok=True)


def _build_events(
    client: docker.DockerClient,
    context: Path,
    dockerfile: str,
    tag: str,
    build_args: Mapping[str, str] | None,
    labels: Mapping[str, str],
    nocache: bool,
) -> Iterator[dict[str, Any]]:
    """The Engine's build stream; an error before the stream starts becomes ImageBuildError."""
    try:
        yield from client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(build_args or {}),
            labels=dict(labels),
            rm=True,
            forcerm=True,
            nocache=nocache,
            decode=True,
        )
    except docker.errors.APIError as exc:
        reason = exc.explanation or str(exc)
        raise ImageBuildError(
            f"docker build of {tag} rejected before any step ran ({context / dockerfile}): {reason}"
        ) from exc


@dataclass
class _Progress:
    """What the build stream told us so far: enough to report success or a useful failure."""

    image_id: str | None = None
    step: str | None = None
    total_steps: int = 0
    cached_steps: int = 0
    warnings: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    partial: str = ""


def _relay(events: Iterable[dict[str, Any]], log: Log) -> _Progress:
    """Forward complete output lines to `log` and raise on the stream's error event."""
    progress = _Progress()
    for event in events:
        if "error" in event:
            _flush(progress, log)
            raise _build_failure(event, progress)
        if "aux" in event and "ID" in (event["aux"] or {}):
            progress.image_id = event["aux"]["ID"]
        text = event.get("stream")
        if text:
            progress.partial += text
            while "\n" in progress.partial:
                line, progress.partial = progress.partial.split("\n", 1)
                _line(progress, line.rstrip(), log)
    _flush(progress, log)
    return progress


def _flush(progress: _Progress, log: Log) -> None:
    if progress.partial.strip():
        _line(progress, progress.partial.rstrip(), log)
    progress.partial = ""


def _line(progress: _Progress, line: str, log: Log) -> None:
    if not line.strip():
        return
    if line.startswith("Step "):
        progress.step = line
        progress.total_steps += 1
    elif "Using cache" in line:
        progress.cached_steps += 1
    elif line.startswith("[Warning]"):
        progress.warnings.append(line)
    if not line.startswith("Removing intermediate container"):
        progress.tail = [*progress.tail[-(LOG_TAIL_LINES - 1) :], line]
    log(line)


def _build_failure(event: Mapping[str, Any], progress: _Progress) -> ImageBuildError:
    detail = (event.get("errorDetail") or {}).get("message") or event.get("error") or "unknown"
    where = f" at {progress.step}" if progress.step else ""
    tail = tuple(progress.tail)
    quoted = "\n".join(f"  | {line}" for line in tail[-8:])
    message = f"docker build failed{where}: {detail}"
    if quoted:
        message += f"\nlast build output:\n{quoted}"
    return ImageBuildError(message, progress.step, tail)
