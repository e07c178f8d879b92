"""Who may do what: every mutation of the installed Dagster schema is classified, every asset and
job of the code location declares its effect (and the declaration matches what it does), and a
launch is judged by what it would execute, resolved against those definitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster_graphql.schema import create_schema

from sage_ops.definitions import defs
from sage_ops.gate.catalog import Catalog
from sage_ops.gate.identity import local
from sage_ops.gate.policy import (
    ADMIN_MUTATIONS,
    HOUSEKEEPING_MUTATIONS,
    ORDINARY_MUTATIONS,
    RUN_MUTATIONS,
    Policy,
)
from sage_ops.gate.server import webserver_app
from sage_ops.gate.targets import Target
from sage_ops.lineage.effects import (
    DEPLOYS,
    EFFECT_TAG,
    EFFECTS,
    ENVIRONMENT_TAG,
    RESTORES,
    WRITES,
    WRITES_DATABASE,
)
from tests.gate.stack import dagster_instance, in_process_target

ANA = local("ana@sage.test", ["devs"])
ROOT = local("root@sage.test", ["ops-admins"])


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """sage_ops' definitions as the webserver serves them, read the way the gate reads them."""
    home: Path = tmp_path_factory.mktemp("dagster_home")
    with dagster_instance(home) as instance, webserver_app(instance, in_process_target()) as web:
        yield web.catalog()


@pytest.fixture
def policy(catalog: Catalog) -> Policy:
    return Policy(["Root@Sage.test"], ["ops-admins"], lambda: catalog)


def test_every_mutation_of_the_installed_dagster_is_classified_exactly_once() -> None:
    mutation_type = create_schema().graphql_schema.mutation_type
    assert mutation_type is not None
    classes = [RUN_MUTATIONS, set(ADMIN_MUTATIONS), ORDINARY_MUTATIONS, HOUSEKEEPING_MUTATIONS]
    for name in mutation_type.fields:
        assert sum(name in c for c in classes) == 1, (
            f"{name}: classify it in sage_ops/gate/policy.py"
        )
    assert set().union(*classes) == set(mutation_type.fields)


def test_an_unknown_mutation_is_refused_to_everyone_by_name(policy: Policy) -> None:
    for who in (ANA, ROOT):
        decision = policy.decide(who, "someFutureMutation", [])
        assert not decision.allowed
        assert "someFutureMutation is a mutation the gate does not know" in decision.message


def _writes_by_what_it_does(kinds: set[str], resources: set[str]) -> str | None:
    """The write an asset can make, told from its kinds and the resources it needs: the deploy
    resource with an ECS kind rolls out; Prisma migrations with a backup recipe apply them."""
    if "ecs" in kinds and "deploy" in resources:
        return DEPLOYS
    if "prisma" in kinds and "backups" in resources:
        return WRITES_DATABASE
    return None


def test_every_asset_declares_its_effect_and_every_writer_is_marked_as_one() -> None:
    repository = defs.get_repository_def()
    assets = repository.asset_graph.assets_defs
    assert len(assets) >= 12
    for assets_def in assets:
        for key in assets_def.keys:
            tags = assets_def.tags_by_key.get(key, {})
            name = key.to_user_string()
            assert tags.get(EFFECT_TAG) in EFFECTS, f"{name}: mark it with lineage.effects"
            kinds = set(assets_def.specs_by_key[key].kinds)
            expected = _writes_by_what_it_does(kinds, set(assets_def.required_resource_keys))
            if expected:
                assert tags[EFFECT_TAG] == expected, f"{name} writes ({expected}): mark it so"
            if tags[EFFECT_TAG] in WRITES and name.split("_")[0] in ("staging", "production"):
                assert tags.get(ENVIRONMENT_TAG) == name.split("_")[0], name


def test_every_job_of_ops_declares_its_effect() -> None:
    """Jobs that run ops (no assets) are judged by their own mark: restore and rollback."""
    repository = defs.get_repository_def()
    marks = {
        job.name: job.tags.get(EFFECT_TAG)
        for job in repository.get_all_jobs()
        if not job.asset_layer.selected_asset_keys
    }
    assert marks == {"restore_database": RESTORES, "rollback_deployment": DEPLOYS}


def asset_job(*assets: str, **extra: object) -> Target:
    return Target(job="__ASSET_JOB", assets=assets, **extra)  # type: ignore[arg-type]


