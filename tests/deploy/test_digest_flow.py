"""The digest a rollout deploys is the one its commit's run pushed, passed down the asset graph,
and the image check finds its build by run and partition, whatever was built in between: two
commits' deploys interleaved with more than 20 builds between them, on the real Engine, registry
and swarm."""

from dagster import AssetKey

from sage_ops.lineage.instance import materialized_for
from tests.deploy.test_pipeline import _commit_backend, _materialized, stack  # noqa: F401

BUILDS_BETWEEN = 21  # the old lookup searched the latest 20 backend_image records


def _run(pipeline, job, sha, *keys):
    selection = [AssetKey(k) for k in keys] or None
    result = pipeline.definitions.resolve_job_def(job).execute_in_process(
        partition_key=sha,
        instance=pipeline.instance,
        asset_selection=selection,
        raise_on_error=False,
    )
    assert result.success
    return result


def _pushed(result):
    return _materialized(result, "registry_image")[0].metadata["image"].value


def _checks(result):
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_interleaved_commits_each_deploy_and_check_their_own_build(stack):  # noqa: F811
    first = _commit_backend(stack.repo, "healthy", "first")
    second = _commit_backend(stack.repo, "healthy", "second")
    stack.instance.add_dynamic_partitions("commits", [first, second])
    built = _run(stack, "deploy_to_staging", first, "backend_image", "registry_image")
    first_image = _pushed(built)
    assert _checks(built)["image_policy"].passed
    for _ in range(BUILDS_BETWEEN):
        _run(stack, "deploy_to_staging", second, "backend_image")

    deployed = _run(stack, "deploy_to_staging", second)  # builds, pushes and rolls out `second`
    second_image = _pushed(deployed)
    assert second_image != first_image
    assert _checks(deployed)["image_policy"].passed
    [staged] = _materialized(deployed, "staging_deployment")
    assert staged.metadata["image"].value == second_image
    assert stack.serving("staging") == second_image

    # `first`'s own rollout, in a later run: the digest its commit pushed, not the newest push.
    rolled = _run(stack, "deploy_to_staging", first, "staging_schema", "staging_deployment")
    [staged] = _materialized(rolled, "staging_deployment")
    assert staged.metadata["image"].value == first_image
    assert stack.serving("staging") == first_image

    # What image_policy reads for `first`'s run, after all those builds: `first`'s own build,
    # which the latest 20 backend_image records (the old lookup) no longer hold.
    window = stack.instance.fetch_materializations(AssetKey("backend_image"), limit=20).records
    assert built.run_id not in {r.run_id for r in window}
    build = materialized_for(stack.instance, "backend_image", first, built.run_id)
    materialized = _materialized(built, "backend_image")[0].metadata
    assert build is not None and build["image_id"] == materialized["image_id"].value
    assert build["checks"] == materialized["checks"].value

    promoted = _run(stack, "promote_to_production", first)
    [production] = _materialized(promoted, "production_deployment")
    assert production.metadata["image"].value == first_image
    assert stack.serving("production") == first_image
