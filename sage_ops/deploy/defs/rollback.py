"""rollback_deployment: an environment back on its last digest that passed its health check,
recorded as a materialization and health check of its deployment asset, as a rollout is."""

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    Config,
    Failure,
    OpExecutionContext,
    job,
    op,
)
from pydantic import Field

from sage_ops.deploy import steps
from sage_ops.deploy.defs.run_tags import DEPLOY_TAGS, tag_run
from sage_ops.deploy.resources import ENVIRONMENTS, DeployConfig
from sage_ops.errors import ConfigError
from sage_ops.lineage import metadata
from sage_ops.lineage.deployments import rollback_target, rollouts
from sage_ops.lineage.effects import DEPLOYS, effect
from sage_ops.lineage.failures import operator_errors
from sage_ops.lineage.metadata import ROLLBACK_OF
from sage_ops.lineage.names import ROLLBACK_DEPLOYMENT, deployment_asset, healthy_check
from sage_ops.lineage.tags import launched_by
from sage_ops.platforms.targets import open_deployer


class RollbackRequest(Config):
    environment: str = Field(description="staging or production")


@op(
    description="Redeploy the environment's last digest that passed its health check and was not "
    "rolled back since, from lineage; its health is checked and recorded like a deployment's."
)
def rollback_op(context: OpExecutionContext, config: RollbackRequest, deploy: DeployConfig):
    environment = config.environment
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"environment must be one of {', '.join(ENVIRONMENTS)}")
    key = AssetKey(deployment_asset(environment))
    target_url = deploy.target(environment)
    with operator_errors():
        current = open_deployer(target_url).current_image()
        target = rollback_target(environment, rollouts(context.instance, environment), current)
        result = steps.deploy_commit(
            target_url, deploy.deploy_timeout_s, target.image, context.log.info
        )
    tag_run(context, environment, target.commit, result.image)
    context.log_event(
        AssetMaterialization(
            asset_key=key,
            partition=target.commit,
            metadata={
                **metadata.deployment(
                    target.commit,
                    environment,
                    result.image,
                    result.revision,
                    result.previous_image,
                    launched_by(context.run.tags),
                ),
                ROLLBACK_OF: current or "",
            },
        )
    )
    _check_health(context, target_url, key, environment)


def _check_health(
    context: OpExecutionContext, target_url: str, key: AssetKey, environment: str
) -> None:
    """The rollback's own <env>_healthy evaluation: a later rollback or promotion reads it."""
    with operator_errors():
        passed, detail = steps.smoke_check(target_url)
    # log_event stores check evaluations too; its type annotation has not caught up.
    context.log_event(
        AssetCheckEvaluation(  # type: ignore[arg-type]
            asset_key=key,
            check_name=healthy_check(environment),
            passed=passed,
            description=detail,
        )
    )
    if not passed:
        raise Failure(description=f"DeployError: {detail}", allow_retries=False)


@job(
    name=ROLLBACK_DEPLOYMENT,
    tags={**DEPLOY_TAGS, **effect(DEPLOYS)},
    description="Roll an environment back to its last healthy digest that was not rolled back.",
)
def rollback_deployment() -> None:
    rollback_op()
