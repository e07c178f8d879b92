"""The `codebuild` builder: an AWS CodeBuild project builds the commit and pushes it to ECR.

Flow: the commit's build context (git archive, plus SAGE_OPS_BUILD_FILES) is zipped and uploaded
to SAGE_OPS_BUILD_SOURCE_URL (s3://bucket/prefix/<sha>.zip, under the bucket's default
encryption); `start_build` runs the project on that zip (sourceTypeOverride S3) with the image
coordinates as environment variables; the project's buildspec (infra/codebuild/buildspec.yml)
builds the Dockerfile, refuses a root or HEALTHCHECK-less image, and pushes `<sha>` and `latest`.
sage_ops relays the build's phases and CloudWatch log lines into the run and follows it to
SUCCEEDED, FAILED, FAULT, TIMED_OUT or STOPPED; past SAGE_OPS_BUILD_TIMEOUT it stops the build.
The digest is then read from ECR by the SHA tag (immutable), never from `latest`.
"""

from __future__ import annotations

import math
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.errors import ConfigError
from sage_ops.platforms import aws
from sage_ops.platforms.builders.spec import BuildSpec
from sage_ops.platforms.deployer import Log
from sage_ops.platforms.docker_engine.image import (
    REVISION_LABEL,
    BuiltImage,
    ImageBuildError,
    ImageCheck,
)
from sage_ops.platforms.git.source import export_tree
from sage_ops.platforms.registries.ecr import ECR_HOST, find_image, image_digest
from sage_ops.platforms.registries.push import PushedImage

SUCCEEDED = "SUCCEEDED"
FINAL = frozenset({"FAILED", "FAULT", "TIMED_OUT", "STOPPED"})
LOG_TAIL_LINES = 15
BUILDSPEC = "infra/codebuild/buildspec.yml"


