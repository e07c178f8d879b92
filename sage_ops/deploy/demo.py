"""The local deploy demo: a git repository made from the sample backend, databases for staging
and production on the embedded server, and the settings that point sage_ops at them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from psycopg import sql

from sage_ops import postgres
from sage_ops.child_env import GIT, child_env
from sage_ops.platforms.targets import local_service
from sage_ops.postgres import MAINTENANCE_DB, PgTarget

SAMPLE = Path(__file__).resolve().parents[2] / "infra" / "sample-backend"
FAST_HEALTH = {"health_interval": "1s", "monitor": "2s"}
_GIT_ID = ["-c", "user.name=sage-ops demo", "-c", "user.email=demo@sage-ops.invalid"]


def demo_repo(state: Path) -> Path:
    """A git repository with the sample backend at apps/backend (created once, then reused)."""
    repo = state / "demo-repo"
    if (repo / ".git").is_dir():
        return repo
    backend = repo / "apps" / "backend"
    shutil.copytree(SAMPLE, backend, ignore=shutil.ignore_patterns("busybox"))
    git = ["git", "-C", str(repo), *_GIT_ID]
    env = child_env(GIT)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], env=env, check=True)
    subprocess.run([*git, "add", "-A"], env=env, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Sample backend"], env=env, check=True)
    return repo


def environment_databases(server: PgTarget) -> dict[str, PgTarget]:
    """sage_staging and sage_production on `server`, created if missing."""
    targets = {}
    with postgres.connect(server.with_database(MAINTENANCE_DB)) as conn:
        for environment in ("staging", "production"):
            name = f"sage_{environment}"
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            targets[environment] = server.with_database(name)
    return targets


def demo_environment(state: Path, databases: dict[str, PgTarget]) -> dict[str, str]:
    """Environment variables that point the deploy pipeline at the local demo."""
    return {
        "SAGE_OPS_REPO": str(demo_repo(state)),
        "SAGE_OPS_BUILD_FILES": "busybox=/bin/busybox",
        "SAGE_OPS_STAGING_TARGET": local_service("sage-backend-staging", **FAST_HEALTH),
        "SAGE_OPS_PRODUCTION_TARGET": local_service("sage-backend-production", **FAST_HEALTH),
        "STAGING_DATABASE_URL": databases["staging"].secret_url(),
        "PRODUCTION_DATABASE_URL": databases["production"].secret_url(),
    }
