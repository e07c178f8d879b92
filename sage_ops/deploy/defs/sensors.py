"""git_push_sensor: a push to the watched branch becomes one deploy run of its newest commit."""

from dagster import (
    AddDynamicPartitionsRequest,
    AssetObservation,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from sage_ops.deploy import steps
from sage_ops.deploy.defs.jobs import deploy_backend, deploy_to_staging
from sage_ops.deploy.resources import DeployConfig
from sage_ops.lineage.names import BACKEND_IMAGE, DEPLOY_BACKEND, DEPLOY_TO_STAGING
from sage_ops.lineage.tags import COMMIT_SUBJECT_TAG, COMMIT_TAG
from sage_ops.platforms.git.push_scan import PushScan, scan
from sage_ops.platforms.git.run import GitSourceError


@sensor(
    jobs=[deploy_backend, deploy_to_staging],
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches SAGE_OPS_REPO's SAGE_OPS_BRANCH for commits touching "
    "SAGE_OPS_WATCH_PATHS; one run per commit SHA (the newest of a burst; older ones are "
    "recorded as superseded).",
)
def git_push_sensor(
    context: SensorEvaluationContext, deploy: DeployConfig
) -> SensorResult | SkipReason:
    if not deploy.repo:
        return SkipReason("SAGE_OPS_REPO is not set: no repository to watch")
    try:
        result = scan(
            deploy.repo,
            deploy.branch,
            list(deploy.watch_paths),
            context.cursor or None,
            steps.git_cache_dir(),
            credential=deploy.repo_credential,
        )
    except GitSourceError as exc:
        return SkipReason(f"{exc}; cursor unchanged")  # keeps the cursor: nothing is lost
    return _sensor_result(result, deploy.require_approval)


def _sensor_result(result: PushScan, require_approval: bool) -> SensorResult:
    if result.deploy is None:
        return SensorResult(skip_reason=SkipReason(result.note), cursor=result.cursor)
    commit = result.deploy
    shas = [c.sha for c in result.superseded] + [commit.sha]
    job_name = DEPLOY_TO_STAGING if require_approval else DEPLOY_BACKEND
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=commit.sha,
                job_name=job_name,
                partition_key=commit.sha,
                tags={
                    COMMIT_TAG: commit.sha,
                    COMMIT_SUBJECT_TAG: commit.subject[:200],
                },
            )
        ],
        dynamic_partitions_requests=[AddDynamicPartitionsRequest("commits", shas)],
        asset_events=[
            AssetObservation(
                asset_key=BACKEND_IMAGE,
                partition=old.sha,
                metadata={"status": f"superseded by {commit.short}", "subject": old.subject},
            )
            for old in result.superseded
        ],
        cursor=result.cursor,
    )
