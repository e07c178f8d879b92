"""Production only receives a digest healthy in staging now; a rollback only goes to a digest that
passed its health check and was not itself rolled back. Through the Dagster jobs, on the real
Docker swarm, registry and Postgres (the `stack` fixture of test_pipeline), checking what the
services run and what lineage records afterwards."""

import pytest
from dagster import AssetKey

from sage_ops import postgres
from sage_ops.deploy import steps
from sage_ops.lineage.deployments import Rollout, UnsafeDeployment, healthy_now, rollback_target
from sage_ops.lineage.instance import what_is_deployed
from sage_ops.migrations import bookkeeping
from tests.deploy import test_pipeline
from tests.deploy.test_pipeline import _commit_backend

stack = test_pipeline.stack  # the same fixture: real swarm services, registry and databases
# Swarm accepts the rollout (the image's own HEALTHCHECK passes) but the post-deploy smoke check
# fetches a port nothing listens on: a deployment recorded, then found unhealthy.
FAILING_SMOKE = "&health_url=http://127.0.0.1:8081/health"


@pytest.fixture
def approval(stack, monkeypatch):
    monkeypatch.setattr(steps, "SMOKE_TIMEOUT_S", 5.0)  # a failing smoke check fails fast
    stack.configure(require_approval=True)
    return stack


def _stage(stack, message, failing_smoke=False):
    """Commit, tick the sensor and run deploy_to_staging; returns (sha, result, pushed image)."""
    healthy_target = stack.settings["staging_target"]
    sha = _commit_backend(stack.repo, "healthy", message)
    [request] = stack.tick().run_requests
    if failing_smoke:
        stack.configure(staging_target=healthy_target + FAILING_SMOKE)
    result = stack.run(request)
    stack.configure(staging_target=healthy_target)
    image = result.asset_materializations_for_node("registry_image")[0].metadata["image"].value
    return sha, result, image


OPERATOR = {"sage_ops/launched_by": "alice@example.com"}  # as the UI gate tags a launch


def _run(stack, job_name, sha, *assets):
    selection = [AssetKey(name) for name in assets] or None
    return stack.definitions.resolve_job_def(job_name).execute_in_process(
        partition_key=sha,
        instance=stack.instance,
        asset_selection=selection,
        raise_on_error=False,
        tags=OPERATOR,
    )


def _rollback(stack, environment):
    return stack.definitions.resolve_job_def("rollback_deployment").execute_in_process(
        run_config={"ops": {"rollback_op": {"config": {"environment": environment}}}},
        instance=stack.instance,
        raise_on_error=False,
        tags=OPERATOR,
    )


def _failure(result) -> str:
    return "\n".join(e.step_failure_data.error.message for e in result.get_step_failure_events())


def _assert_refused(result, reason):
    assert not result.success
    assert reason in _failure(result)
    assert result.asset_materializations_for_node("production_deployment") == []


def _production_migrations(stack):
    with postgres.connect(stack.databases["production"]) as conn:
        return [r.name for r in bookkeeping.read_rows(conn) if r.applied]


def test_promotion_needs_the_digest_staging_runs_and_found_healthy(approval):
    stack = approval
    v1 = _commit_backend(stack.repo, "healthy", "v1")
    [request] = stack.tick().run_requests
    built = _run(stack, "deploy_to_staging", v1, "backend_image", "registry_image")
    assert built.success

    _assert_refused(_run(stack, "promote_to_production", v1), "never deployed to staging")
    assert stack.serving("production") is None
    assert _production_migrations(stack) == []  # refused before production's migrations too

    assert stack.run(request).success
    v2, staged, image2 = _stage(stack, "v2")
    assert staged.success and stack.serving("staging") == image2
    _assert_refused(_run(stack, "promote_to_production", v1), "staging now runs")
    assert stack.serving("production") is None

    promoted = _run(stack, "promote_to_production", v2)  # the normal approval path
    assert promoted.success and stack.serving("production") == image2
    meta = promoted.asset_materializations_for_node("production_deployment")[0].metadata
    assert meta["staging_run"].value == staged.run_id
    assert meta["launched_by"].value == "alice@example.com"

    v3, unhealthy, image3 = _stage(stack, "v3", failing_smoke=True)
    checks = {c.check_name: c.passed for c in unhealthy.get_asset_check_evaluations()}
    assert checks["staging_healthy"] is False and stack.serving("staging") == image3
    _assert_refused(_run(stack, "promote_to_production", v3), "staging_healthy")
    _assert_refused(_run(stack, "deploy_backend", v3, "production_deployment"), "staging_healthy")
    assert stack.serving("production") == image2


