"""`sage-ops doctor`: show the effective configuration and check every configured system."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sage_ops import postgres
from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.pgtools import tools_for_server
from sage_ops.postgres import PgTarget
from sage_ops.settings import Settings


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str


def run_checks(settings: Settings) -> list[CheckResult]:
    results: list[CheckResult] = []

    def check(name: str, fn: Callable[[], str]) -> bool:
        try:
            results.append(CheckResult(name, True, fn()))
            return True
        except SageOpsError as exc:
            results.append(CheckResult(name, False, str(exc)))
            return False

    target: list[PgTarget] = []
    versions: list[tuple[int, str]] = []

    def database() -> str:
        target.append(settings.target())
        with postgres.connect(target[0]) as conn:
            versions.append(postgres.server_version(conn))
        return f"{target[0].redacted} reachable, PostgreSQL {versions[0][1]}"

    if check("database", database):
        check("pg_dump", lambda: tools_for_server(*versions[0]).reason)
        if settings.verify_level == "full":
            check("scratch server", lambda: _scratch(settings, target[0]))
    check("backup store", lambda: _writable(settings))
    return results


def _scratch(settings: Settings, source: PgTarget) -> str:
    """A configured scratch server must not be the source's: a full restore there competes with
    (and on a mistake, overwrites into) production."""
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


def _writable(settings: Settings) -> str:
    store = settings.store()
    store.check_writable()
    return f"{store.url} writable"


def report(settings: Settings, problems: Sequence[str] = ()) -> tuple[str, int]:
    """The text to print and the exit code (1 if a setting is refused or any check failed)."""
    lines = ["configuration:"]
    lines += [f"  {k} = {v}" for k, v in settings.redacted().items()]
    lines.append("checks:")
    results = [CheckResult("setting", False, p) for p in problems] + run_checks(settings)
    lines += [f"  [{'ok' if r.ok else 'FAIL'}] {r.name}: {r.detail}" for r in results]
    failed = [r for r in results if not r.ok]
    return "\n".join(lines), 1 if failed else 0
