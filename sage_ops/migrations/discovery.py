"""Prisma migration files: `<dir>/<timestamp>_<name>/migration.sql`, applied in name order."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sage_ops.errors import ConfigError

# Relative to the working directory: the sample backend's migrations in this repository.
DEFAULT_MIGRATIONS_DIR = "infra/sample-backend/prisma/migrations"
_NAME = re.compile(r"^\d{14}_[A-Za-z0-9_]+$")
# Files Prisma keeps beside the migration folders.
_KNOWN_FILES = {"migration_lock.toml"}


@dataclass(frozen=True)
class MigrationFile:
    name: str
    path: Path
    sql: str
    checksum: str  # lowercase hex SHA-256 of the file's bytes, as Prisma records it

    def matches(self, checksum: str) -> bool:
        """Prisma accepts the file with its line endings swapped (a CRLF checkout)."""
        return checksum in (self.checksum, *_line_ending_variants(self.path.read_bytes()))


def _line_ending_variants(data: bytes) -> tuple[str, ...]:
    lf = data.replace(b"\r\n", b"\n")
    crlf = lf.replace(b"\n", b"\r\n")
    return tuple(hashlib.sha256(v).hexdigest() for v in (lf, crlf))


def load_migrations(directory: Path) -> list[MigrationFile]:
    """All migrations in name order; refuses a missing, empty or malformed directory."""
    if not directory.is_dir():
        raise ConfigError(f"migrations directory {directory} does not exist")
    problems: list[str] = []
    found: list[MigrationFile] = []
    for entry in sorted(directory.iterdir()):
        if (entry.is_file() and entry.name in _KNOWN_FILES) or entry.name.startswith("."):
            continue
        if not entry.is_dir() or not _NAME.match(entry.name):
            problems.append(f"{entry.name}: not a <14-digit timestamp>_<name> folder")
            continue
        sql_file = entry / "migration.sql"
        if not sql_file.is_file():
            problems.append(f"{entry.name}: has no migration.sql")
            continue
        data = sql_file.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{entry.name}: migration.sql is not UTF-8")
            continue
        if not text.strip():
            problems.append(f"{entry.name}: migration.sql is empty")
            continue
        found.append(MigrationFile(entry.name, sql_file, text, hashlib.sha256(data).hexdigest()))
    if problems:
        raise ConfigError(f"malformed migrations directory {directory}: " + "; ".join(problems))
    if not found:
        raise ConfigError(f"migrations directory {directory} holds no migrations")
    return found
