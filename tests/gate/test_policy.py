"""Who may do what: every mutation of the installed Dagster schema is classified, the admin jobs
agree with the code location, and "targets production" means what the README says."""

from __future__ import annotations

import pytest
from dagster import AssetKey
from dagster_graphql.schema import create_schema

from sage_ops.definitions import defs
from sage_ops.gate.identity import local
from sage_ops.gate.policy import (
    ADMIN_MUTATIONS,
    ASSET_JOB_PREFIX,
    HOUSEKEEPING_MUTATIONS,
    ORDINARY_MUTATIONS,
    RUN_MUTATIONS,
    Policy,
    production_reason,
)
from sage_ops.gate.targets import Target
from sage_ops.lineage.names import DESTRUCTIVE_JOBS

ISSUE_JOBS = {
    "restore_database",
    "promote_to_production",
    "rollback_deployment",
    "migrate_database",
}


def test_every_mutation_of_the_installed_dagster_is_classified_exactly_once() -> None:
    mutation_type = create_schema().graphql_schema.mutation_type
    assert mutation_type is not None
    classes = [RUN_MUTATIONS, set(ADMIN_MUTATIONS), ORDINARY_MUTATIONS, HOUSEKEEPING_MUTATIONS]
    for name in mutation_type.fields:
        assert sum(name in c for c in classes) == 1, (
            f"{name}: classify it in sage_ops/gate/policy.py"
        )
    assert set().union(*classes) == set(mutation_type.fields)


def test_admin_jobs_are_the_destructive_jobs_and_every_job_that_reaches_production() -> None:
    repository = defs.get_repository_def()
    reaching_production = set()
    for job in repository.get_all_jobs():
        if job.name.startswith(ASSET_JOB_PREFIX):
            continue  # ad-hoc asset jobs: judged by the assets they select
        keys = job.asset_layer.selected_asset_keys if job.asset_layer else set()
        if any(k.path[-1].startswith("production_") for k in keys):
            reaching_production.add(job.name)
    assert ISSUE_JOBS <= DESTRUCTIVE_JOBS
    assert ISSUE_JOBS | reaching_production == DESTRUCTIVE_JOBS
    assert {j.name for j in repository.get_all_jobs()} >= DESTRUCTIVE_JOBS
    assert AssetKey("production_deployment") in {a.key for a in defs.assets or []}


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (Target(job="nightly_backup"), ""),
        (Target(job="deploy_to_staging", assets=("staging_deployment",)), ""),
        (Target(job="restore_database"), "restore_database is a destructive job"),
        (Target(job="deploy_backend"), "deploy_backend is a destructive job"),
        (
            Target(job="__ASSET_JOB", assets=("db_backup", "production_schema")),
            "it targets production (production_schema)",
        ),
        (Target(job="__ASSET_JOB"), "it targets every asset, production's included"),
        (
            Target(
                job="incident_triage", run_config={"ops": {"x": {"config": {"env": "Production"}}}}
            ),
            "its run config names production",
        ),
        (
            Target(job="incident_triage", run_config="resources:\n  x: PRODUCTION_DATABASE_URL\n"),
            "its run config names production",
        ),
        (
            Target(
                job="incident_triage", run_config={"ops": {"x": {"config": {"env": "staging"}}}}
            ),
            "",
        ),
    ],
)
def test_what_targets_production(target: Target, reason: str) -> None:
    assert production_reason(target) == reason


def test_admins_by_group_or_email_and_everyone_else_is_told_who_may() -> None:
    policy = Policy(admin_emails=["Root@Sage.test"], admin_groups=["ops-admins"])
    restore = [Target(job="restore_database")]
    assert policy.decide(local("root@sage.test"), "launchRun", restore).allowed
    assert policy.decide(local("ana@sage.test", ["ops-admins"]), "launchRun", restore).allowed
    refused = policy.decide(local("ana@sage.test", ["devs"]), "launchRun", restore)
    assert not refused.allowed and refused.destructive
    assert refused.message.startswith("Refused by the sage_ops gate: ana@sage.test may not launch")
    assert "members of ops-admins; root@sage.test" in refused.message
    ordinary = policy.decide(
        local("ana@sage.test"), "startSensor", [Target(name="git_push_sensor")]
    )
    assert ordinary.allowed and not ordinary.destructive
    assert not policy.decide(local("ana@sage.test"), "deleteRun", [Target(name="r1")]).allowed
    unknown = policy.decide(local("ana@sage.test"), "someFutureMutation", [])
    assert unknown.allowed and not unknown.destructive
