"""Real Docker Engine, registry and swarm for the platform and deploy tests, and the sample image variants.

Nothing here is faked: `infra/local/services.sh` starts (or finds) dockerd, a one-node swarm and
the registry on 127.0.0.1:5000, and a test session fails loudly when they cannot be had - a
skipped deploy suite would hide exactly the failures it exists to catch.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from sage_ops.platforms.docker_engine.engine import docker_client
from sage_ops.platforms.docker_engine.image import BuiltImage, build_image
from sage_ops.platforms.registries.push import PushedImage, push_image

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "infra" / "sample-backend"
REGISTRY = "127.0.0.1:5000"
BUSYBOX = {"busybox": "/bin/busybox"}
VARIANTS = ("healthy", "unhealthy", "crash")
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


@pytest.fixture(scope="session")
def docker_env() -> docker.DockerClient:
    """dockerd + swarm + registry via the project's own script; fail (never skip) without them."""
    result = subprocess.run(
        ["bash", "infra/local/services.sh"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "deploy tests need Docker Engine, a swarm and the local registry, and "
            f"infra/local/services.sh could not provide them (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    client = docker_client()
    if client.info().get("Swarm", {}).get("LocalNodeState") != "active":
        pytest.fail("Docker Engine is not a swarm manager after services.sh", pytrace=False)
    return client


@pytest.fixture(scope="session")
def test_id() -> str:
    return uuid.uuid4().hex[:8]


def sample_context(dest: Path, variant: str = "healthy") -> Path:
    """A copy of infra/sample-backend whose start script behaves as `variant` asks.

    healthy: as shipped. unhealthy: httpd listens on 8081, so the HEALTHCHECK (8080) keeps failing
    while the process lives. crash: the entrypoint exits 3 at once (a crash loop under swarm).
    """
    if variant not in VARIANTS:
        raise ValueError(variant)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(SAMPLE / "Dockerfile", dest / "Dockerfile")
    shutil.copytree(SAMPLE / "rootfs", dest / "rootfs")
    shutil.copytree(SAMPLE / "prisma", dest / "prisma")
    start = dest / "rootfs" / "app" / "start"
    if variant == "unhealthy":
        start.write_text(start.read_text().replace("-p 8080", "-p 8081"))
    elif variant == "crash":
        start.write_text("#!/bin/sh\necho 'sample-backend: fatal: cannot start' >&2\nexit 3\n")
    return dest


@dataclass
class Images:
    """Builds and pushes sample variants, and removes every image and manifest it made."""

    client: docker.DockerClient
    root: Path
    repository: str
    built: list[BuiltImage]
    pushed: list[PushedImage]

    def build(
        self, variant: str, version: str, log: Callable[[str], None] | None = None
    ) -> BuiltImage:
        context = sample_context(self.root / f"{variant}-{version}", variant)
        image = build_image(
            context,
            "Dockerfile",
            self.repository,
            version,
            {"VERSION": version},
            log or (lambda _line: None),
            context_files=BUSYBOX,
            client=self.client,
        )
        self.built.append(image)
        return image

    def push(self, image: BuiltImage, version: str) -> PushedImage:
        pushed = push_image(
            image.tags[0], REGISTRY, self.repository, version, None, lambda _l: None
        )
        self.pushed.append(pushed)
        return pushed

    def build_and_push(self, variant: str, version: str) -> PushedImage:
        return self.push(self.build(variant, version), version)

    def cleanup(self) -> None:
        for pushed in self.pushed:
            delete_manifest(REGISTRY, self.repository, pushed.digest)
        refs = {tag for image in self.built for tag in image.tags}
        refs |= {tag for pushed in self.pushed for tag in pushed.tags}
        refs |= {pushed.reference for pushed in self.pushed}
        for ref in sorted(refs):
            remove_image(self.client, ref)
        for image in self.built:
            remove_image(self.client, image.id)


@pytest.fixture(scope="session")
def images(
    docker_env: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory, test_id: str
) -> Iterator[Images]:
    store = Images(
        docker_env, tmp_path_factory.mktemp("contexts"), f"sageops-test/{test_id}", [], []
    )
    yield store
    store.cleanup()


def remove_image(client: docker.DockerClient, ref: str) -> None:
    """Best effort: a tag shared with a running container may need a second pass; never fail."""
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_image(ref, force=True, noprune=False)


def manifest_digest(registry: str, repository: str, reference: str) -> str | None:
    """What the registry itself says a tag or digest resolves to (Docker-Content-Digest)."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError:
        return None


def delete_manifest(registry: str, repository: str, digest: str) -> None:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{digest}", method="DELETE"
    )
    with contextlib.suppress(urllib.error.URLError, OSError):
        urllib.request.urlopen(request, timeout=5).close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a second registry that demands credentials ----------------------------------------------------


@dataclass(frozen=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True)
class AuthRegistry:
    address: str
    login: Login


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry (the only kind docker-registry accepts), from what is at hand:
    PyPI bcrypt, apache2-utils' htpasswd, libxcrypt through the stdlib `crypt` (Python < 3.13),
    and as a last resort apache2-utils installed from Debian."""
    try:
        import bcrypt

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"
    except ImportError:
        pass
    if shutil.which("htpasswd") is None and sys.version_info < (3, 13):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

        return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))}"
    if shutil.which("htpasswd") is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "apache2-utils"], check=True)
    out = subprocess.run(
        ["htpasswd", "-nbB", "-C", "5", user, password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.fixture(scope="session")
def auth_registry(
    docker_env: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    """docker-registry with htpasswd auth on a free port, for the 'credentials refused' cases."""
    root = tmp_path_factory.mktemp("auth-registry")
    login = Login("deployer", uuid.uuid4().hex)
    (root / "htpasswd").write_text(htpasswd_line(login.username, login.password) + "\n")
    address = f"127.0.0.1:{free_port()}"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {address}\n"
        f"auth:\n  htpasswd:\n    realm: sage-ops-test\n    path: {root / 'htpasswd'}\n"
    )
    log = (root / "registry.log").open("w")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
    )
    try:
        wait_for_status(f"http://{address}/v2/", 401, proc, root / "registry.log")
        yield AuthRegistry(address, login)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def wait_for_status(url: str, status: int, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(80):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            code = 200
        except urllib.error.HTTPError as exc:
            code = exc.code
        except (urllib.error.URLError, OSError):
            code = 0
        if code == status:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.25)
    pytest.fail(f"registry at {url} did not come up:\n{log.read_text()}", pytrace=False)


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def collect(lines: list[str]) -> Callable[[str], None]:
    return lines.append
