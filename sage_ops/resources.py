"""Dagster resources, built from the environment; secrets stay EnvVar references."""

import contextlib
import os
from collections.abc import Iterator

from dagster import ConfigurableResource, EnvVar, Failure

from sage_ops.errors import SageOpsError
from sage_ops.settings import Settings


class BackupConfig(ConfigurableResource):
    """Which database to back up, where to store it, and how to verify and retain it."""

    database_url: str | None = None
    backup_url: str
    keep: int = 7
    format: str = "plain"
    compression_level: int = 2
    verify_level: str = "full"
    scratch_database_url: str | None = None

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url,
            backup_url=self.backup_url,
            backup_keep=self.keep,
            backup_format=self.format,
            compression_level=self.compression_level,
            verify_level=self.verify_level,
            scratch_database_url=self.scratch_database_url,
        )

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
        )


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
