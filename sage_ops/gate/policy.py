"""Who may do what. Everyone signed in reads and launches ordinary runs; destructive jobs, anything
whose target is production, and changes to the records operators rely on are for admins only.

"Targets production" means, for a run that would start or stop:
- its job is one of DESTRUCTIVE_JOBS (lineage.names: the destructive jobs, and deploy_backend,
  whose selection ends in production_schema and production_deployment);
- or it selects an asset (or an asset check's asset) whose name starts with `production_`;
- or it is an ad-hoc asset job (`__ASSET_JOB`) without an explicit selection, i.e. every asset;
- or its run config names production anywhere (a key or value containing "production", any case:
  `environment: production`, `database_url_env: PRODUCTION_DATABASE_URL`, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sage_ops.gate.identity import Identity
from sage_ops.gate.targets import Target
from sage_ops.lineage.names import DESTRUCTIVE_JOBS

PRODUCTION_ASSET_PREFIX = "production_"
ASSET_JOB_PREFIX = "__ASSET_JOB"

# Mutations that start or stop runs: destructive when what they touch targets production.
RUN_MUTATIONS = frozenset(
    {
        "launchRun",
        "launchPipelineExecution",
        "launchMultipleRuns",
        "launchRunReexecution",
        "launchPipelineReexecution",
        "launchPartitionBackfill",
        "reexecutePartitionBackfill",
        "resumePartitionBackfill",
        "cancelPartitionBackfill",
        "terminateRun",
        "terminatePipelineExecution",
        "terminateRuns",
    }
)
# Always admin-only, whatever they name: each rewrites history operators and lineage trust
# (rollback picks its image from production_deployment's materializations) or the code itself.
ADMIN_MUTATIONS = {
    "deleteRun": "it deletes a run's record",
    "deletePipelineRun": "it deletes a run's record",
    "wipeAssets": "it wipes asset history",
    "deleteDynamicPartitions": "it deletes partitions (commits) and their history",
    "reportRunlessAssetEvents": "it records asset events no run produced",
    "reportAssetCheckEvaluations": "it records check results no run produced",
    "setSensorCursor": "it moves a sensor's cursor (git_push_sensor's decides what deploys)",
    "setAppManagedComponent": "it changes the code location's components",
    "deleteAppManagedComponent": "it changes the code location's components",
    "refreshComponentState": "it changes the code location's components",
}
# Signed-in users may; audited. Turning automations on or off, reloading code, concurrency.
ORDINARY_MUTATIONS = frozenset(
    {
        "startSchedule",
        "stopRunningSchedule",
        "resetSchedule",
        "startSensor",
        "stopSensor",
        "resetSensor",
        "sensorDryRun",
        "scheduleDryRun",
        "reloadRepositoryLocation",
        "reloadWorkspace",
        "shutdownRepositoryLocation",
        "addDynamicPartition",
        "setAutoMaterializePaused",
        "setConcurrencyLimit",
        "deleteConcurrencyLimit",
        "freeConcurrencySlotsForRun",
        "freeConcurrencySlots",
    }
)
# The UI's own bookkeeping: changes nothing operators care about; not audited.
HOUSEKEEPING_MUTATIONS = frozenset({"logTelemetry", "setNuxSeen"})
# dagster-webserver's REST endpoints that write asset events: admin-only like their mutations.
REPORT_PATHS = (
    "/report_asset_materialization/",
    "/report_asset_check/",
    "/report_asset_observation/",
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    destructive: bool
    reason: str  # why it is destructive (empty when it is not)
    message: str  # what the user is told when refused


class Policy:
    def __init__(self, admin_emails: Iterable[str], admin_groups: Iterable[str]) -> None:
        self.admin_emails = frozenset(e.lower() for e in admin_emails)
        self.admin_groups = frozenset(admin_groups)

    def is_admin(self, identity: Identity) -> bool:
        return identity.email in self.admin_emails or bool(identity.groups & self.admin_groups)

    def decide(self, identity: Identity, action: str, targets: list[Target]) -> Decision:
        reason = destructive_reason(action, targets)
        if not reason or self.is_admin(identity):
            return Decision(True, bool(reason), reason, "")
        return Decision(
            False, True, reason, self._refusal(identity, describe(action, targets), reason)
        )

    def _refusal(self, identity: Identity, what: str, reason: str) -> str:
        who_may = []
        if self.admin_groups:
            who_may.append(f"members of {', '.join(sorted(self.admin_groups))}")
        if self.admin_emails:
            who_may.append(", ".join(sorted(self.admin_emails)))
        return (
            f"Refused by the sage_ops gate: {identity.email} may not {what}, because {reason}. "
            f"Only sage_ops admins may ({'; '.join(who_may) or 'none configured'}): ask one of "
            "them to do it. Nothing was started or changed."
        )


VERBS = {
    "launchRun": "launch",
    "launchPipelineExecution": "launch",
    "launchMultipleRuns": "launch",
    "launchRunReexecution": "re-execute",
    "launchPipelineReexecution": "re-execute",
    "launchPartitionBackfill": "backfill",
    "reexecutePartitionBackfill": "re-execute a backfill of",
    "resumePartitionBackfill": "resume a backfill of",
    "cancelPartitionBackfill": "cancel a backfill of",
    "terminateRun": "terminate a run of",
    "terminatePipelineExecution": "terminate a run of",
    "terminateRuns": "terminate runs of",
}


def describe(action: str, targets: list[Target]) -> str:
    """An action in an operator's words: "launch restore_database", "wipeAssets db_backup"."""
    names = sorted({t.job or t.name or ", ".join(t.assets) for t in targets} - {""})
    return " ".join([VERBS.get(action, action), ", ".join(names)]).strip()


def destructive_reason(action: str, targets: list[Target]) -> str:
    if action in ADMIN_MUTATIONS:
        return ADMIN_MUTATIONS[action]
    if action.startswith("POST /report_asset"):
        return "it records asset events no run produced"
    if action not in RUN_MUTATIONS:
        return ""
    return "; ".join(r for r in (production_reason(t) for t in targets) if r)


def production_reason(target: Target) -> str:
    if target.job in DESTRUCTIVE_JOBS:
        return f"{target.job} is a destructive job"
    production = [
        a for a in target.assets if a.rsplit("/", 1)[-1].startswith(PRODUCTION_ASSET_PREFIX)
    ]
    if production:
        return f"it targets production ({', '.join(production)})"
    if target.job and target.job.startswith(ASSET_JOB_PREFIX) and not target.assets:
        return "it targets every asset, production's included"
    if mentions_production(target.run_config):
        return "its run config names production"
    return ""


def mentions_production(value: Any) -> bool:
    if isinstance(value, str):
        return "production" in value.lower()
    if isinstance(value, dict):
        return any(mentions_production(k) or mentions_production(v) for k, v in value.items())
    if isinstance(value, list):
        return any(mentions_production(v) for v in value)
    return False
