"""Deployments and migrations read back from the Dagster instance, as the triage sees them:
runs with the deploy pipeline's own tags, finished, failed, rolled back and still running."""

from datetime import UTC, datetime, timedelta

from sage_ops.incidents.evidence.changes import correlate
from sage_ops.lineage.changes import (
    DEPLOYMENT,
    FAILURE,
    IN_PROGRESS,
    MIGRATION,
    ROLLED_BACK,
    recent_changes,
)
from tests.lineage.deploy_runs import (
    COMMIT,
    IMAGE,
    deploy,
    migrate,
    migrate_in_deploy,
    rollback,
)


def test_production_deployments_and_migrations_are_found(instance):
    before = datetime.now(UTC) - timedelta(seconds=1)
    good = deploy(instance, "production")
    failed = deploy(instance, "production", fail=True)
    deploy(instance, "staging")
    back = rollback(instance, "production")
    rollback(instance, "staging")
    migration = migrate(instance)
    in_deploy = migrate_in_deploy(instance)
    migrate_in_deploy(instance, skipped=True)  # nothing applied: not a change
    changes = {c.run_id: c for c in recent_changes(instance, before, "production")}
    # staging is not production's suspect
    assert set(changes) == {good, failed, back, migration, in_deploy}
    assert changes[in_deploy].kind == MIGRATION and changes[in_deploy].name == "production_schema"
    assert changes[good].kind == DEPLOYMENT and changes[good].status == "SUCCESS"
    assert (changes[good].commit, changes[good].image) == (COMMIT, IMAGE)
    assert changes[good].name == "production_deployment"
    assert changes[good].environment == "production"
    assert changes[good].started_at <= changes[good].finished_at
    # A rollout that rolled back never tagged its run with the environment: its step did start.
    assert changes[failed].status == FAILURE and changes[failed].commit == COMMIT
    assert changes[failed].environment == "production" and changes[failed].started_at
    assert changes[back].status == ROLLED_BACK and changes[back].name == "rollback_deployment"
    assert changes[migration].kind == MIGRATION and changes[migration].name == "migrate_database"
    assert all(before <= c.at <= datetime.now(UTC) for c in changes.values())


def test_a_deployment_in_progress_is_a_suspect(instance):
    seen = []
    since = datetime.now(UTC) - timedelta(minutes=5)
    run = deploy(
        instance, during=lambda: seen.extend(recent_changes(instance, since, "production"))
    )
    [running] = [c for c in seen if c.run_id == run]
    assert running.status == IN_PROGRESS and running.finished_at is None
    assert running.started_at and running.environment == "production"
    first_error = running.started_at + timedelta(seconds=75)
    [suspect] = correlate(
        [running], first_error + timedelta(minutes=1), timedelta(minutes=30), first_error
    )
    assert suspect.flagged
    assert f"started {running.started_at:%Y-%m-%d %H:%M:%S} UTC" in suspect.describe()
    assert "1 min 15 s before the first error" in suspect.describe()
    assert "in progress" in suspect.describe()


def test_only_changes_after_since_and_flagging_by_window(instance):
    run = deploy(instance)
    assert recent_changes(instance, datetime.now(UTC) + timedelta(seconds=1), "production") == []
    [change] = recent_changes(instance, datetime.now(UTC) - timedelta(minutes=5), "production")
    near = correlate([change], change.at + timedelta(minutes=10), timedelta(minutes=30))
    far = correlate([change], change.at + timedelta(hours=2), timedelta(minutes=30))
    assert near[0].flagged and not far[0].flagged and near[0].change.run_id == run
