"""The `codebuild` builder's API sequence: moto where it can answer, botocore's Stubber elsewhere.

moto: the source zip lands in S3, start_build receives the S3 source override and the image
variables, batch_get_builds answers SUCCEEDED, and ECR's describe_images gives the digest.
moto cannot run a buildspec, so the push CodeBuild would make is played into moto's ECR by a
hook on start_build. Stubber (named per test): phases and CloudWatch log lines as a real build
produces them, FAILED / TIMED_OUT answers, and a build still running at the timeout, which must
be stopped - moto completes every build on its first describe.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sage_ops.errors import ConfigError
from sage_ops.platforms import aws
from sage_ops.platforms.builders.base import open_builder
from sage_ops.platforms.builders.codebuild import CodeBuildBuilder
from sage_ops.platforms.builders.spec import BuildSpec
from sage_ops.platforms.docker_engine.image import ImageBuildError
from tests.backups.s3 import REGION, apply_env, aws_env, moto_server
from tests.platforms.conftest import sample_context

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
PROJECT = "sage-production-backend-build"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as server:
        yield server.endpoint


@pytest.fixture
def env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    apply_env(aws_env(moto_endpoint), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False))
    return moto_endpoint


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository with the sample backend at apps/backend; (path, head SHA)."""
    root = tmp_path_factory.mktemp("repo")
    sample_context(root / "apps" / "backend")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "sample"], check=True)
    sha = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return root, sha


@pytest.fixture
def stack(env: str) -> dict[str, str]:
    """Bucket, ECR repository and CodeBuild project, as the Terraform module makes them."""
    names = {
        "bucket": f"sage-artifacts-{uuid.uuid4().hex[:8]}",
        "repo": f"sage-backend-{uuid.uuid4().hex[:6]}",
    }
    aws.client("s3").create_bucket(Bucket=names["bucket"])
    aws.client("ecr").create_repository(
        repositoryName=names["repo"],
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )
    aws.client("codebuild").create_project(
        name=f"{PROJECT}-{names['repo']}",
        source={"type": "S3", "location": f"{names['bucket']}/builds/placeholder.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
        },
        serviceRole=f"arn:aws:iam::{ACCOUNT}:role/sage-production-codebuild",
    )
    names["project"] = f"{PROJECT}-{names['repo']}"
    return names


def settings_for(stack: dict[str, str], **kw: Any) -> BuildSpec:
    return replace(
        BuildSpec(repository="sage-backend", registry=HOST),
        builder="codebuild",
        codebuild_project=stack["project"],
        build_source_url=f"s3://{stack['bucket']}/builds/",
        registry=HOST,
        repository=stack["repo"],
        build_files={"busybox": "/bin/busybox"},
        **kw,
    )


def _manifest(sha: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": f"sha256:{hashlib.sha256(sha.encode()).hexdigest()}",
            },
            "layers": [],
        }
    )


def play_push_on_start(client: Any, repository: str, calls: list[dict[str, Any]]) -> None:
    """moto runs no buildspec: push what the buildspec pushes when the build starts."""

    def pushed(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)
        push_what_the_buildspec_pushes(repository, params)

    client.meta.events.register("before-parameter-build.codebuild.StartBuild", pushed)


def push_what_the_buildspec_pushes(repository: str, start_build: dict[str, Any]) -> None:
    """The image tagged with the build's IMAGE_TAG and latest, in moto's ECR (`start_build`:
    StartBuild's parameters)."""
    variables = {v["name"]: v["value"] for v in start_build["environmentVariablesOverride"]}
    ecr = aws.client("ecr")
    for tag in (variables["IMAGE_TAG"], "latest"):
        ecr.put_image(
            repositoryName=repository,
            imageManifest=_manifest(variables["IMAGE_TAG"]),
            imageTag=tag,
        )


