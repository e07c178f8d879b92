"""The migrations resource: which migrations to apply to which database, and how carefully."""

from collections.abc import Callable

from dagster import ConfigurableResource

from sage_ops.embedded import embedded_target
from sage_ops.env_settings import Parse, integer, one_of, read
from sage_ops.errors import ConfigError
from sage_ops.migrations.discovery import DEFAULT_MIGRATIONS_DIR
from sage_ops.migrations.guarded import Policy, SqlApplier
from sage_ops.migrations.prisma_runner import PrismaRunner
from sage_ops.migrations.runner import RunOptions
from sage_ops.platforms.targets import LOCAL_ONE_OFF
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
    # "sql": sage_ops applies the files; "prisma": `npx prisma migrate deploy` run once on
    # runner_target, a platform URL (sage_ops.platforms.targets): the local Engine by default.
    runner: str = "sql"
    runner_target: str = LOCAL_ONE_OFF
    # What runs Prisma there: the platform's release (an image, or an ECS task definition);
    # empty: what the target serves now. A deploy runs it on the environment's target, in the
    # commit's image.
    runner_release: str = ""
    runner_timeout_s: int = 900

    def target(self) -> PgTarget:
        target = PgTarget.from_env(self.database_url_env)
        if target is not None:
            return target
        if self.database_url_env == "DATABASE_URL":
            return embedded_target()  # the embedded default, as for backups
        raise ConfigError(f"{self.database_url_env} is not set")

    def policy(self, deploy_target: str = "", image: Callable[[], str] = str) -> Policy:
        """The one configuration of every guarded migration, manual or a deploy's. A deploy
        passes its environment's target and how to find its pushed image (looked up only for
        Prisma): Prisma then runs once there, in that image, whose migrations are the commit's."""
        if self.runner == "sql":
            options = RunOptions(self.lock_timeout, self.statement_timeout, self.lock_retries)
            return Policy(self.allow, SqlApplier(options))
        if self.runner == "prisma":
            platform = deploy_target or self.runner_target
            prisma = PrismaRunner(platform, self.runner_release, self.runner_timeout_s, image())
            return Policy(self.allow, prisma)
        raise ConfigError(f"migrations runner must be {' or '.join(RUNNERS)} (got {self.runner!r})")

    @classmethod
    def from_env(cls) -> "MigrationConfig":
        """The one place migration settings are read from the environment (names in _ENV), so
        a deploy launched by the sensor applies the runner and timeouts an operator set."""
        return cls(**{"migrations_dir": DEFAULT_MIGRATIONS_DIR, **read(_ENV, _PARSE)})


RUNNERS = ("sql", "prisma")
_ENV = {
    "migrations_dir": "SAGE_OPS_MIGRATIONS_DIR",
    "lock_timeout": "SAGE_OPS_LOCK_TIMEOUT",
    "statement_timeout": "SAGE_OPS_STATEMENT_TIMEOUT",
    "lock_retries": "SAGE_OPS_LOCK_RETRIES",
    "runner": "SAGE_OPS_MIGRATIONS_RUNNER",
    "runner_target": "SAGE_OPS_MIGRATIONS_RUNNER_TARGET",
    "runner_release": "SAGE_OPS_MIGRATIONS_RUNNER_RELEASE",
    "runner_timeout_s": "SAGE_OPS_MIGRATIONS_RUNNER_TIMEOUT",
}
_PARSE: dict[str, Parse] = {
    "lock_retries": integer,
    "runner": one_of("SAGE_OPS_MIGRATIONS_RUNNER", RUNNERS),
    "runner_timeout_s": integer,
}
