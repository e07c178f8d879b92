"""Stand-ins for what the deploy pipeline records, so correlation is tested without its code:
runs tagged sage_ops/environment, commit and image_digest, materializing
`<environment>_deployment` with metadata commit, image, environment; and `migrate_database`
runs."""

from __future__ import annotations

from dagster import DagsterInstance, MaterializeResult, asset, job, materialize, op

from sage_ops.incidents.defs import COMMIT_TAG, ENVIRONMENT_TAG, IMAGE_TAG


def deployment_asset(environment: str, fail: bool = False):
    @asset(name=f"{environment}_deployment")
    def _deployment() -> MaterializeResult:
        if fail:
            raise RuntimeError("rollout rolled back")
        return MaterializeResult(
            metadata={"commit": COMMIT, "image": IMAGE, "environment": environment}
        )

    return _deployment


COMMIT = "4f6c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"
IMAGE = "127.0.0.1:5000/sage-backend@sha256:" + "ab" * 32


def schema_asset(environment: str, skipped: bool = False):
    @asset(name=f"{environment}_schema")
    def _schema() -> MaterializeResult:
        if skipped:
            return MaterializeResult(metadata={"skipped": "DATABASE_URL not set"})
        return MaterializeResult(
            metadata={"commit": COMMIT, "environment": environment, "migrations_applied": "[]"}
        )

    return _schema


def migrate_in_deploy(instance: DagsterInstance, skipped: bool = False) -> str:
    """The deploy pipeline's own migration step (`<environment>_schema`)."""
    return materialize([schema_asset("production", skipped)], instance=instance).run_id


def deploy(instance: DagsterInstance, environment: str = "production", fail: bool = False) -> str:
    tags = {ENVIRONMENT_TAG: environment, COMMIT_TAG: COMMIT, IMAGE_TAG: IMAGE}
    result = materialize(
        [deployment_asset(environment, fail)], instance=instance, tags=tags, raise_on_error=False
    )
    return result.run_id


@op
def _apply() -> None:
    pass


@job(name="migrate_database")
def migrate_database() -> None:
    _apply()


def migrate(instance: DagsterInstance) -> str:
    return migrate_database.execute_in_process(instance=instance).run_id
