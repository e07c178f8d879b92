"""Build-push-deploy per commit, assembled for the code location: the assets and checks
(assets.py), the jobs (jobs.py), git_push_sensor (sensors.py) and the rollback (rollback.py)."""

from dagster import Definitions

from sage_ops.deploy.defs.assets import (
    DEPLOY_ASSETS,
    PRODUCTION_ASSETS,
    image_policy,
    production_healthy,
    staging_healthy,
)
from sage_ops.deploy.defs.jobs import deploy_backend, deploy_to_staging, promote_to_production
from sage_ops.deploy.defs.rollback import rollback_deployment
from sage_ops.deploy.defs.sensors import git_push_sensor

defs = Definitions(
    assets=[*DEPLOY_ASSETS, *PRODUCTION_ASSETS],
    asset_checks=[image_policy, staging_healthy, production_healthy],
    jobs=[deploy_backend, deploy_to_staging, promote_to_production, rollback_deployment],
    sensors=[git_push_sensor],
)
