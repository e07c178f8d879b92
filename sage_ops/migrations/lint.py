"""Lint pending migrations with squawk: destructive or locking findings block unless allowed.

Prisma runs each file as one implicit transaction, so files are linted with
--assume-in-transaction, except files that must run outside one (CONCURRENTLY), which squawk
would otherwise flag for being in a transaction.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sage_ops.child_env import child_env
from sage_ops.errors import ConfigError, ToolError
from sage_ops.migrations.discovery import MigrationFile
from sage_ops.migrations.statements import needs_no_transaction

# Rules that lose data or take long ACCESS EXCLUSIVE / SHARE locks on live tables.
BLOCKING_RULES = frozenset(
    {
        "ban-drop-table",
        "ban-drop-column",
        "ban-drop-database",
        "ban-drop-not-null",
        "ban-truncate-cascade",
        "adding-required-field",
        "adding-not-nullable-field",
        "adding-serial-primary-key-field",
        "changing-column-type",
        "disallowed-unique-constraint",
        "renaming-column",
        "renaming-table",
        "require-concurrent-index-creation",
    }
)
# The runner sets both timeouts itself before every migration.
EXCLUDED_RULES = ("require-lock-timeout", "require-statement-timeout")


@dataclass(frozen=True)
class Finding:
    migration: str
    rule: str
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.migration}:{self.line} {self.rule}: {self.message}"


@dataclass
class LintReport:
    blocking: list[Finding]
    allowed: list[Finding]
    warnings: list[Finding]

    def blocking_summary(self) -> str:
        return (
            f"blocked by {len(self.blocking)} finding(s): "
            + "; ".join(str(f) for f in self.blocking)
            + ". Fix the migration, or allow the rule for it in the `allow` setting."
        )


def squawk_binary() -> str:
    path = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(path).exists():
        raise ToolError("squawk not found: install the squawk-cli package")
    return path


def lint(migrations: list[MigrationFile], allow: dict[str, list[str]]) -> LintReport:
    """Lint each file; `allow` maps a migration name to the blocking rules allowed for it."""
    unknown = set(allow) - {m.name for m in migrations}
    if unknown:
        raise ConfigError(
            f"allow names migrations that are not pending: {', '.join(sorted(unknown))}"
        )
    report = LintReport([], [], [])
    for migration in migrations:
        for finding in _squawk(migration):
            if finding.rule not in BLOCKING_RULES:
                report.warnings.append(finding)
            elif finding.rule in allow.get(migration.name, ()):
                report.allowed.append(finding)
            else:
                report.blocking.append(finding)
    return report


def _squawk(migration: MigrationFile) -> list[Finding]:
    args = [squawk_binary(), "--reporter", "json"]
    for rule in EXCLUDED_RULES:
        args += ["--exclude", rule]
    if not needs_no_transaction(migration.sql):
        args.append("--assume-in-transaction")
    result = subprocess.run(
        [*args, str(migration.path)], capture_output=True, text=True, check=False, env=child_env()
    )
    if result.returncode not in (0, 1):
        raise ToolError(f"squawk failed on {migration.name}: {result.stderr.strip()[:300]}")
    try:
        raw = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        raise ToolError(f"squawk gave unreadable output on {migration.name}") from None
    return [
        Finding(migration.name, item["rule_name"], int(item["line"]) + 1, item["message"])
        for item in raw
    ]
