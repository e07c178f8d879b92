"""Runs and backfills a mutation names by id, as the Dagster instance records them."""

from __future__ import annotations

from dagster import DagsterInstance

from sage_ops.gate.targets import PARTITION_TAG, Target


class InstanceLookup:
    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance

    def run(self, run_id: str) -> Target | None:
        run = self.instance.get_run_by_id(run_id)
        if run is None:
            return None
        keys = [k.to_user_string() for k in run.asset_selection or ()]
        keys += [k.asset_key.to_user_string() for k in run.asset_check_selection or ()]
        return Target(
            job=run.job_name,
            assets=tuple(keys),
            partition=run.tags.get(PARTITION_TAG),
            run_config=dict(run.run_config) if run.run_config else None,
            name=run_id,
        )

    def backfill(self, backfill_id: str) -> Target | None:
        backfill = self.instance.get_backfill(backfill_id)
        if backfill is None:
            return None
        names = list(backfill.partition_names or [])
        partition = f"{len(names)} partitions" if len(names) > 1 else next(iter(names), None)
        return Target(
            job=backfill.job_name,
            assets=tuple(k.to_user_string() for k in backfill.asset_selection or ()),
            partition=partition,
            run_config=dict(backfill.run_config) if backfill.run_config else None,
            name=backfill_id,
        )
