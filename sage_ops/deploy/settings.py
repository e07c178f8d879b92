"""Deploy settings from the environment: where pushes come from, where images go, and targets."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sage_ops.errors import ConfigError

ENVIRONMENTS = ("staging", "production")


@dataclass(frozen=True)
class DeploySettings:
    repo: str | None  # SAGE_OPS_REPO: local path or remote URL; None: the sensor skips
    branch: str = "main"
    watch_paths: tuple[str, ...] = ("apps/backend/**",)
    context_path: str = "apps/backend"  # directory of the Dockerfile, inside the repository
    dockerfile: str = "Dockerfile"
    migrations_path: str = "prisma/migrations"  # inside the build context
    build_files: dict[str, str] = field(default_factory=dict)  # staged into the context
    registry: str = "127.0.0.1:5000"
    repository: str = "sage-backend"
    create_repository: bool = False
    image_max_mb: int = 200
    targets: dict[str, str] = field(
        default_factory=lambda: {
            "staging": "swarm://sage-backend-staging",
            "production": "swarm://sage-backend-production",
        }
    )
    # Name of the env var holding each environment's database URL; unset var: no migrations.
    database_envs: dict[str, str] = field(
        default_factory=lambda: {
            "staging": "STAGING_DATABASE_URL",
            "production": "PRODUCTION_DATABASE_URL",
        }
    )
    require_approval: bool = False
    deploy_timeout_s: int = 600

    @classmethod
    def from_env(cls) -> DeploySettings:
        env = os.environ
        return cls(
            repo=env.get("SAGE_OPS_REPO") or None,
            branch=env.get("SAGE_OPS_BRANCH", "main"),
            watch_paths=_list(env.get("SAGE_OPS_WATCH_PATHS", "apps/backend/**")),
            context_path=env.get("SAGE_OPS_BUILD_CONTEXT", "apps/backend"),
            dockerfile=env.get("SAGE_OPS_DOCKERFILE", "Dockerfile"),
            migrations_path=env.get("SAGE_OPS_BACKEND_MIGRATIONS", "prisma/migrations"),
            build_files=_pairs(env.get("SAGE_OPS_BUILD_FILES", "")),
            registry=env.get("SAGE_OPS_REGISTRY", "127.0.0.1:5000"),
            repository=env.get("SAGE_OPS_IMAGE_REPOSITORY", "sage-backend"),
            create_repository=_flag("SAGE_OPS_CREATE_REPOSITORY"),
            image_max_mb=int(env.get("SAGE_OPS_IMAGE_MAX_MB", "200")),
            targets={
                "staging": env.get("SAGE_OPS_STAGING_TARGET", "swarm://sage-backend-staging"),
                "production": env.get(
                    "SAGE_OPS_PRODUCTION_TARGET", "swarm://sage-backend-production"
                ),
            },
            require_approval=_flag("SAGE_OPS_REQUIRE_APPROVAL"),
            deploy_timeout_s=int(env.get("SAGE_OPS_DEPLOY_TIMEOUT", "600")),
        )


def _list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _pairs(raw: str) -> dict[str, str]:
    """`name=/host/path,other=/path` -> {"name": "/host/path", ...}"""
    pairs = {}
    for item in _list(raw):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"SAGE_OPS_BUILD_FILES entries are name=/host/path (got {item!r})")
        pairs[name] = path
    return pairs


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be true or false (got {raw!r})")
    return raw in ("1", "true", "yes")