def test_codebuild_sequence_on_moto(stack: dict[str, str], repo: tuple[Path, str]) -> None:
    git_dir, sha = repo
    codebuild = aws.client("codebuild")
    calls: list[dict[str, Any]] = []
    play_push_on_start(codebuild, stack["repo"], calls)
    clients = {"codebuild": codebuild}
    builder = open_builder(settings_for(stack))
    assert isinstance(builder, CodeBuildBuilder)
    builder.clients = lambda name: clients.get(name) or aws.client(name)
    lines: list[str] = []

    built, checks = builder.build(git_dir, sha, lines.append)

    # The source: the context at the commit plus the staged build file, as a zip in S3.
    key = f"builds/{sha}.zip"
    body = aws.client("s3").get_object(Bucket=stack["bucket"], Key=key)["Body"].read()
    local = git_dir / "source.zip"
    local.write_bytes(body)
    with zipfile.ZipFile(local) as archive:
        names = set(archive.namelist())
        start = archive.getinfo("rootfs/app/start")
    assert {
        "Dockerfile",
        "busybox",
        "rootfs/app/start",
        "prisma/migrations/migration_lock.toml",
    } <= names
    assert (start.external_attr >> 16) & 0o111, "the start script must stay executable"
    # start_build: the S3 source override and the image coordinates.
    (params,) = calls
    assert params["projectName"] == stack["project"]
    assert params["sourceTypeOverride"] == "S3"
    assert params["sourceLocationOverride"] == f"{stack['bucket']}/{key}"
    variables = {v["name"]: v["value"] for v in params["environmentVariablesOverride"]}
    assert variables == {
        "IMAGE_REPO_URI": f"{HOST}/{stack['repo']}",
        "IMAGE_TAG": sha,
        "DOCKERFILE": "Dockerfile",
        "VERSION": sha[:12],
    }
    # The digest: ECR's answer for the SHA tag.
    expected = aws.client("ecr").describe_images(
        repositoryName=stack["repo"], imageIds=[{"imageTag": sha}]
    )["imageDetails"][0]["imageDigest"]
    assert built.id == expected
    assert built.tags == (f"{HOST}/{stack['repo']}:{sha}", f"{HOST}/{stack['repo']}:latest")
    assert [c.name for c in checks] == ["size_under_limit", "non_root_user", "healthcheck_present"]
    assert all(c.passed for c in checks)
    assert any("phase BUILD: SUCCEEDED" in line for line in lines)
    pushed = builder.publish(sha, lines.append)
    assert pushed.reference == f"{HOST}/{stack['repo']}@{expected}"


def test_a_commit_already_in_ecr_is_not_built_again(stack: dict[str, str], repo: tuple[Path, str]):
    git_dir, sha = repo
    aws.client("ecr").put_image(
        repositoryName=stack["repo"], imageManifest=_manifest(sha), imageTag=sha
    )
    codebuild = aws.client("codebuild")
    calls: list[dict[str, Any]] = []
    codebuild.meta.events.register(
        "before-parameter-build.codebuild.StartBuild", lambda params, **_: calls.append(params)
    )
    builder = CodeBuildBuilder.from_settings(settings_for(stack))
    builder.clients = lambda name: codebuild if name == "codebuild" else aws.client(name)
    lines: list[str] = []
    built, _ = builder.build(git_dir, sha, lines.append)
    assert calls == []
    assert built.id.startswith("sha256:")
    assert any("already in ECR" in line for line in lines)


# --- Stubber: what a real build reports ----------------------------------------------------------

BUILD_ID = f"{PROJECT}:0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
LOGS = {"groupName": "/aws/codebuild/sage-production-backend", "streamName": "0f1e2d3c"}


def build_answer(status: str, phases: list[dict[str, Any]], logs: bool = True) -> dict[str, Any]:
    build: dict[str, Any] = {"id": BUILD_ID, "buildStatus": status, "phases": phases}
    if logs:
        build["logs"] = LOGS
    return {"builds": [build]}


