"""One configuration for every guarded migration: MigrationConfig.policy, which both the
migrate_database job and a deploy's `<env>_schema` apply through."""

import pytest

from sage_ops.errors import ConfigError
from sage_ops.migrations.guarded import SqlApplier
from sage_ops.migrations.prisma_runner import PrismaRunner
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.migrations.runner import RunOptions

ALLOW = {"20261101000003_drop_x": ["ban-drop-table"]}


def _no_image_needed() -> str:
    raise AssertionError("the sql runner looked up a deploy's image")


def test_sql_policy_carries_the_configured_timeouts_and_allow_list():
    config = MigrationConfig(
        migrations_dir="m", lock_timeout="1s", statement_timeout="2min", lock_retries=7, allow=ALLOW
    )
    policy = config.policy("swarm://staging", _no_image_needed)
    assert policy.allow == ALLOW
    assert policy.applier == SqlApplier(RunOptions("1s", "2min", 7))


def test_prisma_policy_runs_on_the_deploy_target_in_the_deploys_image():
    config = MigrationConfig(
        migrations_dir="m", runner="prisma", runner_release="backend:1", runner_timeout_s=60
    )
    image = "reg/app@sha256:" + "1" * 64
    assert config.policy().applier == PrismaRunner("docker://", "backend:1", 60, "")
    assert config.policy("ecs://c/s", lambda: image).applier == PrismaRunner(
        "ecs://c/s", "backend:1", 60, image
    )


def test_unknown_runner_is_refused():
    with pytest.raises(ConfigError, match="runner must be sql or prisma"):
        MigrationConfig(migrations_dir="m", runner="prisma-docker").policy()


def test_the_environment_configures_every_guarded_migration(monkeypatch):
    """What the sensor's deploys get: definitions.py binds MigrationConfig.from_env()."""
    monkeypatch.setenv("SAGE_OPS_MIGRATIONS_RUNNER", "prisma")
    monkeypatch.setenv("SAGE_OPS_MIGRATIONS_RUNNER_TIMEOUT", "120")
    monkeypatch.setenv("SAGE_OPS_LOCK_TIMEOUT", "2s")
    config = MigrationConfig.from_env()
    assert (config.runner, config.runner_timeout_s, config.lock_timeout) == ("prisma", 120, "2s")
    assert config.policy("ecs://c/s", lambda: "i").applier == PrismaRunner(
        "ecs://c/s", "", 120, "i"
    )
    monkeypatch.setenv("SAGE_OPS_MIGRATIONS_RUNNER", "flyway")
    with pytest.raises(ConfigError, match="SAGE_OPS_MIGRATIONS_RUNNER must be one of sql, prisma"):
        MigrationConfig.from_env()


def test_a_database_variable_becomes_a_target_in_one_place(monkeypatch):
    from sage_ops.deploy.resources import DeployConfig
    from sage_ops.postgres import PgTarget

    monkeypatch.delenv("STAGING_DATABASE_URL", raising=False)
    assert DeployConfig().database("staging") is None
    monkeypatch.setenv("STAGING_DATABASE_URL", "postgresql://app:pw@db:5433/sage")
    assert DeployConfig().database("staging") == PgTarget("db", 5433, "app", "sage", "pw")
    assert PgTarget.from_env("STAGING_DATABASE_URL") == DeployConfig().database("staging")