@dataclass
class CodeBuildBuilder:
    project: str
    bucket: str
    prefix: str
    registry: str  # ACCOUNT.dkr.ecr.REGION.amazonaws.com
    settings: BuildSpec
    clients: Callable[[str], Any] = aws.client  # service name -> client (tests pass stubs)
    poll_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def from_settings(cls, settings: BuildSpec, **kw: Any) -> CodeBuildBuilder:
        if not settings.codebuild_project:
            raise ConfigError("SAGE_OPS_BUILDER=codebuild needs SAGE_OPS_CODEBUILD_PROJECT")
        source = urlsplit(settings.build_source_url or "")
        if source.scheme != "s3" or not source.netloc:
            raise ConfigError(
                "SAGE_OPS_BUILDER=codebuild needs SAGE_OPS_BUILD_SOURCE_URL=s3://bucket/prefix/ "
                f"(got {settings.build_source_url!r})"
            )
        if not ECR_HOST.match(settings.registry.lower()):
            raise ConfigError(
                "SAGE_OPS_BUILDER=codebuild pushes to ECR: SAGE_OPS_REGISTRY must be "
                f"ACCOUNT.dkr.ecr.REGION.amazonaws.com (got {settings.registry!r})"
            )
        prefix = source.path.strip("/")
        return cls(
            project=settings.codebuild_project,
            bucket=source.netloc,
            prefix=f"{prefix}/" if prefix else "",
            registry=settings.registry.lower(),
            settings=settings,
            **kw,
        )

    @property
    def repository_uri(self) -> str:
        return f"{self.registry}/{self.settings.repository}"

    def build(self, git_dir: Path, sha: str, log: Log) -> tuple[BuiltImage, list[ImageCheck]]:
        started = self.clock()
        image = find_image(self.settings.repository, sha, self.registry, self.clients("ecr"))
        if image is not None:  # a re-run: the SHA tag is immutable, a rebuild could not push
            log(f"{self.repository_uri}:{sha} is already in ECR ({image.digest}): not built again")
        else:
            location = self._upload_source(git_dir, sha, log)
            build_id = self._start(location, sha, log)
            _Follower(self, build_id, log).wait(started + self.settings.build_timeout_s)
            image = image_digest(self.settings.repository, sha, self.registry, self.clients("ecr"))
        built = BuiltImage(
            id=image.digest,
            tags=(f"{self.repository_uri}:{sha}", f"{self.repository_uri}:latest"),
            size_bytes=image.size_bytes,
            labels={REVISION_LABEL: sha},
            build_seconds=round(self.clock() - started, 3),
        )
        mb = image.size_bytes / 1e6
        log(f"CodeBuild pushed {self.repository_uri}@{image.digest} ({mb:.1f} MB in ECR)")
        return built, self._checks(image.size_bytes)

    def publish(self, sha: str, log: Log) -> PushedImage:
        """CodeBuild already pushed; the digest is ECR's answer for the SHA tag."""
        image = image_digest(self.settings.repository, sha, self.registry, self.clients("ecr"))
        reference = f"{self.repository_uri}@{image.digest}"
        log(f"{self.repository_uri}:{sha} is {reference}")
        return PushedImage(
            reference,
            image.digest,
            (f"{self.repository_uri}:{sha}", f"{self.repository_uri}:latest"),
        )

    def _checks(self, size: int) -> list[ImageCheck]:
        limit = self.settings.image_max_mb * 1_000_000
        enforced = f"enforced during the build by {BUILDSPEC} (the build fails otherwise)"
        return [
            ImageCheck(
                "size_under_limit",
                size <= limit,
                f"{size / 1e6:.1f} MB compressed in ECR (limit {limit / 1e6:.1f} MB)",
            ),
            ImageCheck("non_root_user", True, enforced),
            ImageCheck("healthcheck_present", True, enforced),
        ]

    def _upload_source(self, git_dir: Path, sha: str, log: Log) -> str:
        """Zip the build context at `sha` and upload it; returns `bucket/key` for CodeBuild."""
        key = f"{self.prefix}{sha}.zip"
        with tempfile.TemporaryDirectory(prefix="sage_ops_codebuild_") as tmp:
            context = export_tree(git_dir, sha, self.settings.context_path, Path(tmp) / "tree")
            archive = zip_context(context, self.settings.build_files, Path(tmp) / "source.zip")
            try:
                self.clients("s3").upload_file(str(archive), self.bucket, key)
            except (ClientError, BotoCoreError) as exc:
                raise ImageBuildError(
                    f"cannot upload the build source to s3://{self.bucket}/{key}: "
                    f"{aws.error_text(exc)}"
                ) from None
            size = archive.stat().st_size
        log(f"uploaded the source of {sha[:12]} to s3://{self.bucket}/{key} ({size / 1e6:.1f} MB)")
        return f"{self.bucket}/{key}"

    def _start(self, location: str, sha: str, log: Log) -> str:
        variables = {
            "IMAGE_REPO_URI": self.repository_uri,
            "IMAGE_TAG": sha,
            "DOCKERFILE": self.settings.dockerfile,
            "VERSION": sha[:12],
        }
        try:
            answer = self.clients("codebuild").start_build(
                projectName=self.project,
                sourceTypeOverride="S3",
                sourceLocationOverride=location,
                environmentVariablesOverride=[
                    {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()
                ],
                timeoutInMinutesOverride=max(5, math.ceil(self.settings.build_timeout_s / 60)),
            )
        except (ClientError, BotoCoreError) as exc:
            raise ImageBuildError(
                f"CodeBuild project {self.project!r} did not start: {aws.error_text(exc)}"
            ) from None
        build_id = str(answer["build"]["id"])
        log(f"CodeBuild build {build_id} started for {sha[:12]}")
        return build_id


def zip_context(context: Path, extra_files: Mapping[str, str], dest: Path) -> Path:
    """The context as a zip (modes kept: CodeBuild unpacks executables as executables).

    `extra_files` (SAGE_OPS_BUILD_FILES) are added like the docker builder stages them: only
    where the commit has no file of that name.
    """
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        names = set()
        for path in sorted(context.rglob("*")):
            if path.is_file():
                name = path.relative_to(context).as_posix()
                archive.write(path, name)
                names.add(name)
        for name, host_path in extra_files.items():
            if name not in names:
                if not Path(host_path).is_file():
                    raise ImageBuildError(f"context file {name}: {host_path} does not exist")
                archive.write(host_path, name)
    return dest


@dataclass
class _Follower:
    """Follows one build: relays new phases and log lines, raises unless it SUCCEEDED."""

    builder: CodeBuildBuilder
    build_id: str
    log: Log
    phases: set[tuple[str, str]] = field(default_factory=set)
    log_token: str | None = None
    tail: list[str] = field(default_factory=list)

    def wait(self, deadline: float) -> dict[str, Any]:
        codebuild = self.builder.clients("codebuild")
        while True:
            build = self._describe(codebuild)
            self._relay_phases(build)
            self._relay_logs(build)
            status = build.get("buildStatus", "IN_PROGRESS")
            if status == SUCCEEDED:
                return build
            if status in FINAL:
                raise self._failure(build, status)
            remaining = deadline - self.builder.clock()
            if remaining <= 0:
                self._stop(codebuild)
                raise self._failure(build, "still running at the timeout, so it was stopped")
            self.builder.sleep(min(self.builder.poll_s, remaining))

    def _describe(self, codebuild: Any) -> dict[str, Any]:
        try:
            builds = codebuild.batch_get_builds(ids=[self.build_id]).get("builds") or []
        except (ClientError, BotoCoreError) as exc:
            raise ImageBuildError(
                f"CodeBuild build {self.build_id}: {aws.error_text(exc)}"
            ) from None
        if not builds:
            raise ImageBuildError(f"CodeBuild does not know build {self.build_id}")
        return dict(builds[0])

    def _stop(self, codebuild: Any) -> None:
        try:
            codebuild.stop_build(id=self.build_id)
        except (ClientError, BotoCoreError) as exc:
            self.log(f"stop_build {self.build_id} failed: {aws.error_text(exc)}")

    def _relay_phases(self, build: Mapping[str, Any]) -> None:
        for phase in build.get("phases", []):
            kind, status = phase.get("phaseType", "?"), phase.get("phaseStatus")
            if status is None or (kind, status) in self.phases:
                continue  # a phase without status is still running
            self.phases.add((kind, status))
            took = phase.get("durationInSeconds")
            line = f"phase {kind}: {status}" + (f" in {took} s" if took is not None else "")
            messages = [c.get("message") for c in phase.get("contexts", []) if c.get("message")]
            self.log("; ".join([line, *messages]))

    def _relay_logs(self, build: Mapping[str, Any]) -> None:
        """New lines of the build's CloudWatch Logs stream (it appears once the build runs)."""
        where = build.get("logs") or {}
        group, stream = where.get("groupName"), where.get("streamName")
        if not group or not stream:
            return
        logs = self.builder.clients("logs")
        while True:
            args: dict[str, Any] = {"logGroupName": group, "logStreamName": stream}
            args.update(
                {"nextToken": self.log_token} if self.log_token else {"startFromHead": True}
            )
            try:
                page = logs.get_log_events(**args)
            except (ClientError, BotoCoreError) as exc:
                if aws.error_code(exc) != "ResourceNotFoundException":
                    self.log(f"cannot read the build log {group}/{stream}: {aws.error_text(exc)}")
                return
            for event in page.get("events", []):
                line = str(event.get("message", "")).rstrip("\n")
                self.tail = [*self.tail[-(LOG_TAIL_LINES - 1) :], line]
                self.log(line)
            token = page.get("nextForwardToken")
            if not page.get("events") or token == self.log_token:
                self.log_token = token or self.log_token
                return
            self.log_token = token

    def _failure(self, build: Mapping[str, Any], status: str) -> ImageBuildError:
        failed = [
            p for p in build.get("phases", []) if p.get("phaseStatus") not in (None, SUCCEEDED)
        ]
        where = f" in phase {failed[0].get('phaseType')}" if failed else ""
        reasons = [c["message"] for p in failed for c in p.get("contexts", []) if c.get("message")]
        message = f"CodeBuild build {self.build_id} {status}{where}"
        if reasons:
            message += f": {'; '.join(reasons)}"
        if self.tail:
            message += "\nlast build output:\n" + "\n".join(
                f"  | {line}" for line in self.tail[-8:]
            )
        return ImageBuildError(
            message, failed[0].get("phaseType") if failed else None, tuple(self.tail)
        )
