"""The code location: every capability's definitions merged, resources bound once."""

from dagster import Definitions

from sage_ops.backups import defs as backups
from sage_ops.backups.resources import BackupConfig
from sage_ops.deploy import defs as deploy
from sage_ops.deploy.resources import DeployConfig
from sage_ops.incidents import defs as incidents
from sage_ops.incidents.resources import IncidentConfig
from sage_ops.migrations import defs as migrations
from sage_ops.migrations.resources import MigrationConfig

defs = Definitions.merge(
    backups.defs,
    migrations.defs,
    deploy.defs,
    incidents.defs,
    Definitions(
        resources={
            "backups": BackupConfig.from_env(),
            "migrations": MigrationConfig.from_env(),
            "deploy": DeployConfig.from_env(),
            "incidents": IncidentConfig.from_env(),
        }
    ),
)
