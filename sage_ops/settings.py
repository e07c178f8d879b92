"""Every setting sage_ops reads from the environment, its default, and whether it is secret."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from sage_ops.backups.compress import DEFAULT_LEVEL
from sage_ops.backups.manifest import CUSTOM, FORMATS, PLAIN
from sage_ops.backups.store import BackupStore
from sage_ops.backups.stores import open_store
from sage_ops.backups.verify import LEVELS
from sage_ops.errors import ConfigError
from sage_ops.postgres import MAINTENANCE_DB, PgTarget
from sage_ops.state import state_dir

KEEP, FORMAT, COMPRESSION, VERIFY, SCRATCH = (
    "SAGE_OPS_BACKUP_KEEP",
    "SAGE_OPS_BACKUP_FORMAT",
    "SAGE_OPS_BACKUP_COMPRESSION",
    "SAGE_OPS_VERIFY_LEVEL",
    "SAGE_OPS_SCRATCH",
)
EMBEDDED_SCRATCH = "embedded"
_KEEP_ALLOWED = "an integer of at least 1"
# zlib-ng's gzip levels for plain dumps; pg_dump -Fc -Z for custom ones, where 0 is uncompressed.
COMPRESSION_LEVELS = {PLAIN: range(1, 10), CUSTOM: range(0, 10)}
_COMPRESSION_ALLOWED = ", ".join(
    f"{r.start}-{r.stop - 1} for the {fmt} format" for fmt, r in COMPRESSION_LEVELS.items()
)


@dataclass(frozen=True)
class Settings:
    database_url: str | None  # None: the embedded PostgreSQL 16
    backup_url: str
    backup_keep: int
    backup_format: str
    compression_level: int
    verify_level: str
    scratch_database_url: str | None  # None: the source database's server
    scratch: str | None = None  # "embedded": a PostgreSQL 16 of its own, in this process's task

    @classmethod
    def from_env(cls) -> Settings:
        """The settings, refused (ConfigError naming each variable) if any is not allowed."""
        settings, problems = cls.read_env()
        _refuse(problems)
        return settings

    @classmethod
    def read_env(cls) -> tuple[Settings, list[str]]:
        """The settings and what is wrong with them (an unparsable number keeps its default)."""
        env = os.environ
        problems: list[str] = []
        settings = cls(
            database_url=env.get("DATABASE_URL") or None,
            backup_url=env.get("SAGE_OPS_BACKUP_URL") or default_backup_url(),
            backup_keep=_int(KEEP, 7, _KEEP_ALLOWED, problems),
            backup_format=env.get(FORMAT) or PLAIN,
            compression_level=_int(COMPRESSION, DEFAULT_LEVEL, _COMPRESSION_ALLOWED, problems),
            verify_level=env.get(VERIFY) or "full",
            scratch_database_url=env.get("SAGE_OPS_SCRATCH_DATABASE_URL") or None,
            scratch=env.get(SCRATCH) or None,
        )
        return settings, problems + settings.problems()

    def problems(self) -> list[str]:
        """Every value that would fail at 03:00, naming its variable and the allowed values."""
        levels = COMPRESSION_LEVELS.get(self.backup_format, COMPRESSION_LEVELS[PLAIN])
        level = self.compression_level
        rules = [  # (variable, value, allowed?, the allowed values in words)
            (KEEP, self.backup_keep, self.backup_keep >= 1, _KEEP_ALLOWED),
            (FORMAT, self.backup_format, self.backup_format in FORMATS, " or ".join(FORMATS)),
            (COMPRESSION, level, level in levels, _COMPRESSION_ALLOWED),
            (VERIFY, self.verify_level, self.verify_level in LEVELS, " or ".join(LEVELS)),
            (SCRATCH, self.scratch, self.scratch in (None, EMBEDDED_SCRATCH), "unset or embedded"),
        ]
        found = [_refused(name, value, allowed) for name, value, ok, allowed in rules if not ok]
        if self.scratch and self.scratch_database_url:
            found.append(f"{SCRATCH} and SAGE_OPS_SCRATCH_DATABASE_URL are both set: choose one")
        return found

    def checked(self) -> Settings:
        _refuse(self.problems())
        return self

    def target(self) -> PgTarget:
        if self.database_url is None:
            from sage_ops.embedded import embedded_target

            return embedded_target()
        return PgTarget.from_url(self.database_url)

    def scratch_server(self, target: PgTarget) -> PgTarget:
        """Where verification restores run: the embedded scratch server, a configured one, else
        the source's own server."""
        if self.scratch == EMBEDDED_SCRATCH:
            from sage_ops.embedded import scratch_server

            return scratch_server()
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


def _refused(name: str, value: object, allowed: str) -> str:
    return f"{name}={str(value)!r} is not allowed: it must be {allowed}"


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems))


def _int(name: str, default: int, allowed: str, problems: list[str]) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        problems.append(_refused(name, raw, allowed))
        return default
