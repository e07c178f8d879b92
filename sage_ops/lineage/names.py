"""Names every capability shares: asset keys, job names, environments, owners and pools."""

OWNERS = ["team:platform"]  # who is paged for these assets; shown in the UI
DATABASE_POOL = "sage_ops_database"

ENVIRONMENTS = ("staging", "production")

# Asset keys: written once here, so the writers' assets and the readers' queries cannot drift.
DB_BACKUP = "db_backup"
PRE_MIGRATION_BACKUP = "pre_migration_backup"
APPLIED_MIGRATIONS = "applied_migrations"
BACKEND_IMAGE = "backend_image"
REGISTRY_IMAGE = "registry_image"


def schema_asset(environment: str) -> str:
    """The guarded migrations of a commit against the environment's database."""
    return f"{environment}_schema"


def deployment_asset(environment: str) -> str:
    """A commit's rollout to the environment."""
    return f"{environment}_deployment"


def healthy_check(environment: str) -> str:
    """The deployment's smoke check; a rollback records one too."""
    return f"{environment}_healthy"


# Every asset partitioned by commit, in pipeline order.
COMMIT_ASSETS = (
    BACKEND_IMAGE,
    REGISTRY_IMAGE,
    *(key for env in ENVIRONMENTS for key in (schema_asset(env), deployment_asset(env))),
)

# Job names.
NIGHTLY_BACKUP = "nightly_backup"
RESTORE_DATABASE = "restore_database"
MIGRATE_DATABASE = "migrate_database"
DEPLOY_BACKEND = "deploy_backend"
DEPLOY_TO_STAGING = "deploy_to_staging"
PROMOTE_TO_PRODUCTION = "promote_to_production"
ROLLBACK_DEPLOYMENT = "rollback_deployment"
INCIDENT_TRIAGE = "incident_triage"
# Jobs that change a database or what serves production: the UI gate lets only admins launch them.
DESTRUCTIVE_JOBS = frozenset(
    {RESTORE_DATABASE, PROMOTE_TO_PRODUCTION, ROLLBACK_DEPLOYMENT, MIGRATE_DATABASE, DEPLOY_BACKEND}
)
