"""Deploy runs as the deploy pipeline records them, without Docker or ECS: real Dagster runs
carrying the deploy jobs' own tags (sage_ops.deploy.defs.run_tags.DEPLOY_TAGS, the sensor's
commit tag) and a `<environment>_deployment` step that, like the real one, tags its run with the
deploy code's own `tag_run` once the rollout completed - and not when it rolled back."""

from __future__ import annotations

from collections.abc import Callable

from dagster import DagsterInstance, MaterializeResult, asset, job, materialize, op

from sage_ops.deploy.defs.run_tags import DEPLOY_TAGS, tag_run
from sage_ops.lineage.tags import COMMIT_TAG
from sage_ops.platforms.deployer import DeployRolledBack

COMMIT = "4f6c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"
IMAGE = "127.0.0.1:5000/sage-backend@sha256:" + "ab" * 32
RUN_TAGS = {**DEPLOY_TAGS, COMMIT_TAG: COMMIT}  # the job's tags and git_push_sensor's


def deployment_asset(environment: str, fail: bool, during: Callable[[], None]):
    @asset(name=f"{environment}_deployment")
    def _deployment(context) -> MaterializeResult:
        during()  # the rollout is under way: the step has started, the run is not finished
        if fail:
            raise DeployRolledBack("the circuit breaker rolled the deployment back")
        tag_run(context, environment, COMMIT, IMAGE)
        return MaterializeResult(
            metadata={"commit": COMMIT, "image": IMAGE, "environment": environment}
        )

    return _deployment


def schema_asset(environment: str, skipped: bool = False):
    @asset(name=f"{environment}_schema")
    def _schema() -> MaterializeResult:
        if skipped:
            return MaterializeResult(metadata={"skipped": "DATABASE_URL not set"})
        return MaterializeResult(
            metadata={"commit": COMMIT, "environment": environment, "migrations_applied": "[]"}
        )

    return _schema


def deploy(
    instance: DagsterInstance,
    environment: str = "production",
    fail: bool = False,
    during: Callable[[], None] = lambda: None,
) -> str:
    result = materialize(
        [deployment_asset(environment, fail, during)],
        instance=instance,
        tags=RUN_TAGS,
        raise_on_error=False,
    )
    return result.run_id


def migrate_in_deploy(instance: DagsterInstance, skipped: bool = False) -> str:
    """The deploy pipeline's own migration step (`<environment>_schema`)."""
    return materialize([schema_asset("production", skipped)], instance=instance).run_id


@op(config_schema={"environment": str})
def rollback_op(context) -> None:
    tag_run(context, context.op_config["environment"], COMMIT, IMAGE)


@job(name="rollback_deployment", tags=DEPLOY_TAGS)
def rollback_deployment() -> None:
    rollback_op()


def rollback(instance: DagsterInstance, environment: str = "production") -> str:
    config = {"ops": {"rollback_op": {"config": {"environment": environment}}}}
    return rollback_deployment.execute_in_process(run_config=config, instance=instance).run_id


@op
def _apply() -> None:
    pass


@job(name="migrate_database")
def migrate_database() -> None:
    _apply()


def migrate(instance: DagsterInstance) -> str:
    return migrate_database.execute_in_process(instance=instance).run_id