def phase(kind: str, status: str | None = None, message: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"phaseType": kind}
    if status:
        entry.update(phaseStatus=status, durationInSeconds=3)
    if message:
        entry["contexts"] = [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": message}]
    return entry


def events(*lines: str, token: str) -> dict[str, Any]:
    return {
        "events": [{"timestamp": 0, "message": f"{line}\n", "ingestionTime": 0} for line in lines],
        "nextForwardToken": token,
        "nextBackwardToken": "b",
    }


def stubbed(service: str) -> Any:
    return boto3.session.Session().client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def stubs(env: str, stack: dict[str, str], repo: tuple[Path, str]) -> Iterator[dict[str, Any]]:
    """CodeBuild and CloudWatch Logs stubbed; S3 and ECR stay on moto."""
    codebuild, logs = stubbed("codebuild"), stubbed("logs")
    with Stubber(codebuild) as cb, Stubber(logs) as lg:
        cb.add_response("start_build", {"build": {"id": BUILD_ID}})
        fake = FakeTime()
        builder = CodeBuildBuilder.from_settings(
            settings_for(stack, build_timeout_s=60), poll_s=5.0, sleep=fake.sleep, clock=fake.clock
        )
        clients = {"codebuild": codebuild, "logs": logs}
        builder.clients = lambda name: clients.get(name) or aws.client(name)
        yield {"cb": cb, "logs": lg, "builder": builder, "fake": fake, "stack": stack, "repo": repo}
        cb.assert_no_pending_responses()
        lg.assert_no_pending_responses()


def expect_logs(lg: Stubber, page: dict[str, Any], token: str | None) -> None:
    params: dict[str, Any] = {
        "logGroupName": LOGS["groupName"],
        "logStreamName": LOGS["streamName"],
    }
    params.update({"nextToken": token} if token else {"startFromHead": True})
    lg.add_response("get_log_events", page, params)


def test_phases_and_log_lines_are_relayed_then_failure_names_the_phase(stubs) -> None:
    """Stubber: moto never fails a build nor writes its log stream."""
    cb, lg = stubs["cb"], stubs["logs"]
    running = [phase("SUBMITTED", "SUCCEEDED"), phase("PROVISIONING", "SUCCEEDED"), phase("BUILD")]
    cb.add_response("batch_get_builds", build_answer("IN_PROGRESS", running))
    expect_logs(lg, events("Step 1/9 : FROM scratch", "Step 2/9 : COPY busybox", token="t1"), None)
    expect_logs(lg, events(token="t1"), "t1")
    error = "Error while executing command: docker build. Reason: exit status 1"
    failed = [*running[:2], phase("BUILD", "FAILED", error), phase("POST_BUILD", "SKIPPED")]
    cb.add_response("batch_get_builds", build_answer("FAILED", failed))
    expect_logs(lg, events("image policy: the image runs as root (USER 'root')", token="t2"), "t1")
    expect_logs(lg, events(token="t2"), "t2")
    git_dir, sha = stubs["repo"]
    lines: list[str] = []

    with pytest.raises(ImageBuildError) as failure:
        stubs["builder"].build(git_dir, sha, lines.append)

    message = str(failure.value)
    assert f"CodeBuild build {BUILD_ID} FAILED in phase BUILD" in message
    assert "docker build. Reason: exit status 1" in message
    assert "| image policy: the image runs as root" in message
    assert failure.value.step == "BUILD"
    relayed = [line for line in lines if line.startswith(("phase ", "Step ", "image policy"))]
    assert relayed == [
        "phase SUBMITTED: SUCCEEDED in 3 s",
        "phase PROVISIONING: SUCCEEDED in 3 s",
        "Step 1/9 : FROM scratch",
        "Step 2/9 : COPY busybox",
        "phase BUILD: FAILED in 3 s; Error while executing command: docker build. Reason: exit status 1",
        "phase POST_BUILD: SKIPPED in 3 s",
        "image policy: the image runs as root (USER 'root')",
    ]


@pytest.mark.parametrize("status", ["TIMED_OUT", "STOPPED", "FAULT"])
def test_final_statuses_other_than_succeeded_fail(stubs, status: str) -> None:
    """Stubber: moto's builds always succeed."""
    stubs["cb"].add_response(
        "batch_get_builds", build_answer(status, [phase("BUILD", status)], logs=False)
    )
    git_dir, sha = stubs["repo"]
    with pytest.raises(ImageBuildError, match=f"{BUILD_ID} {status} in phase BUILD"):
        stubs["builder"].build(git_dir, sha, lambda _line: None)


def test_a_build_running_past_the_timeout_is_stopped(stubs) -> None:
    """Stubber: a build that stays IN_PROGRESS (moto completes it at once) and stop_build."""
    cb = stubs["cb"]
    for _ in range(13):  # t = 0, 5, ..., 60
        cb.add_response(
            "batch_get_builds", build_answer("IN_PROGRESS", [phase("BUILD")], logs=False)
        )
    cb.add_response(
        "stop_build", {"build": {"id": BUILD_ID, "buildStatus": "STOPPED"}}, {"id": BUILD_ID}
    )
    git_dir, sha = stubs["repo"]
    with pytest.raises(ImageBuildError, match="still running at the timeout, so it was stopped"):
        stubs["builder"].build(git_dir, sha, lambda _line: None)
    assert stubs["fake"].now == 60


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"codebuild_project": None}, "SAGE_OPS_CODEBUILD_PROJECT"),
        ({"build_source_url": "file:///tmp/x"}, "SAGE_OPS_BUILD_SOURCE_URL"),
        ({"registry": "127.0.0.1:5000"}, "must be ACCOUNT.dkr.ecr"),
    ],
)
def test_incomplete_codebuild_settings_are_refused(change: dict[str, Any], message: str) -> None:
    base = settings_for({"project": PROJECT, "bucket": "b", "repo": "sage-backend"})
    with pytest.raises(ConfigError, match=message):
        open_builder(replace(base, **change))


def test_docker_is_the_default_builder() -> None:
    from sage_ops.platforms.builders.docker_builder import DockerBuilder

    assert isinstance(
        open_builder(BuildSpec(repository="sage-backend", registry="127.0.0.1:5000")), DockerBuilder
    )
