"""Image builders behind one small interface, chosen by SAGE_OPS_BUILDER like stores and targets.

`docker` builds on a local Docker Engine and pushes from there (development, swarm); `codebuild`
hands the commit's source to an AWS CodeBuild project that builds and pushes on its own (ECS
Fargate has no Docker daemon). Either way the result is the same pair the deploy assets record:
a BuiltImage with its policy checks, then a PushedImage whose digest deployments use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sage_ops.platforms.builders.spec import BuildSpec
from sage_ops.platforms.deployer import Log
from sage_ops.platforms.docker_engine.image import BuiltImage, ImageCheck
from sage_ops.platforms.registries.push import PushedImage


class Builder(Protocol):
    def build(self, git_dir: Path, sha: str, log: Log) -> tuple[BuiltImage, list[ImageCheck]]:
        """Build the backend at commit `sha` of the repository in `git_dir`, and check it."""

    def publish(self, sha: str, log: Log) -> PushedImage:
        """The image of `sha` in the registry, by its immutable digest."""


def open_builder(settings: BuildSpec) -> Builder:
    if settings.builder == "codebuild":
        from sage_ops.platforms.builders.codebuild import CodeBuildBuilder

        return CodeBuildBuilder.from_settings(settings)
    from sage_ops.platforms.builders.docker_builder import DockerBuilder

    return DockerBuilder(settings)
