"""The steps of build-push-deploy for one commit, as plain functions the Dagster assets call."""

from __future__ import annotations

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


def _source(repo: str | None, sha: str, credential: str | None = None) -> Path:
    """A repository holding `sha`; a run task fetches the commit itself (git_repo.commit_dir),
    with the repository's `credential` (a Secrets Manager id) when it has one."""
    if not repo:
        raise ConfigError("SAGE_OPS_REPO is not set: no repository to build from")
    return commit_dir(repo, sha, git_cache_dir(), credential=credential)


def build_commit(
    spec: BuildSpec, repo: str | None, sha: str, log: Log, credential: str | None = None
) -> tuple[BuiltImage, list[ImageCheck]]:
    """Build the backend at `sha` with SAGE_OPS_BUILDER's builder, then the image checks."""
    return open_builder(spec).build(_source(repo, sha, credential), sha, log)


def push_commit(spec: BuildSpec, sha: str, log: Log) -> PushedImage:
    """The commit's image in the registry by digest (pushed now, or already by the builder)."""
    return open_builder(spec).publish(sha, log)


def migrate_commit(
    repo: str | None,
    sha: str,
    migrations_subdir: str,
    target: PgTarget,
    backups: BackupRecipe,
    policy: Policy,
    run_id: str,
    log: Log,
    credential: str | None = None,
) -> GuardedOutcome:
    """Guarded migrations of the commit's own migration files against `target`, by the one
    guarded path and `policy` that manual migrations take (migrations.guarded)."""
    with tempfile.TemporaryDirectory(prefix="sage_ops_migrations_") as tmp:
        source = _source(repo, sha, credential)
        migrations = export_tree(source, sha, migrations_subdir, Path(tmp))
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
