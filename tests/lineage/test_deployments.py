"""Rollouts read back from a real Dagster instance: health from the check evaluated in the same
run, promotion only of what runs healthy now, rollback to the newest healthy earlier digest."""

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    DagsterInstance,
    MaterializeResult,
    asset,
    materialize,
)

from sage_ops.lineage.deployments import UnsafeDeployment, healthy_now, rollback_target, rollouts
from sage_ops.lineage.names import deployment_asset, healthy_check

REPO = "127.0.0.1:5000/sage-backend@sha256:"
GOOD, BAD, OLD = REPO + "a" * 64, REPO + "b" * 64, REPO + "c" * 64


def _deploy(instance: DagsterInstance, image: str, healthy: bool, rollback_of: str = "") -> str:
    """A staging rollout as deploy records it: the materialization, then its health check."""
    key = deployment_asset("staging")

    @asset(name=key, check_specs=[AssetCheckSpec(healthy_check("staging"), asset=key)])
    def _deployment(context: AssetExecutionContext):
        extra = {"rollback_of": rollback_of} if rollback_of else {}
        yield MaterializeResult(metadata={"commit": image[-6:], "image": image, **extra})
        yield AssetCheckResult(check_name=healthy_check("staging"), passed=healthy)

    return materialize([_deployment], instance=instance, raise_on_error=False).run_id


def test_rollouts_come_newest_first_with_the_health_of_their_own_run(instance) -> None:
    first = _deploy(instance, OLD, healthy=True)
    second = _deploy(instance, BAD, healthy=False)
    history = list(rollouts(instance, "staging"))
    assert [(r.run_id, r.image, r.healthy) for r in history] == [
        (second, BAD, False),
        (first, OLD, True),
    ]
    assert list(rollouts(instance, "production")) == []


def test_only_what_runs_healthy_now_may_be_promoted(instance) -> None:
    _deploy(instance, BAD, healthy=False)
    with pytest.raises(UnsafeDeployment, match="failed its staging_healthy check"):
        healthy_now("staging", rollouts(instance, "staging"), BAD, BAD)
    _deploy(instance, GOOD, healthy=True)
    proof = healthy_now("staging", rollouts(instance, "staging"), GOOD, GOOD)
    assert proof.image == GOOD
    with pytest.raises(UnsafeDeployment, match="changed outside sage_ops"):
        healthy_now("staging", rollouts(instance, "staging"), OLD, GOOD)


def test_rolling_back_twice_goes_further_back(instance) -> None:
    _deploy(instance, OLD, healthy=True)
    _deploy(instance, GOOD, healthy=True)
    _deploy(instance, BAD, healthy=True)  # healthy by its check, rolled back by an operator
    assert rollback_target("staging", rollouts(instance, "staging"), BAD).image == GOOD
    _deploy(instance, GOOD, healthy=True, rollback_of=BAD)
    # GOOD runs now; BAD was rolled back from, so the next step back is OLD
    assert rollback_target("staging", rollouts(instance, "staging"), GOOD).image == OLD
