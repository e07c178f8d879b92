"""The second runner: Prisma's own engine (`npx prisma migrate deploy`) inside the backend image.

It runs once on a platform (sage_ops.platforms.targets.open_one_off): locally a Docker container
with DATABASE_URL in its environment (passed over the Docker API, never in argv); in production
an ECS one-off task of the new task definition, whose DATABASE_URL comes from Secrets Manager.
Either must exit 0. Preflight, lint and the pre-migration backup run before it exactly as for
the SQL runner.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sage_ops.errors import SageOpsError
from sage_ops.migrations.discovery import MigrationFile
from sage_ops.migrations.preflight import plan
from sage_ops.migrations.runner import AppliedMigration
from sage_ops.platforms.deployer import OneOffFailed, OneOffRunner
from sage_ops.platforms.targets import LOCAL_ONE_OFF, open_one_off
from sage_ops.postgres import PgTarget

PRISMA_DEPLOY = ("npx", "prisma", "migrate", "deploy")
Log = Callable[[str], None]


class ContainerMigrationFailed(SageOpsError):
    """The migration container exited non-zero or did not finish in time."""


def run_prisma(
    platform: OneOffRunner,
    release: str | None,
    target: PgTarget,
    timeout_s: float,
    log: Log,
    *,
    pass_url: bool,
    command: Sequence[str] = PRISMA_DEPLOY,
) -> None:
    """Run `command` once on `platform`; ContainerMigrationFailed unless it exits 0. With
    `pass_url` DATABASE_URL travels in the run's environment; every line is scrubbed of it."""
    lines: list[str] = []

    def relay(line: str) -> None:
        lines.append(target.scrub(line))
        log(lines[-1])

    environment = {"DATABASE_URL": target.secret_url()} if pass_url else None
    try:
        platform.run_once(command, timeout_s, relay, release=release, environment=environment)
    except OneOffFailed as exc:
        summary = error_summary("\n".join(lines))
        raise ContainerMigrationFailed(f"{target.scrub(str(exc))}: {summary}") from None


def error_summary(output: str) -> str:
    """Prisma's `Error...` line and its message, else the last lines. Its Wasm engine follows
    the message with a backtrace ("0: sql_schema_connector::...", "at schema-engine/..."), so
    the last lines alone would not say what failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Error")]
    if not starts:
        return " | ".join(lines[-3:]) or "no output"
    message: list[str] = []
    for line in lines[starts[-1] :]:
        if _BACKTRACE.match(line) or len(message) == 3:
            break
        message.append(line)
    return " | ".join(message)


_BACKTRACE = re.compile(r"^(\d+: |at )")


@dataclass(frozen=True)
class PrismaRunner:
    """`npx prisma migrate deploy`, run once on the platform at `platform_url` (the local Engine,
    or any deploy target's URL): the platform decides what runs it and whether DATABASE_URL may
    travel in the run's environment (ECS: no, its task definition's secrets hold it)."""

    platform_url: str = LOCAL_ONE_OFF
    release: str = ""  # what runs it there (an image, a task definition); "": its default
    timeout_s: float = 900
    image: str = ""  # a deploy's pushed image: its migrations are the commit's; wins over release

    def apply(
        self, target: PgTarget, files: list[MigrationFile], log: Log
    ) -> list[AppliedMigration]:
        """Run Prisma; what it applied is read back from its own bookkeeping."""
        before = {m.name for m in plan(target, files).pending}
        started = time.monotonic()
        platform = open_one_off(self.platform_url)
        release = platform.release_of(self.image, log) if self.image else self.release or None
        pass_url = platform.takes_secrets
        run_prisma(platform, release, target, self.timeout_s, log, pass_url=pass_url)
        after = {m.name for m in plan(target, files).pending}
        seconds = time.monotonic() - started
        return [AppliedMigration(name, seconds, True, 1) for name in sorted(before - after)]
