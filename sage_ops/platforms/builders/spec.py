"""What an image build needs: the one value the deploy capability hands its builder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BuildSpec:
    """What a build needs, built once from the deploy resource (DeployConfig.build_spec)."""

    repository: str  # image repository name, e.g. sage-backend
    registry: str  # host[:port] the image is pushed to
    context_path: str = "apps/backend"  # the Dockerfile's directory inside the repository
    dockerfile: str = "Dockerfile"
    build_files: Mapping[str, str] = field(default_factory=dict)  # staged into the context
    image_max_mb: int = 200
    create_repository: bool = False
    builder: str = "docker"
    codebuild_project: str | None = None
    build_source_url: str | None = None  # s3://bucket/prefix/ for the commit's source zip
    build_timeout_s: int = 1800
