"""What deploy runs carry: every deploy job's lock, and the digest a completed rollout (or
rollback) leaves on its run for lineage to read back."""

from dagster import AssetExecutionContext, OpExecutionContext

from sage_ops.lineage.tags import DATABASE_WRITER_TAG, DEPLOY_LOCK, DEPLOY_LOCK_TAG, deployment_tags

# A deploy migrates databases, so it also queues behind backups and migrations.
DEPLOY_TAGS = {DEPLOY_LOCK_TAG: DEPLOY_LOCK, **DATABASE_WRITER_TAG}


def tag_run(
    context: AssetExecutionContext | OpExecutionContext, environment: str, commit: str, image: str
) -> None:
    """Join keys on the run itself, so the UI's run filter finds deployments by them."""
    context.instance.add_run_tags(
        context.run.run_id,
        deployment_tags(environment, commit, image),
    )
