"""The backup resource: which database, where its backups go, how they are verified and kept.

Built from the environment; secrets stay EnvVar references, so the UI shows names, not values.
"""

import os

from dagster import ConfigurableResource, EnvVar
from pydantic import model_validator

from sage_ops.backups.compress import DEFAULT_LEVEL
from sage_ops.settings import Settings


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


def _secret(name: str) -> str | None:
    # An EnvVar is resolved in the run, and the UI shows its name, never its value.
    return EnvVar(name) if os.environ.get(name) else None