BACKUPS_SCRATCH = {"resources": {"backups": {"config": {"scratch_database_url": "postgres://x"}}}}
STAGING_URL = {"resources": {"deploy": {"config": {"staging_database_url_env": "DATABASE_URL"}}}}


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (Target(job="nightly_backup"), ""),
        (Target(job="incident_triage"), ""),
        (Target(job="deploy_to_staging"), ""),
        (asset_job("staging_schema", partition="abc"), ""),
        (asset_job("db_backup", "backup_retention"), ""),
        (
            asset_job("migration_plan", "pre_migration_backup", "applied_migrations"),
            "(applied_migrations: writes-database in the configured target)",
        ),
        (
            Target(job="migrate_database"),
            "(applied_migrations: writes-database in the configured target)",
        ),
        (
            Target(job="deploy_backend"),
            "it targets production (production_deployment: deploys in production; "
            "production_schema: writes-database in production)",
        ),
        (
            Target(job="restore_database"),
            "(restore_database: restores in the configured target)",
        ),
        (
            Target(job="rollback_deployment"),
            "(rollback_deployment: deploys in the configured target)",
        ),
        (asset_job(), "it targets production (applied_migrations: writes-database"),
        # An op subset is not resolved: the job's every asset counts.
        (
            Target(job="__ASSET_JOB", subset=True),
            "it targets production (applied_migrations: writes-database",
        ),
        (Target(job="deploy_to_staging", subset=True), ""),
        (Target(job="made_up_job"), "made_up_job is not a job of the code location"),
        (asset_job("no_such_asset"), "(no_such_asset: declares no effect)"),
        (
            Target(job="nightly_backup", run_config=BACKUPS_SCRATCH),
            "it sets resources.backups.config.scratch_database_url at launch",
        ),
        (
            asset_job("staging_schema", run_config=STAGING_URL),
            "it sets resources.deploy.config.staging_database_url_env at launch",
        ),
        (
            Target(job="incident_triage", run_config="resources:\n  migrations: {config: {}}\n"),
            "it sets resources.migrations.config at launch",
        ),
        (Target(job="incident_triage", run_config="resources: [unclosed"), "cannot be read"),
        (Target(job="nightly_backup", run_config={"execution": {"config": {}}}), ""),
        (
            Target(job="nightly_backup", tags=(("ecs/container_overrides", "{}"),)),
            "it sets the run tags ecs/container_overrides",
        ),
        (
            Target(job="nightly_backup", tags=(("sage_ops/database-writer", "elsewhere"),)),
            "it sets the run tags sage_ops/database-writer",
        ),
        (
            Target(job="deploy_to_staging", tags=(("dagster/image", "evil:latest"),)),
            "dagster/image",
        ),
        # The job's own tag with its own value, labels, and the UI's bookkeeping change nothing.
        (
            Target(
                job="nightly_backup",
                tags=(
                    ("sage_ops/database-writer", "primary"),
                    ("note", "rerun after the outage"),
                    ("dagster/partition", "x"),
                ),
            ),
            "",
        ),
    ],
)
def test_a_launch_is_judged_by_what_it_would_execute(
    policy: Policy, target: Target, reason: str
) -> None:
    decision = policy.decide(ANA, "launchRun", [target])
    if reason:
        assert reason in decision.reason and not decision.allowed, decision.reason
        assert policy.decide(ROOT, "launchRun", [target]).allowed
    else:
        assert decision.allowed and not decision.reason, decision.reason


def test_the_decision_names_the_assets_the_runs_would_execute(policy: Policy) -> None:
    decision = policy.decide(ANA, "launchRun", [Target(job="migrate_database")])
    assert decision.assets == ("applied_migrations", "migration_plan", "pre_migration_backup")
    targets = [Target(job="nightly_backup"), Target(job="incident_triage")]
    both = policy.decide(ANA, "launchMultipleRuns", targets)
    assert both.allowed and both.assets == ("backup_retention", "db_backup", "incident_report")


@pytest.mark.parametrize(
    "action",
    [
        "startSensor",
        "stopSensor",
        "resetSensor",
        "startSchedule",
        "stopRunningSchedule",
        "resetSchedule",
        "setConcurrencyLimit",
        "deleteConcurrencyLimit",
        "freeConcurrencySlots",
        "addDynamicPartition",
        "deleteDynamicPartitions",
        "wipeAssets",
        "deleteRun",
        "setAutoMaterializePaused",
    ],
)
def test_automation_limits_partitions_and_history_are_for_admins(
    policy: Policy, action: str
) -> None:
    refused = policy.decide(ANA, action, [Target(name="git_push_sensor")])
    assert not refused.allowed and refused.destructive
    assert refused.message.startswith(f"Refused by the sage_ops gate: {ANA.email} may not")
    assert "members of ops-admins; root@sage.test" in refused.message
    assert policy.decide(ROOT, action, [Target(name="git_push_sensor")]).allowed
    assert policy.decide(local("Root@sage.test"), action, []).allowed  # by e-mail


def test_dry_runs_and_reloads_are_for_everyone(policy: Policy) -> None:
    for action in ORDINARY_MUTATIONS:
        decision = policy.decide(ANA, action, [Target(name="git_push_sensor")])
        assert decision.allowed and not decision.destructive


def test_config_keys_are_paths_never_values() -> None:
    target = Target(run_config={**BACKUPS_SCRATCH, "ops": {"x": {"config": {"a": 1, "b": {}}}}})
    assert target.config_keys() == [
        "resources.backups.config.scratch_database_url",
        "ops.x.config.a",
        "ops.x.config.b",
    ]
    assert Target(run_config="a: [").config_keys() is None
    assert Target(run_config=["not", "a", "mapping"]).config_keys() is None
    assert Target().config_keys() == []
