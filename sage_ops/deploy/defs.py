"""Build-push-deploy per commit: git_push_sensor -> backend_image -> registry_image ->
staging_schema -> staging_deployment -> production_schema -> production_deployment."""

from collections.abc import Sequence

from dagster import (
    AddDynamicPartitionsRequest,
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetRecordsFilter,
    Backoff,
    Config,
    DataVersion,
    DefaultSensorStatus,
    Definitions,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    asset_check,
    define_asset_job,
    in_process_executor,
    job,
    op,
    sensor,
)
from pydantic import Field

from sage_ops.backups.resources import BackupConfig
from sage_ops.deploy import steps
from sage_ops.deploy.resources import ENVIRONMENTS, DeployConfig
from sage_ops.errors import ConfigError
from sage_ops.lineage.deployments import Rollout, healthy_now, rollback_target, rollouts
from sage_ops.lineage.failures import operator_errors
from sage_ops.lineage.names import (
    APPLIED_MIGRATIONS,
    BACKEND_IMAGE,
    DEPLOY_BACKEND,
    DEPLOY_TO_STAGING,
    OWNERS,
    PROMOTE_TO_PRODUCTION,
    REGISTRY_IMAGE,
    ROLLBACK_DEPLOYMENT,
    deployment_asset,
    healthy_check,
    schema_asset,
)
from sage_ops.lineage.tags import (
    COMMIT_SUBJECT_TAG,
    COMMIT_TAG,
    DATABASE_WRITER_TAG,
    DEPLOY_LOCK,
    DEPLOY_LOCK_TAG,
    deployment_tags,
    launched_by,
)
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.platforms.deployer import DeployError
from sage_ops.platforms.git import GitSourceError, PushScan, scan
from sage_ops.platforms.targets import open_deployer
from sage_ops.units import human_bytes, human_seconds

GROUP = "deploy"
PROMOTED_FROM = {"production": "staging"}  # an environment receives only what the other proved
commits = DynamicPartitionsDefinition(name="commits")
DEPLOY_TAGS = {DEPLOY_LOCK_TAG: DEPLOY_LOCK, **DATABASE_WRITER_TAG}
# Transient registry/daemon hiccups only: build and push errors that are not transient fail fast.
TRANSIENT_RETRY = RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL)


@asset(
    partitions_def=commits,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"docker"},
    description="docker build of the backend's Dockerfile at the commit (the partition), "
    "labelled with the commit and build time, tagged <sha> and latest; layer cache reused.",
)
def backend_image(context: AssetExecutionContext, deploy: DeployConfig) -> MaterializeResult:
    sha = context.partition_key
    with operator_errors():
        built, checks = steps.build_commit(deploy.build_spec(), deploy.repo, sha, context.log.info)
    return MaterializeResult(
        metadata={
            "commit": sha,
            "image_id": built.id,
            "tags": MetadataValue.json(list(built.tags)),
            "size_mb": round(built.size_bytes / 1e6, 1),
            "size": human_bytes(built.size_bytes),
            "build_seconds": built.build_seconds,
            "build_time": human_seconds(built.build_seconds),
            "cached_steps": f"{built.cached_steps}/{built.total_steps}",
            "checks": MetadataValue.json([c._asdict() for c in checks]),
        },
        data_version=DataVersion(built.id),
    )


@asset_check(
    asset=backend_image,
    blocking=True,
    description="Image under the size limit (SAGE_OPS_IMAGE_MAX_MB), non-root user, HEALTHCHECK.",
)
def image_policy(context: AssetCheckExecutionContext) -> AssetCheckResult:
    record = _latest_materialization(context, BACKEND_IMAGE)
    checks = record["checks"] if record else []
    failed = [c for c in checks if not c["passed"]]
    return AssetCheckResult(
        passed=bool(checks) and not failed,
        description="; ".join(f"{c['name']}: {c['detail']}" for c in checks) or "no build found",
        metadata={c["name"]: c["detail"] for c in checks},
    )


