"""What an environment ran, whether each rollout passed its health check, and what that allows:
promoting a digest onward, and rolling an environment back.

A deployment is recorded (materialized) before its `<env>_healthy` check runs, so the record alone
says nothing about health; the check's evaluation in the same run does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    EventLogRecord,
)

from sage_ops.errors import SageOpsError
from sage_ops.lineage.metadata import COMMIT, IMAGE, ROLLBACK_OF
from sage_ops.lineage.names import deployment_asset, healthy_check
from sage_ops.lineage.tags import digest_of

SCAN_LIMIT = 500


class UnsafeDeployment(SageOpsError):
    """Lineage does not show the digest safe to deploy where it was asked to go."""


@dataclass(frozen=True)
class Rollout:
    environment: str
    commit: str
    image: str  # repo@sha256:...
    run_id: str
    healthy: bool | None  # its <env>_healthy check passed, failed, or never ran
    rollback_of: str = ""  # the image a rollback replaced; "" for a deployment

    @property
    def digest(self) -> str:
        return digest_of(self.image)


def rollouts(instance: DagsterInstance, environment: str) -> Iterator[Rollout]:
    """The environment's rollouts, newest first; health is read lazily, one run at a time."""
    key = AssetKey(deployment_asset(environment))
    check = AssetCheckKey(key, healthy_check(environment))
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key), limit=SCAN_LIMIT
    ).records
    for record in records:
        event = record.asset_materialization
        meta = {k: v.value for k, v in event.metadata.items()} if event else {}
        if IMAGE in meta:
            yield Rollout(
                environment,
                str(meta.get(COMMIT, "")),
                str(meta[IMAGE]),
                record.run_id,
                _health(instance, record, check),
                str(meta.get(ROLLBACK_OF, "")),
            )


def _health(instance: DagsterInstance, record: EventLogRecord, check: AssetCheckKey) -> bool | None:
    """The last evaluation of `check` in the record's run that concerns this materialization."""
    entries = instance.all_logs(record.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    verdicts = [
        e.asset_check_evaluation.passed
        for e in entries
        if e.asset_check_evaluation and _concerns(e.asset_check_evaluation, check, record)
    ]
    return verdicts[-1] if verdicts else None


def _concerns(
    evaluation: AssetCheckEvaluation, check: AssetCheckKey, record: EventLogRecord
) -> bool:
    target = evaluation.target_materialization_data  # None when an op logged it (rollbacks)
    return evaluation.asset_check_key == check and (
        target is None or target.storage_id == record.storage_id
    )


def healthy_now(
    environment: str, history: Iterable[Rollout], serving: str | None, image: str
) -> Rollout:
    """The rollout proving `image` healthy in `environment` now, or UnsafeDeployment: the newest
    rollout there is this digest, it passed its check, and the service still runs it."""
    wanted = digest_of(image)
    latest = next(iter(history), None)
    if latest is None:
        raise UnsafeDeployment(
            f"{wanted} was never deployed to {environment}: deploy it there first"
        )
    if latest.digest != wanted:
        raise UnsafeDeployment(
            f"{environment} now runs {latest.digest} (commit {latest.commit[:12]}), not "
            f"{wanted}: only what {environment} runs and found healthy can go further"
        )
    if latest.healthy is False:
        raise UnsafeDeployment(
            f"{wanted} failed its {environment}_healthy check (run {latest.run_id[:8]})"
        )
    if latest.healthy is None:
        raise UnsafeDeployment(
            f"{wanted} has no passed {environment}_healthy check (run {latest.run_id[:8]})"
        )
    if serving is None or digest_of(serving) != wanted:
        raise UnsafeDeployment(
            f"the {environment} service runs {serving or 'nothing'}, not {wanted} as lineage "
            "says: it was changed outside sage_ops"
        )
    return latest


def rollback_target(environment: str, history: Iterable[Rollout], serving: str | None) -> Rollout:
    """The newest rollout that passed its check, is not what runs now, and that no later rollback
    moved away from - so rolling back twice goes further back instead of returning to the bad one.
    """
    rolled_back = {digest_of(serving)} if serving else set()
    looked_at = 0
    for rollout in history:
        looked_at += 1
        if rollout.healthy is True and rollout.digest not in rolled_back:
            return rollout
        if rollout.rollback_of:
            rolled_back.add(digest_of(rollout.rollback_of))
    raise UnsafeDeployment(
        f"no earlier {environment} deployment to roll back to: of {looked_at} in lineage, none "
        f"other than what runs now ({serving or 'nothing'}) passed {environment}_healthy without "
        "being rolled back since; it keeps running"
    )
