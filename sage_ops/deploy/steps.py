"""The steps of build-push-deploy for one commit, as plain functions the Dagster assets call."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sage_ops.backups.dump_and_verify import BackupRecipe
from sage_ops.backups.manifest import Manifest
from sage_ops.backups.store import BackupStore
from sage_ops.errors import ConfigError
from sage_ops.migrations.guarded import GuardedOutcome, Policy, guarded_migrate
from sage_ops.platforms.builders.base import open_builder
from sage_ops.platforms.builders.spec import BuildSpec
from sage_ops.platforms.deployer import DeployError, DeployResult, Log
from sage_ops.platforms.docker_engine.image import BuiltImage, ImageCheck
from sage_ops.platforms.git.repo import commit_dir
from sage_ops.platforms.git.source import export_tree
from sage_ops.platforms.registries.push import PushedImage
from sage_ops.platforms.targets import open_deployer
from sage_ops.postgres import PgTarget
from sage_ops.state import state_dir

SMOKE_TIMEOUT_S = 60.0


def git_cache_dir() -> Path:
    return state_dir() / "git-cache"


def _source(repo: str | None, sha: str) -> Path:
    """A repository holding `sha`; a run task fetches the commit itself (git_repo.commit_dir)."""
    if not repo:
        raise ConfigError("SAGE_OPS_REPO is not set: no repository to build from")
    return commit_dir(repo, sha, git_cache_dir())


def build_commit(
    spec: BuildSpec, repo: str | None, sha: str, log: Log
) -> tuple[BuiltImage, list[ImageCheck]]:
    """Build the backend at `sha` with SAGE_OPS_BUILDER's builder, then the image checks."""
    return open_builder(spec).build(_source(repo, sha), sha, log)


def push_commit(spec: BuildSpec, sha: str, log: Log) -> PushedImage:
    """The commit's image in the registry by digest (pushed now, or already by the builder)."""
    return open_builder(spec).publish(sha, log)


def environment_database(url_env: str) -> PgTarget | None:
    """The database named by the variable `url_env`, or None when it is not set (no migrations)."""
    url = os.environ.get(url_env)
    return PgTarget.from_url(url, url_env) if url else None


def migrate_commit(
    repo: str | None,
    sha: str,
    migrations_subdir: str,
    url_env: str,
    backups: BackupRecipe,
    policy: Policy,
    run_id: str,
    log: Log,
) -> GuardedOutcome | None:
    """Guarded migrations of the commit's own migration files against the database in `url_env`,
    by the one guarded path and `policy` that manual migrations take (migrations.guarded)."""
    target = environment_database(url_env)
    if target is None:
        log(f"{url_env} is not set: no migrations")
        return None
    with tempfile.TemporaryDirectory(prefix="sage_ops_migrations_") as tmp:
        migrations = export_tree(_source(repo, sha), sha, migrations_subdir, Path(tmp))
        return guarded_migrate(target, migrations, policy, backups, run_id, log)


def deploy_commit(target_url: str, timeout_s: float, image: str, log: Log) -> DeployResult:
    """Roll `image` (repo@sha256:...) out; returns once THIS rollout completed."""
    return open_deployer(target_url).deploy(image, timeout_s, log)


def smoke_check(target_url: str) -> tuple[bool, str]:
    """Whether the service's health endpoint answers 200, and what was seen: a failing endpoint
    is a failed check recorded as such, not an error without one."""
    try:
        open_deployer(target_url).smoke_check(SMOKE_TIMEOUT_S)
    except DeployError as exc:
        return False, str(exc)
    return True, f"{target_url} is healthy"


def backup_reference(manifest: Manifest | None, store: BackupStore) -> str:
    return store.location(manifest.key) if manifest else "none (nothing was pending)"
