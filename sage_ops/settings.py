"""Every setting sage_ops reads from the environment, its default, and whether it is secret."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from sage_ops.backups.compress import DEFAULT_LEVEL
from sage_ops.backups.store import BackupStore, open_store
from sage_ops.errors import ConfigError
from sage_ops.postgres import MAINTENANCE_DB, PgTarget


def state_dir() -> Path:
    """Local state (embedded database, backups, Dagster instance): ignored by git."""
    return Path(os.environ.get("SAGE_OPS_STATE_DIR") or Path.cwd() / ".state").resolve()


@dataclass(frozen=True)
class Settings:
    database_url: str | None  # None: the embedded PostgreSQL 16
    backup_url: str
    backup_keep: int
    backup_format: str
    compression_level: int
    verify_level: str
    scratch_database_url: str | None  # None: the source database's server

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            backup_url=env.get("SAGE_OPS_BACKUP_URL") or default_backup_url(),
            backup_keep=_int("SAGE_OPS_BACKUP_KEEP", 7),
            backup_format=env.get("SAGE_OPS_BACKUP_FORMAT", "plain"),
            compression_level=_int("SAGE_OPS_BACKUP_COMPRESSION", DEFAULT_LEVEL),
            verify_level=env.get("SAGE_OPS_VERIFY_LEVEL", "full"),
            scratch_database_url=env.get("SAGE_OPS_SCRATCH_DATABASE_URL") or None,
        )

    def target(self) -> PgTarget:
        if self.database_url is None:
            from sage_ops.embedded import embedded_target

            return embedded_target()
        return PgTarget.from_url(self.database_url)

    def scratch_server(self, target: PgTarget) -> PgTarget:
        """Where verification restores run: configured, else the source's own server."""
        if self.scratch_database_url:
            return PgTarget.from_url(self.scratch_database_url, "SAGE_OPS_SCRATCH_DATABASE_URL")
        return target.with_database(MAINTENANCE_DB)

    def store(self) -> BackupStore:
        return open_store(self.backup_url)

    def redacted(self) -> dict[str, str]:
        shown = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("database_url") and value:
                try:
                    value = PgTarget.from_url(value).redacted
                except ConfigError:
                    value = "(malformed, not shown)"
            shown[f.name] = "(default)" if value is None else str(value)
        return shown


def default_backup_url() -> str:
    return f"file://{state_dir() / 'backups'}"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer (got {raw!r})") from None
