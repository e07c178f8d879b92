"""Who may do what. Everyone signed in reads and launches runs whose effects are ordinary; admins
alone launch what writes a database, a deployment or a restore, change resource configuration at
launch, run the automations and limits, and rewrite the records operators rely on. A mutation the
gate does not know is refused.

A run is judged by what it would execute, resolved against the code location's definitions
(sage_ops.gate.catalog): the assets it selects (an explicit selection; else, or with an op or step
subset, every asset of its job), with the assets that always execute with them, and, for a job of
ops, the job itself. Each carries an effect mark (sage_ops.lineage.effects). A write whose
environment is not one ordinary users may change, and anything unmarked or unknown, is for admins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sage_ops.gate.catalog import Catalog, Mark
from sage_ops.gate.identity import Identity
from sage_ops.gate.targets import Target
from sage_ops.lineage.effects import EFFECTS, WRITES
from sage_ops.lineage.tags import LAUNCHED_BY_TAG

# Writes ordinary users may make: staging exists to receive any commit (deploy_to_staging).
OPEN_ENVIRONMENTS = frozenset({"staging"})
# Run config a non-admin may set: op config (checked against the job's own schema) and the
# executor's and loggers' settings. Resources (database URLs, scratch servers, targets, lint
# allow-lists, registries, ...) and anything else are set by deployment configuration only.
ORDINARY_CONFIG = frozenset({"ops", "execution", "loggers"})
# Run tags a non-admin may set: labels without a namespace, and the bookkeeping the UI sends.
# Namespaced tags steer the run launcher (ecs/container_overrides sets the run's environment,
# ecs/task_overrides its IAM role, dagster/image its image) or sage_ops' own locks and lineage
# (sage_ops/database-writer, sage_ops/deploy-lock, sage_ops/commit); the gate sets
# sage_ops/launched_by itself. A tag the job's definition sets, with the same value, is no change.
ORDINARY_TAGS = frozenset(
    {
        "dagster/partition",
        "dagster/partition_set",
        "dagster/asset_partition_range_start",
        "dagster/asset_partition_range_end",
        "dagster/solid_selection",
        "dagster/step_selection",
        "dagster/parent_run_id",
        "dagster/root_run_id",
        "dagster/is_resume_retry",
        "dagster/from_ui",
        LAUNCHED_BY_TAG,
    }
)

# Mutations that start or stop runs: judged by what those runs execute.
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
AUTOMATION = "automations decide what runs unattended (git_push_sensor launches deploy_backend)"
LIMITS = "concurrency limits and pools keep database writers and deploys one at a time"
HISTORY = "it rewrites the history operators and lineage rely on"
# Admin-only, whatever they name.
ADMIN_MUTATIONS = {
    "startSchedule": AUTOMATION,
    "stopRunningSchedule": AUTOMATION,
    "resetSchedule": AUTOMATION,
    "startSensor": AUTOMATION,
    "stopSensor": AUTOMATION,
    "resetSensor": AUTOMATION,
    "setSensorCursor": AUTOMATION,
    "setAutoMaterializePaused": AUTOMATION,
    "setConcurrencyLimit": LIMITS,
    "deleteConcurrencyLimit": LIMITS,
    "freeConcurrencySlotsForRun": LIMITS,
    "freeConcurrencySlots": LIMITS,
    "addDynamicPartition": "partitions name what may be deployed (commits) and triaged",
    "deleteDynamicPartitions": HISTORY,
    "deleteRun": HISTORY,
    "deletePipelineRun": HISTORY,
    "wipeAssets": HISTORY,
    "reportRunlessAssetEvents": HISTORY,
    "reportAssetCheckEvaluations": HISTORY,
    "shutdownRepositoryLocation": "it stops the code server every run and sensor needs",
    "setAppManagedComponent": "it changes the code location's components",
    "deleteAppManagedComponent": "it changes the code location's components",
    "refreshComponentState": "it changes the code location's components",
}
# Signed-in users may; audited. Evaluating an automation without acting, reloading the code.
ORDINARY_MUTATIONS = frozenset(
    {"sensorDryRun", "scheduleDryRun", "reloadRepositoryLocation", "reloadWorkspace"}
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
    reason: str  # why it is for admins (empty when it is not)
    message: str  # what the user is told when refused
    assets: tuple[str, ...] = ()  # what the runs would execute, as resolved for the audit line


class Policy:
    def __init__(
        self,
        admin_emails: Iterable[str],
        admin_groups: Iterable[str],
        catalog: Callable[[], Catalog],
    ) -> None:
        self.admin_emails = frozenset(e.lower() for e in admin_emails)
        self.admin_groups = frozenset(admin_groups)
        self.catalog = catalog

    def is_admin(self, identity: Identity) -> bool:
        return identity.email in self.admin_emails or bool(identity.groups & self.admin_groups)

    def decide(self, identity: Identity, action: str, targets: list[Target]) -> Decision:
        if not known(action):
            message = (
                f"Refused by the sage_ops gate: {action} is a mutation the gate does not know, "
                "so nobody may use it until sage_ops/gate/policy.py classifies it. Nothing was "
                "started or changed."
            )
            return Decision(False, True, f"{action} is not a known mutation", message)
        reason, assets = self.admin_reason(action, targets)
        if not reason or self.is_admin(identity):
            return Decision(True, bool(reason), reason, "", assets)
        message = self._refusal(identity, describe(action, targets), reason)
        return Decision(False, True, reason, message, assets)

    def admin_reason(self, action: str, targets: list[Target]) -> tuple[str, tuple[str, ...]]:
        """Why the action is for admins ("" when it is not), and the assets its runs execute."""
        if action in ADMIN_MUTATIONS:
            return ADMIN_MUTATIONS[action], ()
        if action.startswith("POST /report_asset"):
            return HISTORY, ()
        if action not in RUN_MUTATIONS:
            return "", ()
        catalog = self.catalog()
        reasons = [
            reason
            for t in targets
            for reason in (effects_reason(t, catalog), config_reason(t), tags_reason(t, catalog))
            if reason
        ]
        assets = sorted({a for t in targets for a in executed_assets(t, catalog)})
        return "; ".join(dict.fromkeys(reasons)), tuple(assets)

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


def known(action: str) -> bool:
    return (
        action in RUN_MUTATIONS
        or action in ADMIN_MUTATIONS
        or action in ORDINARY_MUTATIONS
        or action in HOUSEKEEPING_MUTATIONS
        or action.startswith("POST /report_asset")
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


def executed_assets(target: Target, catalog: Catalog) -> frozenset[str]:
    """The assets a run would execute: its explicit selection, else (or when it subsets ops or
    steps, which the gate does not resolve) every asset of its job."""
    assets = set(target.assets)
    job = catalog.jobs.get(target.job or "")
    if job is not None and (not assets or target.subset):
        assets |= job.assets
    return catalog.with_execution_sets(assets)


def effects_reason(target: Target, catalog: Catalog) -> str:
    if target.job and target.job not in catalog.jobs:
        return f"{target.job} is not a job of the code location the gate knows"
    assets = executed_assets(target, catalog)
    judged = {a: catalog.assets.get(a, Mark(None)) for a in sorted(assets)}
    job = catalog.jobs.get(target.job or "")
    if job is not None and not job.assets:
        judged[str(target.job)] = job.mark  # a job of ops carries its own mark
    found = [f"{name}: {why}" for name, mark in judged.items() if (why := mark_reason(mark))]
    if not found:
        return ""
    production = any(m.environment == "production" for m in judged.values())
    what = "it targets production" if production else "its effects are for admins"
    return f"{what} ({'; '.join(found)})"


def mark_reason(mark: Mark) -> str:
    """Why running something with this mark is for admins ("" when it is not)."""
    if mark.effect is None:
        return "declares no effect"
    if mark.effect not in EFFECTS:
        return f"declares an unknown effect {mark.effect}"
    if mark.effect in WRITES and mark.environment not in OPEN_ENVIRONMENTS:
        return f"{mark.effect} in {mark.environment or 'the configured target'}"
    return ""


def tags_reason(target: Target, catalog: Catalog) -> str:
    job = catalog.jobs.get(target.job or "")
    own = job.tags if job is not None else {}
    steering = sorted(
        {
            key
            for key, value in target.tags
            if "/" in key and key not in ORDINARY_TAGS and own.get(key) != value
        }
    )
    if not steering:
        return ""
    return f"it sets the run tags {', '.join(steering)} (only admins steer how a run runs)"


def config_reason(target: Target) -> str:
    keys = target.config_keys()
    if keys is None:
        return "its run config cannot be read"
    overridden = [k for k in keys if k.split(".", 1)[0] not in ORDINARY_CONFIG]
    if not overridden:
        return ""
    return f"it sets {', '.join(overridden)} at launch (only admins override resources)"