def _latest_materialization(context: AssetCheckExecutionContext, key: str) -> dict | None:
    """Metadata of this run's materialization of `key` (checks run in the same run)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(key)), limit=20
    ).records
    for record in records:
        if record.run_id == context.run.run_id:
            meta = record.asset_materialization.metadata if record.asset_materialization else {}
            return {k: v.value for k, v in meta.items()}
    return None


@asset(
    partitions_def=commits,
    group_name=GROUP,
    owners=OWNERS,
    deps=[backend_image],
    kinds={"docker"},
    retry_policy=TRANSIENT_RETRY,
    description="The image pushed to SAGE_OPS_REGISTRY (ECR or any registry) under <sha> and "
    "latest; its immutable digest is the data version and what deployments use.",
)
def registry_image(context: AssetExecutionContext, deploy: DeployConfig) -> MaterializeResult:
    sha = context.partition_key
    with operator_errors():
        pushed = steps.push_commit(deploy.build_spec(), sha, context.log.info)
    return MaterializeResult(
        metadata={
            "commit": sha,
            "image": pushed.reference,
            "digest": pushed.digest,
            "tags": MetadataValue.json(list(pushed.tags)),
            "push_seconds": pushed.push_seconds,
        },
        data_version=DataVersion(pushed.digest),
    )


def _schema_asset(environment: str, upstream: Sequence[object]):
    @asset(
        name=schema_asset(environment),
        partitions_def=commits,
        group_name=GROUP,
        owners=OWNERS,
        deps=list(upstream),  # type: ignore[arg-type]
        kinds={"postgres", "prisma"},
        description=f"Guarded migrations of the commit's prisma/migrations against the "
        f"{environment} database (preflight, lint, verified backup, apply) before its rollout.",
    )
    def schema(
        context: AssetExecutionContext,
        deploy: DeployConfig,
        backups: BackupConfig,
        migrations: MigrationConfig,
    ) -> MaterializeResult:
        url_env = deploy.database_env(environment)
        subdir = f"{deploy.context_path.strip('/')}/{deploy.migrations_path.strip('/')}"
        with operator_errors():
            _require_promotable(context, deploy, environment)
            outcome = steps.migrate_commit(
                deploy.repo,
                context.partition_key,
                subdir,
                url_env,
                backups.recipe(),
                migrations.allow,
                context.run.run_id,
                context.log.info,
            )
        if outcome is None:
            return MaterializeResult(metadata={"skipped": f"{url_env} not set"})
        return MaterializeResult(
            metadata={
                "commit": context.partition_key,
                "environment": environment,
                "migrations_applied": MetadataValue.json([a.name for a in outcome.applied]),
                "pre_migration_backup": steps.backup_reference(outcome.backup, backups.store()),
                "pre_migration_backup_sha256": outcome.backup.sha256 if outcome.backup else "",
            }
        )

    return schema


def _deployment_asset(environment: str, upstream: Sequence[object]):
    @asset(
        name=deployment_asset(environment),
        partitions_def=commits,
        group_name=GROUP,
        owners=OWNERS,
        deps=list(upstream),  # type: ignore[arg-type]
        kinds={"docker", "ecs"},
        description=f"Rolling deployment of the pushed digest to {environment} "
        "(SAGE_OPS_"
        + environment.upper()
        + "_TARGET), followed until it completed or rolled back.",
    )
    def deployment(context: AssetExecutionContext, deploy: DeployConfig) -> MaterializeResult:
        with operator_errors():
            proof = _require_promotable(context, deploy, environment)
            result = steps.deploy_commit(
                deploy.target(environment),
                deploy.deploy_timeout_s,
                _pushed_image(context),
                context.log.info,
            )
        _tag_run(context, environment, context.partition_key, result.image)
        promoted = {f"{proof.environment}_run": proof.run_id} if proof else {}
        return MaterializeResult(
            metadata={
                "commit": context.partition_key,
                "environment": environment,
                "image": result.image,
                "revision": result.revision,
                "previous_image": result.previous_image or "",
                "target": result.target,
                "rollout_seconds": round(result.seconds, 1),
                "rollout_time": human_seconds(result.seconds),
                "launched_by": launched_by(context.run.tags),
                **promoted,
            },
            data_version=DataVersion(result.image.split("@")[-1]),
        )

    @asset_check(
        asset=deployment,
        name=healthy_check(environment),
        blocking=True,
        description=f"Post-deploy smoke check: the {environment} health endpoint answers 200.",
    )
    def healthy(context: AssetCheckExecutionContext, deploy: DeployConfig) -> AssetCheckResult:
        with operator_errors():
            passed, detail = _smoke(deploy.target(environment))
        return AssetCheckResult(passed=passed, description=detail)

    return deployment, healthy


def _smoke(target_url: str) -> tuple[bool, str]:
    """A failing health endpoint is a failed check recorded as such, not an error without one."""
    try:
        return True, steps.smoke_check(target_url)
    except DeployError as exc:
        return False, str(exc)


def _tag_run(
    context: AssetExecutionContext | OpExecutionContext, environment: str, commit: str, image: str
) -> None:
    """Join keys on the run itself, so the UI's run filter finds deployments by them."""
    context.instance.add_run_tags(
        context.run.run_id,
        deployment_tags(environment, commit, image),
    )


