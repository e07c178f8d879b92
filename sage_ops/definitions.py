"""The code location: every capability's definitions merged, resources bound once."""

from dagster import Definitions

from sage_ops.backups import defs as backups
from sage_ops.resources import BackupConfig

defs = Definitions.merge(
    backups.defs,
    Definitions(resources={"backups": BackupConfig.from_env()}),
)