def test_rollback_skips_failed_checks_and_never_returns_to_what_it_rolled_back(approval):
    stack = approval
    v1, _, image1 = _stage(stack, "v1")
    _, unhealthy, image2 = _stage(stack, "v2", failing_smoke=True)
    assert not unhealthy.success and stack.serving("staging") == image2  # recorded, then failed
    _, staged, image3 = _stage(stack, "v3")
    assert staged.success and stack.serving("staging") == image3

    first = _rollback(stack, "staging")
    assert first.success and stack.serving("staging") == image1  # v2 failed staging_healthy
    deployed = what_is_deployed(stack.instance, "staging")
    assert (deployed.commit, deployed.image, deployed.rollback_of) == (v1, image1, image3)
    assert deployed.launched_by == "alice@example.com"
    [check] = first.get_asset_check_evaluations()
    assert check.check_name == "staging_healthy" and check.passed

    second = _rollback(stack, "staging")
    assert not second.success and "no earlier staging deployment" in _failure(second)
    assert stack.serving("staging") == image1  # never back to v3 (rolled back) or v2 (failed)


# -- the rules themselves, on recorded histories (newest first) -----------------------------------


def _rollout(digest, healthy=True, rollback_of=""):
    return Rollout(
        "staging", f"commit-{digest}", f"repo@sha256:{digest}", "run", healthy, rollback_of
    )


def _target(history, serving):
    return rollback_target("staging", history, f"repo@sha256:{serving}").image


def test_rolling_back_twice_goes_further_back_then_refuses():
    history = [_rollout("c"), _rollout("b"), _rollout("a")]
    assert _target(history, "c") == "repo@sha256:b"
    history.insert(0, _rollout("b", rollback_of="repo@sha256:c"))
    assert _target(history, "b") == "repo@sha256:a"
    history.insert(0, _rollout("a", rollback_of="repo@sha256:b"))
    with pytest.raises(UnsafeDeployment, match="no earlier staging deployment"):
        _target(history, "a")


def test_rollback_ignores_unchecked_and_failed_deployments_but_admits_a_redeploy():
    history = [_rollout("d"), _rollout("c", healthy=None), _rollout("b", healthy=False)]
    with pytest.raises(UnsafeDeployment):
        _target(history, "d")
    # c was rolled back, then deliberately deployed again and found healthy: it counts again.
    redeployed = _rollout("c")
    history = [_rollout("d"), redeployed, _rollout("b", rollback_of="repo@sha256:c"), _rollout("c")]
    assert _target(history, "d") == redeployed.image


@pytest.mark.parametrize(
    ("history", "serving", "reason"),
    [
        ([], "a", "never deployed to staging"),
        ([_rollout("b")], "b", "staging now runs"),
        ([_rollout("a", healthy=False)], "a", "failed its staging_healthy check"),
        ([_rollout("a", healthy=None)], "a", "has no passed staging_healthy check"),
        ([_rollout("a")], "b", "the staging service runs"),
        ([_rollout("a")], None, "the staging service runs"),
    ],
)
def test_promotion_refusals(history, serving, reason):
    running = f"repo@sha256:{serving}" if serving else None
    with pytest.raises(UnsafeDeployment, match=reason):
        healthy_now("staging", history, running, "repo@sha256:a")
    assert healthy_now("staging", [_rollout("a")], "repo@sha256:a", "repo@sha256:a").digest == (
        "sha256:a"
    )
