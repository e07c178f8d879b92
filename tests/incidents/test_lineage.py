"""Deployments and migrations read back from the Dagster instance, as the triage sees them."""

from datetime import UTC, datetime, timedelta

from sage_ops.incidents.changes import DEPLOYMENT, MIGRATION, correlate
from sage_ops.incidents.defs import recent_changes
from tests.incidents.deploy_standins import COMMIT, IMAGE, deploy, migrate, migrate_in_deploy


def test_production_deployments_and_migrations_are_found(instance):
    before = datetime.now(UTC) - timedelta(seconds=1)
    good = deploy(instance, "production")
    failed = deploy(instance, "production", fail=True)
    deploy(instance, "staging")
    migration = migrate(instance)
    in_deploy = migrate_in_deploy(instance)
    migrate_in_deploy(instance, skipped=True)  # nothing applied: not a change
    changes = {c.run_id: c for c in recent_changes(instance, before, "production")}
    # staging is not production's suspect
    assert set(changes) == {good, failed, migration, in_deploy}
    assert changes[in_deploy].kind == MIGRATION and changes[in_deploy].name == "production_schema"
    assert changes[good].kind == DEPLOYMENT and changes[good].status == "SUCCESS"
    assert (changes[good].commit, changes[good].image) == (COMMIT, IMAGE)
    assert changes[good].name == "production_deployment"
    assert changes[good].environment == "production"
    assert changes[failed].status == "FAILURE" and changes[failed].commit == COMMIT
    assert changes[migration].kind == MIGRATION and changes[migration].name == "migrate_database"
    assert all(before <= c.finished_at <= datetime.now(UTC) for c in changes.values())


def test_only_changes_after_since_and_flagging_by_window(instance):
    run = deploy(instance)
    assert recent_changes(instance, datetime.now(UTC) + timedelta(seconds=1), "production") == []
    [change] = recent_changes(instance, datetime.now(UTC) - timedelta(minutes=5), "production")
    near = correlate([change], change.finished_at + timedelta(minutes=10), timedelta(minutes=30))
    far = correlate([change], change.finished_at + timedelta(hours=2), timedelta(minutes=30))
    assert near[0].flagged and not far[0].flagged and near[0].change.run_id == run
