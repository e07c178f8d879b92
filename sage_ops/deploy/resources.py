"""The deploy resource, which is its settings: where pushes come from, where images go, targets."""

import os
from collections.abc import Callable
from typing import Any

from dagster import ConfigurableResource

from sage_ops.errors import ConfigError
from sage_ops.lineage.names import ENVIRONMENTS
from sage_ops.platforms.builders.spec import BuildSpec
from sage_ops.platforms.targets import local_service


class DeployConfig(ConfigurableResource):
    """Where pushes come from, how the image is built and pushed, and where it is deployed."""

    repo: str | None = None  # local path or remote URL; None: the sensor skips
    branch: str = "main"
    watch_paths: list[str] = ["apps/backend/**"]
    context_path: str = "apps/backend"  # directory of the Dockerfile, inside the repository
    dockerfile: str = "Dockerfile"
    migrations_path: str = "prisma/migrations"  # inside the build context
    build_files: dict[str, str] = {}  # staged into the context
    registry: str = "127.0.0.1:5000"
    repository: str = "sage-backend"
    create_repository: bool = False
    image_max_mb: int = 200
    staging_target: str = local_service("sage-backend-staging")
    production_target: str = local_service("sage-backend-production")
    # Env vars holding each environment's database URL; an unset var means no migrations there.
    staging_database_url_env: str = "STAGING_DATABASE_URL"
    production_database_url_env: str = "PRODUCTION_DATABASE_URL"
    require_approval: bool = False
    deploy_timeout_s: int = 600
    builder: str = "docker"  # docker (the local Engine) or codebuild (sage_ops.platforms)
    codebuild_project: str | None = None
    build_source_url: str | None = None  # s3://bucket/prefix/ for the commit's source zip
    build_timeout_s: int = 1800

    def target(self, environment: str) -> str:
        return str(getattr(self, f"{_known(environment)}_target"))

    def database_env(self, environment: str) -> str:
        return str(getattr(self, f"{_known(environment)}_database_url_env"))

    def build_spec(self) -> BuildSpec:
        return BuildSpec(
            repository=self.repository,
            registry=self.registry,
            context_path=self.context_path,
            dockerfile=self.dockerfile,
            build_files=self.build_files,
            image_max_mb=self.image_max_mb,
            create_repository=self.create_repository,
            builder=self.builder,
            codebuild_project=self.codebuild_project,
            build_source_url=self.build_source_url,
            build_timeout_s=self.build_timeout_s,
        )

    @classmethod
    def from_env(cls) -> "DeployConfig":
        """The one place deploy settings are read from the environment (names in _ENV)."""
        values = {name: os.environ[var] for name, var in _ENV.items() if var in os.environ}
        typed: dict[str, Any] = {name: _PARSE.get(name, str)(raw) for name, raw in values.items()}
        return cls(**typed)


def _known(environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            f"environment must be one of {', '.join(ENVIRONMENTS)} (got {environment!r})"
        )
    return environment


_ENV = {
    "repo": "SAGE_OPS_REPO",
    "branch": "SAGE_OPS_BRANCH",
    "watch_paths": "SAGE_OPS_WATCH_PATHS",
    "context_path": "SAGE_OPS_BUILD_CONTEXT",
    "dockerfile": "SAGE_OPS_DOCKERFILE",
    "migrations_path": "SAGE_OPS_BACKEND_MIGRATIONS",
    "build_files": "SAGE_OPS_BUILD_FILES",
    "registry": "SAGE_OPS_REGISTRY",
    "repository": "SAGE_OPS_IMAGE_REPOSITORY",
    "create_repository": "SAGE_OPS_CREATE_REPOSITORY",
    "image_max_mb": "SAGE_OPS_IMAGE_MAX_MB",
    "staging_target": "SAGE_OPS_STAGING_TARGET",
    "production_target": "SAGE_OPS_PRODUCTION_TARGET",
    "staging_database_url_env": "SAGE_OPS_STAGING_DATABASE_URL_ENV",
    "production_database_url_env": "SAGE_OPS_PRODUCTION_DATABASE_URL_ENV",
    "require_approval": "SAGE_OPS_REQUIRE_APPROVAL",
    "deploy_timeout_s": "SAGE_OPS_DEPLOY_TIMEOUT",
    "builder": "SAGE_OPS_BUILDER",
    "codebuild_project": "SAGE_OPS_CODEBUILD_PROJECT",
    "build_source_url": "SAGE_OPS_BUILD_SOURCE_URL",
    "build_timeout_s": "SAGE_OPS_BUILD_TIMEOUT",
}
BUILDERS = ("docker", "codebuild")


def _list(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


def _pairs(raw: str) -> dict[str, str]:
    """`name=/host/path,other=/path` -> {"name": "/host/path", ...}"""
    pairs = {}
    for item in _list(raw):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"SAGE_OPS_BUILD_FILES entries are name=/host/path (got {item!r})")
        pairs[name] = path
    return pairs


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"expected true or false (got {raw!r})")
    return value in ("1", "true", "yes")


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"expected an integer (got {raw!r})") from None


def _builder(raw: str) -> str:
    if raw not in BUILDERS:
        raise ConfigError(f"SAGE_OPS_BUILDER must be one of {', '.join(BUILDERS)} (got {raw!r})")
    return raw


_PARSE: dict[str, Callable[[str], Any]] = {
    "repo": lambda raw: raw or None,
    "builder": _builder,
    "codebuild_project": lambda raw: raw or None,
    "build_source_url": lambda raw: raw or None,
    "build_timeout_s": _int,
    "watch_paths": _list,
    "build_files": _pairs,
    "create_repository": _flag,
    "require_approval": _flag,
    "image_max_mb": _int,
    "deploy_timeout_s": _int,
}
