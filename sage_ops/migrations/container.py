"""The second runner: Prisma's own engine (`npx prisma migrate deploy`) inside the backend image.

Locally the image runs as a Docker container with DATABASE_URL in its environment (passed over
the Docker API, never in argv); in production it runs as an ECS one-off task of the new task
definition, whose DATABASE_URL comes from Secrets Manager. Either must exit 0. Preflight, lint
and the pre-migration backup run before it exactly as for the SQL runner.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.migrations.discovery import MigrationFile
from sage_ops.migrations.preflight import plan
from sage_ops.migrations.runner import AppliedMigration
from sage_ops.postgres import PgTarget

PRISMA_DEPLOY = ("npx", "prisma", "migrate", "deploy")
Log = Callable[[str], None]


class ContainerMigrationFailed(SageOpsError):
    """The migration container exited non-zero or did not finish in time."""


def migrate_in_container(
    image: str,
    target: PgTarget,
    timeout_s: float,
    log: Log,
    command: Sequence[str] = PRISMA_DEPLOY,
    client: Any = None,
) -> None:
    """Run `command` in `image` against `target`; raise unless it exits 0 within the timeout."""
    from sage_ops.deploy.image import docker_client

    docker = client or docker_client()
    container = docker.containers.run(
        image,
        list(command),
        environment={"DATABASE_URL": target.secret_url()},
        network_mode="host",  # the database is reached as from the host
        detach=True,
    )
    try:
        try:
            status = container.wait(timeout=timeout_s)
        except Exception as exc:  # requests' ReadTimeout: the container is still running
            raise ContainerMigrationFailed(
                f"{' '.join(command)} in {image} did not finish within {timeout_s:.0f} s"
            ) from exc
        output = container.logs().decode(errors="replace")
        for line in output.splitlines()[-50:]:
            log(target.scrub(line))
        code = int(status.get("StatusCode", -1))
        if code != 0:
            summary = error_summary(target.scrub(output))
            raise ContainerMigrationFailed(
                f"{' '.join(command)} in {image} exited {code}: {summary}"
            )
    finally:
        container.remove(force=True)


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
    kind: str  # prisma-docker or prisma-ecs
    image: str = ""
    timeout_s: float = 900
    ecs_cluster: str = ""
    ecs_task_definition: str = ""
    ecs_container: str = ""
    ecs_service: str = ""  # its network placement is copied: Fargate's run_task needs one

    def apply(
        self, target: PgTarget, files: list[MigrationFile], log: Log
    ) -> list[AppliedMigration]:
        """Run Prisma; what it applied is read back from its own bookkeeping."""
        before = {m.name for m in plan(target, files).pending}
        started = time.monotonic()
        if self.kind == "prisma-docker":
            migrate_in_container(self.image, target, self.timeout_s, log)
        elif self.kind == "prisma-ecs":
            from sage_ops.deploy.ecs import EcsDeployer
            from sage_ops.platforms.ecs_tasks import run_one_off_task

            service = EcsDeployer(f"ecs://{self.ecs_cluster}/{self.ecs_service}")
            command = {"name": self.ecs_container, "command": list(PRISMA_DEPLOY)}
            overrides = {"containerOverrides": [command]}
            run_one_off_task(
                self.ecs_cluster,
                self.ecs_task_definition,
                overrides,
                self.timeout_s,
                log,
                run_args=service.one_off_run_args(),
            )
        else:
            raise ConfigError(
                f"runner must be sql, prisma-docker or prisma-ecs (got {self.kind!r})"
            )
        after = {m.name for m in plan(target, files).pending}
        seconds = time.monotonic() - started
        return [AppliedMigration(name, seconds, True, 1) for name in sorted(before - after)]
