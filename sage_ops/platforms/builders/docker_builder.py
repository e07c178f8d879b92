"""The `docker` builder: build on the local Docker Engine, push from it (ECR login when ECR)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sage_ops.platforms.builders.spec import BuildSpec
from sage_ops.platforms.deployer import Log
from sage_ops.platforms.docker_engine.image import BuiltImage, ImageCheck, build_image, check_image
from sage_ops.platforms.git.source import export_tree
from sage_ops.platforms.registries.ecr import ecr_credentials, ensure_repository, is_ecr_host
from sage_ops.platforms.registries.push import PushedImage, push_image


@dataclass(frozen=True)
class DockerBuilder:
    settings: BuildSpec

    def build(self, git_dir: Path, sha: str, log: Log) -> tuple[BuiltImage, list[ImageCheck]]:
        """docker build of the backend at `sha`, then the image checks (size, user, HEALTHCHECK)."""
        s = self.settings
        with tempfile.TemporaryDirectory(prefix="sage_ops_build_") as tmp:
            context = export_tree(git_dir, sha, s.context_path, Path(tmp))
            built = build_image(
                context,
                s.dockerfile,
                s.repository,
                sha,
                {"VERSION": sha[:12]},
                log,
                context_files=s.build_files,
            )
        return built, check_image(built.id, s.image_max_mb * 1_000_000)

    def publish(self, sha: str, log: Log) -> PushedImage:
        """Push `<repository>:<sha>` to the registry (ECR credentials fetched when it is ECR)."""
        s = self.settings
        credentials = None
        host = urlsplit(f"//{s.registry}").hostname or s.registry
        if is_ecr_host(host):
            ensure_repository(
                s.repository, s.create_repository, registry_host=host, mutable_tags=("latest",)
            )
            username, password = ecr_credentials(host)
            credentials = _Credentials(username, password)
        return push_image(f"{s.repository}:{sha}", s.registry, s.repository, sha, credentials, log)


@dataclass(frozen=True)
class _Credentials:
    username: str
    password: str
