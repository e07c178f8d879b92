"""Build-push-deploy end to end, through Dagster, on the real Docker Engine, registry and swarm:
commit -> git_push_sensor -> backend_image -> registry_image -> migrations -> staging -> production.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions, build_sensor_context

from sage_ops import postgres
from sage_ops.backups.resources import BackupConfig
from sage_ops.deploy import defs as deploy
from sage_ops.deploy.resources import DeployConfig
from sage_ops.migrations import bookkeeping
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.platforms.swarm.deployer import SwarmDeployer
from tests.platforms.conftest import sample_context

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=GIT_ENV
    ).stdout.strip()


def _commit_backend(repo: Path, variant: str, message: str) -> str:
    shutil.rmtree(repo / "apps" / "backend", ignore_errors=True)
    sample_context(repo / "apps" / "backend", variant)
    (repo / "apps" / "backend" / "CHANGELOG").write_text(message)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def stack(tmp_path, docker_env, test_id, pg_server, monkeypatch, store):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    services = {env: f"sage-e2e-{test_id}-{env}" for env in ("staging", "production")}
    settings = dict(
        repo=str(repo),
        build_files={"busybox": "/bin/busybox"},
        repository=f"sage-e2e-{test_id}",
        staging_target=f"swarm://{services['staging']}?health_interval=1s&monitor=2s",
        production_target=f"swarm://{services['production']}?health_interval=1s&monitor=2s",
        deploy_timeout_s=120,
    )
    resources = {
        "backups": BackupConfig(backup_url=store.url, verify_level="checksum"),
        "migrations": MigrationConfig(migrations_dir="unused"),
    }
    with (
        postgres.scratch_database(pg_server, prefix="sage_e2e_staging") as staging_db,
        postgres.scratch_database(pg_server, prefix="sage_e2e_production") as production_db,
    ):
        monkeypatch.setenv("STAGING_DATABASE_URL", staging_db.redacted)
        monkeypatch.setenv("PRODUCTION_DATABASE_URL", production_db.redacted)
        home = tmp_path / "dagster_home"  # a real on-disk instance: the lineage CLI reads it too
        home.mkdir()
        instance = DagsterInstance.local_temp(str(home))
        stack = Stack(repo, resources, instance, services, staging_db, production_db)
        stack.home = home
        stack.configure(**settings)
        yield stack
        for service in services.values():
            subprocess.run(["docker", "service", "rm", service], capture_output=True)


class Stack:
    def __init__(self, repo, resources, instance, services, staging_db, production_db):
        self.repo, self.resources = repo, resources
        self.instance, self.services = instance, services
        self.databases = {"staging": staging_db, "production": production_db}
        self.cursor: str | None = None
        self.settings: dict = {}

    def configure(self, **settings):
        self.settings.update(settings)
        self.config = DeployConfig(**self.settings)
        resources = {**self.resources, "deploy": self.config}
        self.definitions = Definitions.merge(deploy.defs, Definitions(resources=resources))

    def tick(self):
        sensor = self.definitions.resolve_sensor_def("git_push_sensor")
        context = build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"deploy": self.config}
        )
        result = sensor(context)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        self.cursor = result.cursor
        return result

    def run(self, request):
        job = self.definitions.resolve_job_def(request.job_name)
        return job.execute_in_process(
            partition_key=request.partition_key,
            instance=self.instance,
            tags=request.tags,
            raise_on_error=False,
        )

    def serving(self, environment: str) -> str | None:
        return SwarmDeployer(f"swarm://{self.services[environment]}").current_image()


def _materialized(result, name):
    return result.asset_materializations_for_node(name)


def test_push_deploys_to_staging_then_production_and_unhealthy_rolls_back(stack):
    first = _commit_backend(stack.repo, "healthy", "backend v1")
    tick = stack.tick()
    [request] = tick.run_requests
    assert request.run_key == first and request.partition_key == first

    result = stack.run(request)
    assert result.success
    image = _materialized(result, "registry_image")[0].metadata["image"].value
    assert "@sha256:" in image
    for environment in ("staging", "production"):
        deployed = _materialized(result, f"{environment}_deployment")[0].metadata
        assert deployed["image"].value == image and deployed["commit"].value == first
        assert stack.serving(environment) == image
        with postgres.connect(stack.databases[environment]) as conn:
            assert len([r for r in bookkeeping.read_rows(conn) if r.applied]) == 3
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"image_policy": True, "staging_healthy": True, "production_healthy": True}
    assert stack.tick().run_requests == []  # same head: nothing new, never a second run
    _assert_lineage(stack, first, image)

    _commit_backend(stack.repo, "unhealthy", "backend v2 (broken health)")
    [broken] = stack.tick().run_requests
    failed = stack.run(broken)
    assert not failed.success
    assert _materialized(failed, "production_deployment") == []
    assert stack.serving("staging") == image and stack.serving("production") == image
    SwarmDeployer(f"swarm://{stack.services['staging']}").smoke_check(30)  # old one still serves


def test_burst_deploys_newest_and_records_superseded(stack):
    shas = [_commit_backend(stack.repo, "healthy", f"change {i}") for i in range(3)]
    (stack.repo / "docs.md").write_text("not the backend")
    _git(stack.repo, "add", "-A")
    _git(stack.repo, "commit", "-q", "-m", "docs only")
    stack.cursor = shas[0]
    result = stack.tick()
    [request] = result.run_requests
    assert request.partition_key == shas[2]
    assert set(stack.instance.get_dynamic_partitions("commits")) == {shas[1], shas[2]}
    [observation] = result.asset_events
    assert observation.partition == shas[1]
    assert observation.metadata["status"].value == f"superseded by {shas[2][:7]}"


def test_unreachable_repository_skips_and_keeps_the_cursor(stack):
    stack.configure(repo=str(stack.repo / "missing"))
    sensor = stack.definitions.resolve_sensor_def("git_push_sensor")
    context = build_sensor_context(
        instance=stack.instance, cursor="abc123", resources={"deploy": stack.config}
    )
    result = sensor(context)
    assert "no such directory" in result.skip_message and "cursor unchanged" in result.skip_message
    assert context.cursor == "abc123"


def test_approval_promotion_rollback_and_migration_failure(stack):
    stack.configure(require_approval=True)

    def push_and_promote(variant, message):
        sha = _commit_backend(stack.repo, variant, message)
        [request] = stack.tick().run_requests
        assert request.job_name == "deploy_to_staging"
        staged = stack.run(request)
        assert staged.success and _materialized(staged, "production_deployment") == []
        promoted = stack.definitions.resolve_job_def("promote_to_production").execute_in_process(
            partition_key=sha, instance=stack.instance, raise_on_error=False
        )
        assert promoted.success
        return _materialized(promoted, "production_deployment")[0].metadata["image"].value

    v1 = push_and_promote("healthy", "v1")
    v2 = push_and_promote("healthy", "v2")
    assert v1 != v2 and stack.serving("production") == v2

    rollback = stack.definitions.resolve_job_def("rollback_deployment").execute_in_process(
        run_config={"ops": {"rollback_op": {"config": {"environment": "production"}}}},
        instance=stack.instance,
        raise_on_error=False,
    )
    assert rollback.success and stack.serving("production") == v1
    tags = stack.instance.get_run_by_id(rollback.run_id).tags
    assert tags["sage_ops/production"] == v1.split("@")[-1] and "sage_ops/commit" in tags

    # A migration that fails stops the rollout: staging keeps serving v2, its schema unchanged.
    migrations = stack.repo / "apps" / "backend" / "prisma" / "migrations"
    sha = _commit_backend(stack.repo, "healthy", "v3 with a broken migration")
    broken = migrations / "20261201000000_broken"
    broken.mkdir()
    (broken / "migration.sql").write_text('ALTER TABLE "Nope" ADD COLUMN "x" TEXT;\n')
    _git(stack.repo, "add", "-A")
    _git(stack.repo, "commit", "-q", "--amend", "-m", "v3 with a broken migration")
    [request] = stack.tick().run_requests
    failed = stack.run(request)
    assert not failed.success and sha != request.partition_key
    assert _materialized(failed, "staging_deployment") == []
    assert stack.serving("staging") == v2
    with postgres.connect(stack.databases["staging"]) as conn:
        rows = bookkeeping.read_rows(conn)
    assert [r.name for r in rows if r.applied] == [
        "20261101000000_init",
        "20261102000000_conversations",
        "20261103000000_message_metadata",
    ]


def _assert_lineage(stack, commit, image):
    """`sage-ops lineage` answers from the same instance the UI reads."""
    env = {**os.environ, "DAGSTER_HOME": str(stack.home)}
    cli = str(Path(sys.executable).parent / "sage-ops")

    def lineage(*args):
        out = subprocess.run([cli, "lineage", *args], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    deployed = json.loads(lineage("what-is-deployed", "production", "--json"))
    assert deployed["commit"] == commit and deployed["image"] == image
    assert deployed["migrations"] == [
        "20261101000000_init",
        "20261102000000_conversations",
        "20261103000000_message_metadata",
    ]
    backup_location = deployed["pre_migration_backup"]
    assert "backup_" in backup_location
    story = json.loads(lineage("commit", commit, "--json"))
    assert [s["asset"] for s in story["steps"]] == [
        "backend_image",
        "registry_image",
        "staging_schema",
        "staging_deployment",
        "production_schema",
        "production_deployment",
    ]
    key = backup_location.rsplit("/", 1)[-1]
    used = json.loads(lineage("backup", key, "--json"))
    assert "production_schema" in [s["asset"] for s in used["relied_on_by"]]
    unknown = subprocess.run(
        [cli, "lineage", "commit", "0" * 40], env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 1 and "never selected it" in unknown.stderr
