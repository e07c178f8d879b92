"""Dagster resources, built from the environment; secrets stay EnvVar references."""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict

from dagster import ConfigurableResource, EnvVar, Failure
from pydantic import model_validator

from sage_ops.backups.compress import DEFAULT_LEVEL
from sage_ops.deploy.settings import DeploySettings
from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.migrations.discovery import DEFAULT_MIGRATIONS_DIR
from sage_ops.migrations.runner import RunOptions
from sage_ops.postgres import PgTarget
from sage_ops.settings import Settings

OWNERS = ["team:platform"]  # who is paged for these assets; shown in the UI
DATABASE_POOL = "sage_ops_database"
# Runs carrying this tag share a concurrency limit of 1 (dagster.yaml): backups and migrations.
DATABASE_WRITER_TAG = {"sage_ops/database-writer": "primary"}


class BackupConfig(ConfigurableResource):
    """Which database to back up, where to store it, and how to verify and retain it."""

    database_url: str | None = None
    backup_url: str
    keep: int = 7
    format: str = "plain"
    compression_level: int = DEFAULT_LEVEL
    verify_level: str = "full"
    scratch_database_url: str | None = None
    scratch: str | None = None  # "embedded": a PostgreSQL 16 started in the run's own task

    @model_validator(mode="after")
    def _allowed_values(self) -> "BackupConfig":
        self.settings()  # refuses a value that would fail at 03:00, naming it
        return self

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url,
            backup_url=self.backup_url,
            backup_keep=self.keep,
            backup_format=self.format,
            compression_level=self.compression_level,
            verify_level=self.verify_level,
            scratch_database_url=self.scratch_database_url,
            scratch=self.scratch,
        ).checked()

    @classmethod
    def from_env(cls) -> "BackupConfig":
        s = Settings.from_env()
        return cls(
            database_url=_secret("DATABASE_URL"),
            backup_url=s.backup_url,
            keep=s.backup_keep,
            format=s.backup_format,
            compression_level=s.compression_level,
            verify_level=s.verify_level,
            scratch_database_url=_secret("SAGE_OPS_SCRATCH_DATABASE_URL"),
            scratch=s.scratch,
        )


class MigrationConfig(ConfigurableResource):
    """Which migrations to apply to which database, and how carefully."""

    migrations_dir: str
    # Name of the env var holding the target URL: URLs carry passwords, run config must not.
    database_url_env: str = "DATABASE_URL"
    lock_timeout: str = "5s"
    statement_timeout: str = "15min"
    lock_retries: int = 3
    # Blocking lint rules allowed per migration, e.g. {"20261101000003_drop_x": ["ban-drop-table"]}
    allow: dict[str, list[str]] = {}
    # "sql": sage_ops applies the files; "prisma-docker" / "prisma-ecs": `npx prisma migrate
    # deploy` in runner_image (local Docker) or as a one-off task of ecs_task_definition.
    runner: str = "sql"
    runner_image: str = ""
    runner_timeout_s: int = 900
    ecs_cluster: str = ""
    ecs_task_definition: str = ""
    ecs_container: str = ""
    ecs_service: str = ""

    def target(self) -> PgTarget:
        url = os.environ.get(self.database_url_env)
        if url:
            return PgTarget.from_url(url, self.database_url_env)
        if self.database_url_env == "DATABASE_URL":
            return Settings.from_env().target()  # the embedded default, as for backups
        raise ConfigError(f"{self.database_url_env} is not set")

    def options(self) -> RunOptions:
        return RunOptions(self.lock_timeout, self.statement_timeout, self.lock_retries)

    @classmethod
    def from_env(cls) -> "MigrationConfig":
        return cls(migrations_dir=os.environ.get("SAGE_OPS_MIGRATIONS_DIR", DEFAULT_MIGRATIONS_DIR))


class DeployConfig(ConfigurableResource):
    """Where pushes come from, how the image is built and pushed, and where it is deployed."""

    repo: str | None = None
    branch: str = "main"
    watch_paths: list[str] = ["apps/backend/**"]
    context_path: str = "apps/backend"
    dockerfile: str = "Dockerfile"
    migrations_path: str = "prisma/migrations"
    build_files: dict[str, str] = {}
    registry: str = "127.0.0.1:5000"
    repository: str = "sage-backend"
    create_repository: bool = False
    image_max_mb: int = 200
    staging_target: str = "swarm://sage-backend-staging"
    production_target: str = "swarm://sage-backend-production"
    staging_database_url_env: str = "STAGING_DATABASE_URL"
    production_database_url_env: str = "PRODUCTION_DATABASE_URL"
    require_approval: bool = False
    deploy_timeout_s: int = 600
    builder: str = "docker"
    codebuild_project: str | None = None
    build_source_url: str | None = None
    build_timeout_s: int = 1800

    def settings(self) -> DeploySettings:
        values = self.model_dump()
        return DeploySettings(**{**values, "watch_paths": tuple(values["watch_paths"])})

    @classmethod
    def from_env(cls) -> "DeployConfig":
        values = asdict(DeploySettings.from_env())
        return cls(**{**values, "watch_paths": list(values["watch_paths"])})


def _secret(name: str) -> str | None:
    # An EnvVar is resolved in the run, and the UI shows its name, never its value.
    return EnvVar(name) if os.environ.get(name) else None


@contextlib.contextmanager
def operator_errors() -> Iterator[None]:
    """Fail the step with the operator's one-line message instead of a stack trace."""
    try:
        yield
    except SageOpsError as exc:
        raise Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from None
