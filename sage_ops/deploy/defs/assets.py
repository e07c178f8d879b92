"""The assets of build-push-deploy, one partition per commit: backend_image -> registry_image
-> staging_schema -> staging_deployment -> production_schema -> production_deployment, with the
image policy and each environment's health as blocking checks."""

from collections.abc import Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    Backoff,
    DataVersion,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
    asset_check,
)

from sage_ops.backups.resources import BackupConfig
from sage_ops.deploy import steps
from sage_ops.deploy.defs.run_tags import tag_run
from sage_ops.deploy.resources import DeployConfig
from sage_ops.errors import ConfigError
from sage_ops.lineage import metadata
from sage_ops.lineage.deployments import Rollout, healthy_now, rollouts
from sage_ops.lineage.effects import BUILDS, DEPLOYS, WRITES_DATABASE, effect
from sage_ops.lineage.failures import operator_errors
from sage_ops.lineage.instance import materialized_for
from sage_ops.lineage.metadata import (
    COMMIT,
    ENVIRONMENT,
    IMAGE,
    MIGRATIONS_APPLIED,
    PRE_MIGRATION_BACKUP,
    SKIPPED,
)
from sage_ops.lineage.names import (
    APPLIED_MIGRATIONS,
    BACKEND_IMAGE,
    OWNERS,
    REGISTRY_IMAGE,
    deployment_asset,
    healthy_check,
    schema_asset,
)
from sage_ops.lineage.tags import launched_by
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.platforms.targets import open_deployer
from sage_ops.units import human_bytes, human_seconds

GROUP = "deploy"
PROMOTED_FROM = {"production": "staging"}  # an environment receives only what the other proved
commits = DynamicPartitionsDefinition(name="commits")
# Transient registry/daemon hiccups only: build and push errors that are not transient fail fast.
TRANSIENT_RETRY = RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL)


@asset(
    partitions_def=commits,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"docker"},
    tags=effect(BUILDS),
    description="docker build of the backend's Dockerfile at the commit (the partition), "
    "labelled with the commit and build time, tagged <sha> and latest; layer cache reused.",
)
def backend_image(context: AssetExecutionContext, deploy: DeployConfig) -> MaterializeResult:
    sha = context.partition_key
    with operator_errors():
        built, checks = steps.build_commit(
            deploy.build_spec(), deploy.repo, sha, context.log.info, deploy.repo_credential
        )
    return MaterializeResult(
        metadata={
            COMMIT: sha,
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
    build = materialized_for(
        context.instance, BACKEND_IMAGE, context.partition_key, context.run.run_id
    )
    checks = build["checks"] if build else []
    failed = [c for c in checks if not c["passed"]]
    return AssetCheckResult(
        passed=bool(checks) and not failed,
        description="; ".join(f"{c['name']}: {c['detail']}" for c in checks) or "no build found",
        metadata={c["name"]: c["detail"] for c in checks},
    )


@asset(
    partitions_def=commits,
    group_name=GROUP,
    owners=OWNERS,
    deps=[backend_image],
    kinds={"docker"},
    tags=effect(BUILDS),
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
            COMMIT: sha,
            IMAGE: pushed.reference,
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
        tags=effect(WRITES_DATABASE, environment),
        description=f"Guarded migrations of the commit's prisma/migrations against the "
        f"{environment} database (preflight, lint, verified backup, apply) before its rollout.",
    )
    def schema(
        context: AssetExecutionContext,
        deploy: DeployConfig,
        backups: BackupConfig,
        migrations: MigrationConfig,
    ) -> MaterializeResult:
        subdir = f"{deploy.context_path.strip('/')}/{deploy.migrations_path.strip('/')}"
        with operator_errors():
            _require_promotable(context, deploy, environment)
            database = deploy.database(environment)
            if database is None:
                unset = f"{deploy.database_env(environment)} not set"
                context.log.info(f"{unset}: no migrations")
                return MaterializeResult(metadata={SKIPPED: unset})
            outcome = steps.migrate_commit(
                deploy.repo,
                context.partition_key,
                subdir,
                database,
                backups.recipe(),
                migrations.policy(deploy.target(environment), lambda: _pushed_image(context)),
                context.run.run_id,
                context.log.info,
                deploy.repo_credential,
            )
        return MaterializeResult(
            metadata={
                COMMIT: context.partition_key,
                ENVIRONMENT: environment,
                MIGRATIONS_APPLIED: MetadataValue.json([a.name for a in outcome.applied]),
                PRE_MIGRATION_BACKUP: steps.backup_reference(outcome.backup, backups.store()),
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
        tags=effect(DEPLOYS, environment),
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
        tag_run(context, environment, context.partition_key, result.image)
        promoted = {f"{proof.environment}_run": proof.run_id} if proof else {}
        return MaterializeResult(
            metadata={
                **metadata.deployment(
                    context.partition_key,
                    environment,
                    result.image,
                    result.revision,
                    result.previous_image,
                    launched_by(context.run.tags),
                ),
                "target": result.target,
                "rollout_seconds": round(result.seconds, 1),
                "rollout_time": human_seconds(result.seconds),
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
            passed, detail = steps.smoke_check(deploy.target(environment))
        return AssetCheckResult(passed=passed, description=detail)

    return deployment, healthy


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
    """The digest this run pushed for its commit, passed down the graph from registry_image (a
    promotion, which pushes nothing, takes the commit's latest push: staging proved it)."""
    pushed = materialized_for(
        context.instance, REGISTRY_IMAGE, context.partition_key, context.run.run_id
    )
    if pushed is None:
        raise ConfigError(
            f"commit {context.partition_key} has no pushed image; run registry_image first"
        )
    return str(pushed[IMAGE])


# applied_migrations: the schemas run the migrations capability's guarded sequence; linked for
# the UI's lineage only (deps trigger no run without an automation condition).
staging_schema = _schema_asset("staging", [registry_image, AssetKey(APPLIED_MIGRATIONS)])
staging_deployment, staging_healthy = _deployment_asset("staging", [staging_schema])
production_schema = _schema_asset("production", [staging_deployment])
production_deployment, production_healthy = _deployment_asset("production", [production_schema])

DEPLOY_ASSETS = [backend_image, registry_image, staging_schema, staging_deployment]
PRODUCTION_ASSETS = [production_schema, production_deployment]
