"""Doctor checks of the Dagster instance that lineage reads: its storage, run launcher and
compute logs, from DAGSTER_HOME/dagster.yaml with every `{env: NAME}` it reads resolved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from sage_ops import postgres
from sage_ops.checks import Needs, Probe
from sage_ops.errors import ConfigError
from sage_ops.platforms import aws
from sage_ops.postgres import PgTarget

ECS_LAUNCHER = "EcsRunLauncher"


def doctor_checks(needs: Needs) -> list[tuple[str, Probe]]:
    return [
        ("lineage", lambda: _storage(needs)),
        ("run launcher", lambda: _launcher(needs)),
        ("compute logs", lambda: _compute_logs(needs)),
    ]


def _section(needs: Needs, key: str) -> dict[str, Any]:
    """dagster.yaml's `key` section with its environment references resolved ({} if absent)."""
    home = needs.capability("DAGSTER_HOME", "lineage has no Dagster instance to read")
    path = Path(home) / "dagster.yaml"
    config = yaml.safe_load(path.read_text()) if path.is_file() else None
    return dict(_resolve((config or {}).get(key) or {}, key))


def _resolve(value: Any, where: str) -> Any:
    if isinstance(value, dict) and set(value) == {"env"}:
        name = value["env"]
        if not os.environ.get(name):
            raise ConfigError(f"{name} is not set: the Dagster instance's {where} reads it")
        return os.environ[name]
    if isinstance(value, dict):
        return {k: _resolve(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, where) for v in value]
    return value


def _storage(needs: Needs) -> str:
    db = _section(needs, "storage").get("postgres", {}).get("postgres_db")
    if not db:
        return f"local storage under {os.environ['DAGSTER_HOME']}"
    target = PgTarget(
        host=db["hostname"],
        port=int(db.get("port", 5432)),
        user=db["username"],
        dbname=db["db_name"],
        password=db.get("password"),
    )
    with postgres.connect(target) as conn:
        _, version = postgres.server_version(conn)
    return f"postgres storage {target.redacted} reachable, PostgreSQL {version}"


def _launcher(needs: Needs) -> str:
    launcher = _section(needs, "run_launcher")
    kind = launcher.get("class", "DefaultRunLauncher")
    if kind == ECS_LAUNCHER and not os.environ.get("DAGSTER_CURRENT_IMAGE"):
        # The code server reports its image from it; each run's task starts that image.
        raise ConfigError("DAGSTER_CURRENT_IMAGE is not set: EcsRunLauncher has no image to run")
    family = (launcher.get("config") or {}).get("task_definition")
    if kind == ECS_LAUNCHER and isinstance(family, str):
        return f"{kind}, runs start {_run_task_definition(family, launcher['config'])}"
    return f"{kind}, every setting it reads is set"


def _run_task_definition(family: str, config: dict[str, Any]) -> str:
    """The task definition every run starts as it is: Fargate, with the launcher's container."""
    found = aws.client("ecs").describe_task_definition(taskDefinition=family)["taskDefinition"]
    container = config.get("container_name", "run")
    if container not in [c["name"] for c in found["containerDefinitions"]]:
        raise ConfigError(f"task definition {family} has no container {container!r} to run")
    if "FARGATE" not in found.get("requiresCompatibilities", []):
        raise ConfigError(f"task definition {family} is not Fargate-compatible: RunTask refuses")
    disk = found.get("ephemeralStorage", {}).get("sizeInGiB", 20)
    revision = found["taskDefinitionArn"].rsplit("/", 1)[-1]  # family:revision
    return f"{revision} (Fargate, container {container}, {disk} GiB)"


def _compute_logs(needs: Needs) -> str:
    config = _section(needs, "compute_logs").get("config", {})
    bucket = config.get("bucket")
    if not bucket:
        return "kept under DAGSTER_HOME"
    prefix = config.get("prefix", "").strip("/") + "/"  # the role lists "<prefix>/*" only
    aws.readable_prefix(bucket, prefix, "compute_logs in dagster.yaml")
    return f"s3://{bucket}/{prefix} exists"
