"""Push a built image to a registry and return its immutable digest.

The digest comes from the push itself (the Engine's `aux` event for the pushed manifest), never
from resolving a tag afterwards: a tag is mutable, and another push could move it in between.
Deployments then use `registry/repository@sha256:...`.

Retries: a push is idempotent (same layers, same manifest), so transient failures - connection
refused or reset, timeouts, 5xx, 429 - are retried a bounded number of times with backoff.
Authentication and manifest errors are not: retrying them only delays the operator's fix.
Credentials (e.g. from `sage_ops.platforms.registries.ecr`) are any object with `username` and
`password`; they go to the Engine in the X-Registry-Auth header, never into logs or arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import docker
import docker.errors

from sage_ops.errors import SageOpsError
from sage_ops.platforms.docker_engine.engine import docker_client

Log = Callable[[str], None]

# Checked before TRANSIENT: "unauthorized ... 503" must never be retried.
PERMANENT_MARKERS = (
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "denied",
    "forbidden",
    "manifest invalid",
    "manifest unknown",
    "name invalid",
    "name unknown",
    "unsupported",
    "tag invalid",
)
AUTH_MARKERS = ("unauthorized", "authentication required", "no basic auth", "denied", "forbidden")
TRANSIENT_MARKERS = (
    "connection refused",
    "connection reset",
    "broken pipe",
    "unexpected eof",
    ": eof",
    "timeout",
    "timed out",
    "no route to host",
    "too many requests",
    "429",
    "500 internal server error",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "received unexpected http status: 5",
)


class Credentials(Protocol):
    """Anything with a username and a password (read-only is fine: frozen dataclasses fit)."""

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...


class RegistryError(SageOpsError):
    """The push failed; `transient` says whether trying again later may help."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (or got none): fix them, do not retry."""


@dataclass(frozen=True)
class PushedImage:
    reference: str  # registry/repository@sha256:... - what deployments use
    digest: str  # sha256:...
    tags: tuple[str, ...]  # registry/repository:<sha>, registry/repository:latest
    attempts: int = 1
    push_seconds: float = 0.0


def push_image(
    local_tag: str,
    registry: str,
    repository: str,
    sha: str,
    credentials: Credentials | None,
    log: Log,
    *,
    attempts: int = 3,
    backoff_s: float = 2.0,
    client: docker.DockerClient | None = None,
) -> PushedImage:
    """Tag `local_tag` as `<registry>/<repository>:<sha>` and `:latest`, push both, get the digest.

    Both tags name the same manifest; the digest is the one the registry acknowledged for `:<sha>`.
    """
    client = client or docker_client()
    registry = normalise_registry(registry)
    target = f"{registry}/{repository}"
    _tag_local(client, local_tag, target, ("latest", sha))
    auth = _auth_config(registry, credentials)
    started = time.monotonic()
    digest, used = _with_retry(
        lambda: _push_tag(client, target, sha, auth, log), attempts, backoff_s, target, log
    )
    latest_digest, _ = _with_retry(
        lambda: _push_tag(client, target, "latest", auth, log), attempts, backoff_s, target, log
    )
    if latest_digest != digest:
        log(f"note: {target}:latest pushed as {latest_digest}, {target}:{sha} as {digest}")
    pushed = PushedImage(
        reference=f"{target}@{digest}",
        digest=digest,
        tags=(f"{target}:{sha}", f"{target}:latest"),
        attempts=used,
        push_seconds=round(time.monotonic() - started, 3),
    )
    log(f"pushed {pushed.reference}")
    return pushed


def normalise_registry(registry: str) -> str:
    """Accept `https://host:port/` as users paste it; Docker wants `host:port`."""
    registry = registry.strip().rstrip("/")
    for scheme in ("https://", "http://"):
        if registry.startswith(scheme):
            registry = registry[len(scheme) :]
    if not registry or "/" in registry:
        raise RegistryError(f"registry {registry!r}: expected host[:port], e.g. 127.0.0.1:5000")
    return registry


def classify(message: str) -> bool:
    """True when the Engine's push error looks transient (worth a bounded retry)."""
    text = message.lower()
    if any(marker in text for marker in PERMANENT_MARKERS):
        return False
    return any(marker in text for marker in TRANSIENT_MARKERS)


def _tag_local(
    client: docker.DockerClient, local_tag: str, target: str, tags: Iterable[str]
) -> None:
    try:
        for tag in tags:
            client.api.tag(local_tag, target, tag)
    except docker.errors.ImageNotFound as exc:
        raise RegistryError(f"local image {local_tag} not found: build it first") from exc


def _auth_config(registry: str, credentials: Credentials | None) -> dict[str, str] | None:
    if credentials is None:
        return None
    return {
        "username": credentials.username,
        "password": credentials.password,
        "serveraddress": registry,
    }


def _with_retry(
    push: Callable[[], str], attempts: int, backoff_s: float, target: str, log: Log
) -> tuple[str, int]:
    """Run `push` until it succeeds, retrying only transient RegistryErrors with backoff."""
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return push(), attempt
        except RegistryError as exc:
            if not exc.transient or attempt >= attempts:
                if exc.transient:
                    raise RegistryError(f"{exc} (gave up after {attempt} attempts)", True) from exc
                raise
            delay = backoff_s * 2 ** (attempt - 1)
            log(f"push to {target} failed ({exc}); retry {attempt + 1}/{attempts} in {delay:g} s")
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _push_tag(
    client: docker.DockerClient, target: str, tag: str, auth: Mapping[str, str] | None, log: Log
) -> str:
    """One `docker push target:tag`; returns the manifest digest the registry accepted."""
    try:
        events = client.api.push(
            target, tag=tag, stream=True, decode=True, auth_config=dict(auth) if auth else None
        )
        return _digest_from(events, f"{target}:{tag}", log)
    except docker.errors.APIError as exc:
        raise _push_error(f"{target}:{tag}", exc.explanation or str(exc)) from exc


def _digest_from(events: Iterable[dict[str, Any]], ref: str, log: Log) -> str:
    digest = None
    last_status: dict[str, str] = {}
    for event in events:
        if "error" in event:
            detail = (event.get("errorDetail") or {}).get("message") or event["error"]
            raise _push_error(ref, detail)
        aux = event.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
        _log_status(event, last_status, log)
    if not digest:
        raise RegistryError(f"push of {ref} finished without a digest from the registry")
    return str(digest)


def _log_status(event: Mapping[str, Any], last: dict[str, str], log: Log) -> None:
    """Relay one line per layer state change (Preparing, Pushed, ...), not every progress tick."""
    status = event.get("status")
    if not status:
        return
    layer = event.get("id", "")
    if status == "Pushing" or last.get(layer) == status:
        return
    last[layer] = status
    log(f"{layer}: {status}" if layer else status)


def _push_error(ref: str, detail: str) -> RegistryError:
    registry = ref.split("/", 1)[0]
    if _is_auth(detail):
        return RegistryAuthError(
            f"registry {registry} refused the push of {ref}: {detail}. Check the registry "
            "credentials (for ECR: the authorization token and the IAM role's push rights)"
        )
    if classify(detail):
        return RegistryError(
            f"registry {registry} unreachable or failing while pushing {ref}: {detail}. Check "
            "that the registry is running and SAGE_OPS_REGISTRY points at it",
            transient=True,
        )
    return RegistryError(f"push of {ref} to {registry} failed: {detail}")


def _is_auth(detail: str) -> bool:
    text = detail.lower()
    return any(marker in text for marker in AUTH_MARKERS)
