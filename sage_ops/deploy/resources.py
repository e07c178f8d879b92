"""The deploy resource, which is its settings: where pushes come from, where images go, targets."""

from dagster import ConfigurableResource

from sage_ops.env_settings import Parse, flag, integer, listed, one_of, read
from sage_ops.errors import ConfigError
from sage_ops.lineage.names import ENVIRONMENTS
from sage_ops.platforms.builders.spec import BuildSpec
from sage_ops.platforms.targets import local_service
from sage_ops.postgres import PgTarget


class DeployConfig(ConfigurableResource):
    """Where pushes come from, how the image is built and pushed, and where it is deployed."""

    repo: str | None = None  # local path or remote URL; None: the sensor skips
    repo_credential: str | None = None  # Secrets Manager id of its deploy key or token
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

    def database(self, environment: str) -> PgTarget | None:
        """The environment's database, or None when its variable is unset (no migrations)."""
        return PgTarget.from_env(self.database_env(environment))

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
        return cls(**read(_ENV, _PARSE))


def _known(environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            f"environment must be one of {', '.join(ENVIRONMENTS)} (got {environment!r})"
        )
    return environment


_ENV = {
    "repo": "SAGE_OPS_REPO",
    "repo_credential": "SAGE_OPS_REPO_CREDENTIAL_SECRET",
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


def _pairs(raw: str) -> dict[str, str]:
    """`name=/host/path,other=/path` -> {"name": "/host/path", ...}"""
    pairs = {}
    for item in listed(raw):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"SAGE_OPS_BUILD_FILES entries are name=/host/path (got {item!r})")
        pairs[name] = path
    return pairs


_PARSE: dict[str, Parse] = {
    "repo": lambda raw: raw or None,
    "repo_credential": lambda raw: raw or None,
    "builder": one_of("SAGE_OPS_BUILDER", BUILDERS),
    "codebuild_project": lambda raw: raw or None,
    "build_source_url": lambda raw: raw or None,
    "build_timeout_s": integer,
    "watch_paths": listed,
    "build_files": _pairs,
    "create_repository": flag,
    "require_approval": flag,
    "image_max_mb": integer,
    "deploy_timeout_s": integer,
}
