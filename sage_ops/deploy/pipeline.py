"""The steps of build-push-deploy for one commit, as plain functions the Dagster assets call."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sage_ops.backups.manifest import Manifest
from sage_ops.deploy.deployer import DeployResult, Log, open_deployer
from sage_ops.deploy.git import commit_dir
from sage_ops.deploy.image import BuiltImage, ImageCheck
from sage_ops.deploy.registry import PushedImage
from sage_ops.deploy.settings import DeploySettings
from sage_ops.deploy.source import export_tree
from sage_ops.errors import ConfigError
from sage_ops.migrations.guarded import GuardedOutcome, guarded_migrate
from sage_ops.migrations.runner import RunOptions
from sage_ops.platforms.builders import open_builder
from sage_ops.postgres import PgTarget
from sage_ops.settings import Settings, state_dir


def git_cache_dir() -> Path:
    return state_dir() / "git-cache"


def _source(settings: DeploySettings, sha: str) -> Path:
    """A repository holding `sha`; a run task fetches the commit itself (see git.commit_dir)."""
    if not settings.repo:
        raise ConfigError("SAGE_OPS_REPO is not set: no repository to build from")
    return commit_dir(settings.repo, sha, git_cache_dir())


def build_commit(
    settings: DeploySettings, sha: str, log: Log
) -> tuple[BuiltImage, list[ImageCheck]]:
    """Build the backend at `sha` with SAGE_OPS_BUILDER's builder, then the image checks."""
    return open_builder(settings).build(_source(settings, sha), sha, log)


def push_commit(settings: DeploySettings, sha: str, log: Log) -> PushedImage:
    """The commit's image in the registry by digest (pushed now, or already by the builder)."""
    return open_builder(settings).publish(sha, log)


def environment_database(settings: DeploySettings, environment: str) -> PgTarget | None:
    """The environment's database, or None when its URL variable is not set (no migrations)."""
    name = settings.database_env(environment)
    url = os.environ.get(name)
    return PgTarget.from_url(url, name) if url else None


def migrate_commit(
    settings: DeploySettings,
    environment: str,
    sha: str,
    backups: Settings,
    allow: dict[str, list[str]],
    run_id: str,
    log: Log,
) -> GuardedOutcome | None:
    """Guarded migrations of the commit's own migration files against the environment's database."""
    target = environment_database(settings, environment)
    if target is None:
        log(f"{settings.database_env(environment)} is not set: no {environment} migrations")
        return None
    subdir = f"{settings.context_path.strip('/')}/{settings.migrations_path.strip('/')}"
    with tempfile.TemporaryDirectory(prefix="sage_ops_migrations_") as tmp:
        migrations = export_tree(_source(settings, sha), sha, subdir, Path(tmp))
        return guarded_migrate(target, migrations, allow, RunOptions(), backups, run_id, log)


def deploy_commit(settings: DeploySettings, environment: str, image: str, log: Log) -> DeployResult:
    """Roll `image` (repo@sha256:...) out; returns once THIS rollout completed."""
    deployer = open_deployer(settings.target(environment))
    return deployer.deploy(image, float(settings.deploy_timeout_s), log)


def smoke_check(settings: DeploySettings, environment: str) -> str:
    """The service's health endpoint answers 200; returns what it checked."""
    deployer = open_deployer(settings.target(environment))
    deployer.smoke_check(SMOKE_TIMEOUT_S)
    return f"{settings.target(environment)} is healthy"


SMOKE_TIMEOUT_S = 60.0


def backup_reference(manifest: Manifest | None, backups: Settings) -> str:
    return backups.store().location(manifest.key) if manifest else "none (nothing was pending)"
