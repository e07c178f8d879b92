"""Connection budget arithmetic: do the application's pools fit in max_connections?

The root cause behind PostgreSQL's 53300 too_many_connections (SQLSTATE list:
https://www.postgresql.org/docs/current/errcodes-appendix.html): tasks x pool size + one-off,
migration and admin connections > the slots an ordinary role may use. A deploy at
maximumPercent 200 runs old and new tasks side by side, doubling the pools for its duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionBudget:
    max_connections: int | None = None
    reserved: int = 3  # superuser_reserved_connections (+ reserved_connections on PG 16)
    tasks: int | None = None  # the service's desired task count
    pool_size: int | None = None  # connection_limit of each PrismaClient
    task_vcpus: float | None = None  # without pool_size: Prisma's default is 2 x CPUs + 1
    max_percent: int = 200  # ECS deployment maximumPercent
    other: int = 5  # one-off tasks, migrations, admin sessions, sage_ops itself

    @property
    def pool(self) -> int | None:
        if self.pool_size:
            return self.pool_size
        if self.task_vcpus:
            return 2 * max(1, math.ceil(self.task_vcpus)) + 1
        return None

    @property
    def known(self) -> bool:
        return bool(self.max_connections and self.tasks and self.pool)

    def arithmetic(self) -> list[str]:
        """The budget, line by line, or what is missing to compute it."""
        if not self.known:
            return [
                "connection budget not computed: set SAGE_OPS_SERVICE_TASKS, "
                "SAGE_OPS_DB_POOL_SIZE (or SAGE_OPS_TASK_VCPUS) and, on AWS, "
                "SAGE_OPS_DB_MAX_CONNECTIONS"
            ]
        assert self.max_connections and self.tasks and self.pool
        usable = self.max_connections - self.reserved
        steady = self.tasks * self.pool + self.other
        deploy_tasks = math.ceil(self.tasks * self.max_percent / 100)
        deploy = deploy_tasks * self.pool + self.other + 1
        safe = max((usable - self.other - 1) // max(deploy_tasks, 1), 1)
        pool_origin = "connection_limit" if self.pool_size else "Prisma's default 2 x CPUs + 1"
        return [
            f"usable slots: max_connections {self.max_connections} - {self.reserved} reserved "
            f"= {usable}",
            f"steady state: {self.tasks} tasks x {self.pool} ({pool_origin}) + {self.other} "
            f"other = {steady} ({_verdict(steady, usable)})",
            f"during a deploy (maximumPercent {self.max_percent}): {deploy_tasks} tasks x "
            f"{self.pool} + {self.other} other + 1 migration = {deploy} "
            f"({_verdict(deploy, usable)})",
            f"largest connection_limit that fits during a deploy: ({usable} - {self.other} - 1) "
            f"// {deploy_tasks} = {safe}",
        ]

    def overflows(self) -> bool:
        if not self.known:
            return False
        assert self.max_connections and self.tasks and self.pool
        deploy_tasks = math.ceil(self.tasks * self.max_percent / 100)
        return deploy_tasks * self.pool + self.other + 1 > self.max_connections - self.reserved


def _verdict(needed: int, usable: int) -> str:
    if needed > usable:
        return f"exceeds the {usable} usable slots by {needed - usable}"
    return f"fits, {usable - needed} spare"
