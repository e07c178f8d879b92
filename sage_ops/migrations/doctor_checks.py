"""Doctor checks of deploy-time migrations: each environment's database, reachable."""

from __future__ import annotations

from sage_ops import postgres
from sage_ops.checks import Needs, NotConfigured, Probe
from sage_ops.deploy import steps
from sage_ops.deploy.resources import ENVIRONMENTS, DeployConfig


def doctor_checks(needs: Needs) -> list[tuple[str, Probe]]:
    return [(f"migrations {env}", _database(env)) for env in ENVIRONMENTS]


def _database(environment: str) -> Probe:
    def probe() -> str:
        variable = DeployConfig.from_env().database_env(environment)
        target = steps.environment_database(variable)
        if target is None:
            why = f"{environment} migrations would be skipped"
            raise NotConfigured(variable, why, optional=False)
        with postgres.connect(target) as conn:
            _, version = postgres.server_version(conn)
        return f"{target.redacted} reachable, PostgreSQL {version}"

    return probe
