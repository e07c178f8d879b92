"""`sage-ops doctor`: show the effective configuration and check every configured system.

The database and backup lines come first (their output is a contract); then each capability's
own checks, registered in CAPABILITIES (see sage_ops.checks for the rules they follow).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from sage_ops import postgres
from sage_ops.backups import doctor_checks as backups
from sage_ops.backups.resources import SCRATCH, VERIFY, BackupConfig
from sage_ops.checks import CheckResult, Needs, Probe, run, run_all
from sage_ops.deploy import doctor_checks as deploy
from sage_ops.errors import ConfigError
from sage_ops.incidents import doctor_checks as incidents
from sage_ops.lineage import doctor_checks as lineage
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.pgtools import tools_for_server
from sage_ops.platforms import aws
from sage_ops.postgres import PgTarget

CAPABILITIES = (backups, deploy, incidents, lineage)  # deploy's list starts with its migrations


def run_checks(settings: BackupConfig, needs: Needs | None = None) -> list[CheckResult]:
    needs = needs or Needs()
    results: list[CheckResult] = []

    def check(name: str, fn: Callable[[], str]) -> bool:
        results.append(run(name, aws.explained(fn), needs))
        return results[-1].ok

    target: list[PgTarget] = []
    versions: list[tuple[int, str]] = []

    def database() -> str:
        needs.setting("DATABASE_URL", "the embedded sample database would be backed up")
        target.append(settings.target())
        with postgres.connect(target[0]) as conn:
            versions.append(postgres.server_version(conn))
        return f"{target[0].redacted} reachable, PostgreSQL {versions[0][1]}"

    if check("database", database):
        check("pg_dump", lambda: tools_for_server(*versions[0]).reason)
        if settings.verify_level == "full":
            check("scratch server", lambda: _scratch(settings, target[0], needs))
    check("backup store", lambda: _writable(settings, needs))
    return results


def _scratch(settings: BackupConfig, source: PgTarget, needs: Needs) -> str:
    """A configured scratch server must not be the source's: a full restore there competes with
    (and on a mistake, overwrites into) production."""
    needs.setting(VERIFY, "the stack states how backups are verified")
    if needs.strict and not (settings.scratch or settings.scratch_database_url):
        raise ConfigError(
            f"{SCRATCH} is not set (nor SAGE_OPS_SCRATCH_DATABASE_URL): the full restore "
            "would run on DATABASE_URL's server"
        )
    if settings.scratch:  # the embedded scratch's data directory lives there
        needs.setting("SAGE_OPS_STATE_DIR", "the scratch would live in the working directory")
    server = settings.scratch_server(source)
    same = (server.host.lower(), server.port) == (source.host.lower(), source.port)
    if settings.scratch_database_url and same:
        raise ConfigError(
            f"SAGE_OPS_SCRATCH_DATABASE_URL points at the server of DATABASE_URL "
            f"({source.host}:{source.port}): full verification would restore onto it; use a "
            "separate PostgreSQL 16 server, or SAGE_OPS_VERIFY_LEVEL=checksum"
        )
    return _reachable(server)


def _reachable(server: PgTarget) -> str:
    with postgres.connect(server) as conn:
        _, version = postgres.server_version(conn)
    return f"{server.redacted} reachable, PostgreSQL {version}"


def _writable(settings: BackupConfig, needs: Needs) -> str:
    needs.setting("SAGE_OPS_BACKUP_URL", "backups would stay in the task's own directory")
    store = settings.store()
    store.check_writable()
    return f"{store.url} writable"


# Triage's connection budget: the backend's sizing, which Terraform sets from its own variables.
BUDGET = (
    "SAGE_OPS_SERVICE_TASKS",
    "SAGE_OPS_DB_POOL_SIZE",
    "SAGE_OPS_TASK_VCPUS",
    "SAGE_OPS_DB_MAX_CONNECTIONS",
    "SAGE_OPS_DEPLOY_MAX_PERCENT",
)


def _tls(needs: Needs) -> str:
    needs.setting("PGSSLMODE", "libpq would accept a connection to RDS without TLS")
    return f"PGSSLMODE={os.environ.get('PGSSLMODE', 'prefer (libpq default)')}"


def _migrations(needs: Needs) -> str:
    needs.setting("SAGE_OPS_MIGRATIONS_DIR", "migrate_database would read the repository's sample")
    directory = Path(MigrationConfig.from_env().migrations_dir)
    try:
        found = load_migrations(directory)
    except ConfigError as exc:
        raise ConfigError(f"SAGE_OPS_MIGRATIONS_DIR: {exc}") from None
    return f"{len(found)} migrations in {directory}"


def _triage_evidence(needs: Needs) -> str:
    for name in (*BUDGET, "SAGE_OPS_ENVIRONMENT"):
        needs.setting(name, "triage's connection budget would guess the backend's sizing")
    needs.setting("SAGE_OPS_DAGSTER_URL", "incident reports would link to no run")
    groups = needs.capability("SAGE_OPS_LOG_GROUPS", "incident reports would carry no log lines")
    logs = aws.client("logs")
    for group in groups.split(","):
        try:  # the run role's own permission on these groups (no DescribeLogGroups on "*")
            logs.filter_log_events(logGroupName=group, limit=1)
        except (ClientError, BotoCoreError) as exc:
            problem = aws.error_text(exc)
            raise ConfigError(f"log group {group} (SAGE_OPS_LOG_GROUPS): {problem}") from None
    return f"{len(groups.split(','))} log groups readable, connection budget and run links set"


def stack_checks(needs: Needs) -> list[tuple[str, Probe]]:
    return [
        ("database tls", lambda: _tls(needs)),
        ("migrations dir", lambda: _migrations(needs)),
        ("triage evidence", lambda: _triage_evidence(needs)),
    ]


def capability_checks(needs: Needs) -> list[CheckResult]:
    probes = [c for module in CAPABILITIES for c in module.doctor_checks(needs)]
    probes += stack_checks(needs)
    return run_all([(name, aws.explained(probe)) for name, probe in probes], needs)


def report(
    settings: BackupConfig, problems: Sequence[str] = (), strict: bool = False
) -> tuple[str, int]:
    """The text to print and the exit code (1 if a setting is refused or any check failed).

    `strict`: on the stack, where no capability may fall back to a local default."""
    needs = Needs(strict)
    lines = ["configuration:"]
    lines += [f"  {k} = {v}" for k, v in settings.redacted().items()]
    lines.append("checks:")
    results = [CheckResult("setting", False, p) for p in problems]
    results += run_checks(settings, needs) + capability_checks(needs)
    lines += [f"  {r.line}" for r in results]
    failed = [r for r in results if not r.ok]
    return "\n".join(lines), 1 if failed else 0