def _require_promotable(
    context: AssetExecutionContext, deploy: DeployConfig, environment: str
) -> Rollout | None:
    """Production only receives the digest staging runs now and found healthy, whatever job or
    asset selection got here; returns the staging rollout that proves it."""
    source = PROMOTED_FROM.get(environment)
    if source is None:
        return None
    serving = open_deployer(deploy.target(source)).current_image()
    return healthy_now(source, rollouts(context.instance, source), serving, _pushed_image(context))


def _pushed_image(context: AssetExecutionContext) -> str:
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey(REGISTRY_IMAGE), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        raise ConfigError(
            f"commit {context.partition_key} has no pushed image; run registry_image first"
        )
    return str(records[0].asset_materialization.metadata["image"].value)


# applied_migrations: the schemas run the migrations capability's guarded sequence; linked for
# the UI's lineage only (deps trigger no run without an automation condition).
staging_schema = _schema_asset("staging", [registry_image, AssetKey(APPLIED_MIGRATIONS)])
staging_deployment, staging_healthy = _deployment_asset("staging", [staging_schema])
production_schema = _schema_asset("production", [staging_deployment])
production_deployment, production_healthy = _deployment_asset("production", [production_schema])

DEPLOY_ASSETS = [backend_image, registry_image, staging_schema, staging_deployment]
PRODUCTION_ASSETS = [production_schema, production_deployment]

deploy_backend = define_asset_job(
    DEPLOY_BACKEND,
    selection=DEPLOY_ASSETS + PRODUCTION_ASSETS,
    partitions_def=commits,
    tags=DEPLOY_TAGS,
    executor_def=in_process_executor,
    description="Build, push, migrate and roll out one commit to staging, then production.",
)
deploy_to_staging = define_asset_job(
    DEPLOY_TO_STAGING,
    selection=DEPLOY_ASSETS,
    partitions_def=commits,
    tags=DEPLOY_TAGS,
    executor_def=in_process_executor,
    description="Build, push, migrate and roll out one commit to staging only (approval mode).",
)
promote_to_production = define_asset_job(
    PROMOTE_TO_PRODUCTION,
    selection=PRODUCTION_ASSETS,
    partitions_def=commits,
    tags=DEPLOY_TAGS,
    executor_def=in_process_executor,
    description="The manual approval: roll a commit that is healthy on staging out to production.",
)


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


class RollbackRequest(Config):
    environment: str = Field(description="staging or production")


@op(
    description="Redeploy the environment's last digest that passed its health check and was not "
    "rolled back since, from lineage; its health is checked and recorded like a deployment's."
)
def rollback_op(context: OpExecutionContext, config: RollbackRequest, deploy: DeployConfig):
    environment = config.environment
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"environment must be one of {', '.join(ENVIRONMENTS)}")
    key = AssetKey(deployment_asset(environment))
    target_url = deploy.target(environment)
    with operator_errors():
        current = open_deployer(target_url).current_image()
        target = rollback_target(environment, rollouts(context.instance, environment), current)
        result = steps.deploy_commit(
            target_url, deploy.deploy_timeout_s, target.image, context.log.info
        )
    _tag_run(context, environment, target.commit, result.image)
    context.log_event(
        AssetMaterialization(
            asset_key=key,
            partition=target.commit,
            metadata={
                "commit": target.commit,
                "environment": environment,
                "image": result.image,
                "revision": result.revision,
                "previous_image": result.previous_image or "",
                "rollback_of": current or "",
                "launched_by": launched_by(context.run.tags),
            },
        )
    )
    _check_health(context, target_url, key, environment)


def _check_health(
    context: OpExecutionContext, target_url: str, key: AssetKey, environment: str
) -> None:
    """The rollback's own <env>_healthy evaluation: a later rollback or promotion reads it."""
    with operator_errors():
        passed, detail = _smoke(target_url)
    # log_event stores check evaluations too; its type annotation has not caught up.
    context.log_event(
        AssetCheckEvaluation(  # type: ignore[arg-type]
            asset_key=key,
            check_name=healthy_check(environment),
            passed=passed,
            description=detail,
        )
    )
    if not passed:
        raise Failure(description=f"DeployError: {detail}", allow_retries=False)


@job(
    name=ROLLBACK_DEPLOYMENT,
    tags=DEPLOY_TAGS,
    description="Roll an environment back to its last healthy digest that was not rolled back.",
)
def rollback_deployment() -> None:
    rollback_op()


defs = Definitions(
    assets=[backend_image, registry_image, *DEPLOY_ASSETS[2:], *PRODUCTION_ASSETS],
    asset_checks=[image_policy, staging_healthy, production_healthy],
    jobs=[deploy_backend, deploy_to_staging, promote_to_production, rollback_deployment],
    sensors=[git_push_sensor],
)
