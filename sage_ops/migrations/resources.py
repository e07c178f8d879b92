"""The migrations resource: which migrations to apply to which database, and how carefully."""

import os

from dagster import ConfigurableResource

from sage_ops.embedded import embedded_target
from sage_ops.errors import ConfigError
from sage_ops.migrations.discovery import DEFAULT_MIGRATIONS_DIR
from sage_ops.migrations.runner import RunOptions
from sage_ops.postgres import PgTarget


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
            return embedded_target()  # the embedded default, as for backups
        raise ConfigError(f"{self.database_url_env} is not set")

    def options(self) -> RunOptions:
        return RunOptions(self.lock_timeout, self.statement_timeout, self.lock_retries)

    @classmethod
    def from_env(cls) -> "MigrationConfig":
        return cls(migrations_dir=os.environ.get("SAGE_OPS_MIGRATIONS_DIR", DEFAULT_MIGRATIONS_DIR))
