"""One configuration for every guarded migration: MigrationConfig.policy, which both the
migrate_database job and a deploy's `<env>_schema` apply through."""

import pytest

from sage_ops.errors import ConfigError
from sage_ops.migrations.guarded import SqlApplier
from sage_ops.migrations.prisma_runner import PrismaRunner
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.migrations.runner import RunOptions

ALLOW = {"20261101000003_drop_x": ["ban-drop-table"]}


def test_sql_policy_carries_the_configured_timeouts_and_allow_list():
    config = MigrationConfig(
        migrations_dir="m", lock_timeout="1s", statement_timeout="2min", lock_retries=7, allow=ALLOW
    )
    policy = config.policy("swarm://staging", "reg/app@sha256:" + "0" * 64)
    assert policy.allow == ALLOW
    assert policy.applier == SqlApplier(RunOptions("1s", "2min", 7))


def test_prisma_policy_runs_on_the_deploy_target_in_the_deploys_image():
    config = MigrationConfig(
        migrations_dir="m", runner="prisma", runner_release="backend:1", runner_timeout_s=60
    )
    image = "reg/app@sha256:" + "1" * 64
    assert config.policy().applier == PrismaRunner("docker://", "backend:1", 60, "")
    assert config.policy("ecs://c/s", image).applier == PrismaRunner(
        "ecs://c/s", "backend:1", 60, image
    )


def test_unknown_runner_is_refused():
    with pytest.raises(ConfigError, match="runner must be sql or prisma"):
        MigrationConfig(migrations_dir="m", runner="prisma-docker").policy()
