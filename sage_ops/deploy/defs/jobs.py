"""The deploy jobs, each one commit (a partition of the assets): the whole way to production, to
staging only (approval mode), and the approval itself."""

from dagster import define_asset_job, in_process_executor

from sage_ops.deploy.defs.assets import DEPLOY_ASSETS, PRODUCTION_ASSETS
from sage_ops.deploy.defs.run_tags import DEPLOY_TAGS
from sage_ops.lineage.names import DEPLOY_BACKEND, DEPLOY_TO_STAGING, PROMOTE_TO_PRODUCTION

deploy_backend = define_asset_job(
    DEPLOY_BACKEND,
    selection=DEPLOY_ASSETS + PRODUCTION_ASSETS,
    tags=DEPLOY_TAGS,
    executor_def=in_process_executor,
    description="Build, push, migrate and roll out one commit to staging, then production.",
)
deploy_to_staging = define_asset_job(
    DEPLOY_TO_STAGING,
    selection=DEPLOY_ASSETS,
    tags=DEPLOY_TAGS,
    executor_def=in_process_executor,
    description="Build, push, migrate and roll out one commit to staging only (approval mode).",
)
promote_to_production = define_asset_job(
    PROMOTE_TO_PRODUCTION,
    selection=PRODUCTION_ASSETS,
    tags=DEPLOY_TAGS,
    executor_def=in_process_executor,
    description="The manual approval: roll a commit that is healthy on staging out to production.",
)
