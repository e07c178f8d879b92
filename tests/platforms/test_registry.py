"""registry_image's push against real registries: digest from the push, down, auth refused."""

from __future__ import annotations

import pytest

from sage_ops.platforms.docker_engine.image import BuiltImage
from sage_ops.platforms.registries.push import (
    RegistryAuthError,
    RegistryError,
    classify,
    normalise_registry,
    push_image,
)
from tests.platforms.conftest import (
    REGISTRY,
    AuthRegistry,
    Images,
    Login,
    delete_manifest,
    free_port,
    manifest_digest,
    remove_image,
)


@pytest.fixture(scope="module")
def built(images: Images) -> BuiltImage:
    return images.build("healthy", "feedbeef")


def test_push_returns_the_digest_the_registry_stores_for_both_tags(
    images: Images, built: BuiltImage, lines: list[str], collect
) -> None:
    pushed = push_image(built.tags[0], REGISTRY, images.repository, "feedbeef", None, collect)
    images.pushed.append(pushed)

    assert pushed.digest.startswith("sha256:") and len(pushed.digest) == 71
    assert pushed.reference == f"{REGISTRY}/{images.repository}@{pushed.digest}"
    assert pushed.tags == (
        f"{REGISTRY}/{images.repository}:feedbeef",
        f"{REGISTRY}/{images.repository}:latest",
    )
    assert manifest_digest(REGISTRY, images.repository, "feedbeef") == pushed.digest
    assert manifest_digest(REGISTRY, images.repository, "latest") == pushed.digest
    assert manifest_digest(REGISTRY, images.repository, pushed.digest) == pushed.digest
    assert pushed.attempts == 1
    assert lines[-1] == f"pushed {pushed.reference}"
    assert not [line for line in lines if "Pushing" in line], "per-chunk progress is not relayed"


def test_registry_down_fails_after_bounded_retries(
    built: BuiltImage, images: Images, lines: list[str], collect, docker_env
) -> None:
    closed = f"127.0.0.1:{free_port()}"

    with pytest.raises(RegistryError) as caught:
        push_image(
            built.tags[0], closed, images.repository, "feedbeef", None, collect,
            attempts=3, backoff_s=0.05,
        )  # fmt: skip

    error = caught.value
    assert error.transient and not isinstance(error, RegistryAuthError)
    assert f"registry {closed} unreachable" in str(error)
    assert "connection refused" in str(error)
    assert "gave up after 3 attempts" in str(error)
    assert sum("retry" in line for line in lines) == 2
    for tag in ("feedbeef", "latest"):
        remove_image(docker_env, f"{closed}/{images.repository}:{tag}")


def test_auth_refused_without_credentials_is_not_retried(
    built: BuiltImage, images: Images, auth_registry: AuthRegistry, lines: list[str], collect
) -> None:
    with pytest.raises(RegistryAuthError) as caught:
        push_image(
            built.tags[0], auth_registry.address, images.repository, "feedbeef", None, collect,
            attempts=3, backoff_s=0.05,
        )  # fmt: skip

    assert f"registry {auth_registry.address} refused the push" in str(caught.value)
    assert "no basic auth credentials" in str(caught.value)
    assert not caught.value.transient
    assert not [line for line in lines if "retry" in line]


def test_wrong_password_is_refused_and_never_echoed(
    built: BuiltImage, images: Images, auth_registry: AuthRegistry, lines: list[str], collect
) -> None:
    wrong = Login(auth_registry.login.username, "not-the-password-1234")

    with pytest.raises(RegistryAuthError, match="unauthorized") as caught:
        push_image(
            built.tags[0], auth_registry.address, images.repository, "feedbeef", wrong, collect
        )

    assert "not-the-password-1234" not in str(caught.value)
    assert not [line for line in lines if "not-the-password-1234" in line]


def test_right_credentials_push(
    built: BuiltImage, images: Images, auth_registry: AuthRegistry, docker_env
) -> None:
    pushed = push_image(
        built.tags[0],
        f"http://{auth_registry.address}/",
        images.repository,
        "feedbeef",
        auth_registry.login,
        lambda _line: None,
    )

    assert pushed.reference.startswith(f"{auth_registry.address}/{images.repository}@sha256:")
    delete_manifest(auth_registry.address, images.repository, pushed.digest)
    for ref in (*pushed.tags, pushed.reference):
        remove_image(docker_env, ref)


def test_missing_local_image(images: Images, docker_env) -> None:
    with pytest.raises(RegistryError, match="not found: build it first"):
        push_image("sageops-test/absent:nope", REGISTRY, images.repository, "x", None, print)


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ('Put "http://r/v2/x/blobs/uploads/": read tcp: connection reset by peer', True),
        ("received unexpected HTTP status: 503 Service Unavailable", True),
        ("received unexpected HTTP status: 500 Internal Server Error", True),
        ("toomanyrequests: too many requests", True),
        ("unexpected EOF", True),
        ("unauthorized: authentication required", False),
        ("denied: requested access to the resource is denied", False),
        ("no basic auth credentials", False),
        ("manifest invalid: manifest invalid", False),
        ("unauthorized: 503 Service Unavailable", False),
    ],
)
def test_only_transient_errors_are_retried(message: str, transient: bool) -> None:
    assert classify(message) is transient


def test_registry_address_forms() -> None:
    assert normalise_registry("https://1234.dkr.ecr.eu-west-1.amazonaws.com/") == (
        "1234.dkr.ecr.eu-west-1.amazonaws.com"
    )
    with pytest.raises(RegistryError, match="expected host"):
        normalise_registry("127.0.0.1:5000/sage/backend")
