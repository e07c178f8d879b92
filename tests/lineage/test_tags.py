"""The lineage contract: the tags deploy runs carry and the names every room uses, checked
against the code location that writes them."""

from sage_ops import definitions
from sage_ops.lineage import names
from sage_ops.lineage.tags import (
    COMMIT_TAG,
    LAUNCHED_BY_TAG,
    deployment_tags,
    digest_of,
    environment_tag,
    launched_by,
)

IMAGE = "127.0.0.1:5000/sage-backend@sha256:" + "ab" * 32


def test_a_completed_rollout_tags_its_run_with_the_digest_and_the_commit() -> None:
    tags = deployment_tags("staging", "c0ffee", IMAGE)
    assert tags == {"sage_ops/staging": "sha256:" + "ab" * 32, COMMIT_TAG: "c0ffee"}
    assert environment_tag("production") == "sage_ops/production"
    assert digest_of(digest_of(IMAGE)) == digest_of(IMAGE)  # a digest stays one


def test_launched_by_prefers_the_gate_then_the_automation() -> None:
    automated = {"dagster/sensor_name": "git_push_sensor"}
    assert launched_by({LAUNCHED_BY_TAG: "ana@example.com", **automated}) == "ana@example.com"
    assert launched_by(automated) == "sensor git_push_sensor"
    assert launched_by({"dagster/schedule_name": "nightly"}) == "schedule nightly"
    assert launched_by({}).startswith("unknown")


def test_every_name_in_the_contract_exists_in_the_code_location() -> None:
    defs = definitions.defs
    assets = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert set(names.COMMIT_ASSETS) <= assets
    assert {names.DB_BACKUP, names.PRE_MIGRATION_BACKUP, names.APPLIED_MIGRATIONS} <= assets
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert jobs >= names.DESTRUCTIVE_JOBS
    assert {names.NIGHTLY_BACKUP, names.DEPLOY_TO_STAGING, names.INCIDENT_TRIAGE} <= jobs
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {names.healthy_check(env) for env in names.ENVIRONMENTS} <= checks
