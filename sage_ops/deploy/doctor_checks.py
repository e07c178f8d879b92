"""Doctor checks of build-push-deploy: each environment's database for its deploy-time migrations,
the builder, the registry, each environment's target with the health source its smoke check
judges by, and the git sensor's repository and credential."""

from __future__ import annotations

from sage_ops import postgres
from sage_ops.checks import Needs, NotConfigured, Probe
from sage_ops.deploy import steps
from sage_ops.deploy.resources import ENVIRONMENTS, DeployConfig
from sage_ops.errors import ConfigError
from sage_ops.platforms import aws
from sage_ops.platforms.builders.base import open_builder
from sage_ops.platforms.builders.codebuild import CodeBuildBuilder
from sage_ops.platforms.git.credentials import SECRET_ENV, fetch_secret, parse
from sage_ops.platforms.git.push_scan import scan
from sage_ops.platforms.registries.ecr import ensure_repository, is_ecr_host
from sage_ops.platforms.targets import open_deployer

LOCAL_BUILD = "images would be built on a local Docker Engine, which Fargate does not have"


def doctor_checks(needs: Needs) -> list[tuple[str, Probe]]:
    return [
        *[(f"migrations {env}", _database(env)) for env in ENVIRONMENTS],
        ("deploy builder", lambda: _builder(needs)),
        ("deploy registry", lambda: _registry(needs)),
        *[(f"deploy {env} target", _target(needs, env)) for env in ENVIRONMENTS],
        ("git sensor", lambda: _git_sensor(needs)),
        ("git credential", lambda: _git_credential(needs)),
    ]


def _database(environment: str) -> Probe:
    """The database the deploy migrates in `environment` (the migrations lines of doctor)."""

    def probe() -> str:
        settings = DeployConfig.from_env()
        target = settings.database(environment)
        if target is None:
            variable = settings.database_env(environment)
            why = f"{environment} migrations would be skipped"
            raise NotConfigured(variable, why, optional=False)
        with postgres.connect(target) as conn:
            _, version = postgres.server_version(conn)
        return f"{target.redacted} reachable, PostgreSQL {version}"

    return probe


def _builder(needs: Needs) -> str:
    needs.capability("SAGE_OPS_BUILDER", LOCAL_BUILD)
    builder = open_builder(DeployConfig.from_env().build_spec())
    if not isinstance(builder, CodeBuildBuilder):
        from sage_ops.platforms.docker_engine.image import docker_client

        return f"docker, Engine {docker_client().version().get('Version', '?')}"
    answer = builder.clients("codebuild").batch_get_projects(names=[builder.project])
    if not answer.get("projects"):
        raise ConfigError(
            f"CodeBuild project {builder.project!r} (SAGE_OPS_CODEBUILD_PROJECT) does not exist"
        )
    aws.readable_prefix(builder.bucket, builder.prefix, "SAGE_OPS_BUILD_SOURCE_URL")
    return f"codebuild project {builder.project}, sources to s3://{builder.bucket}/{builder.prefix}"


def _registry(needs: Needs) -> str:
    needs.capability("SAGE_OPS_REGISTRY", "images would go to a local registry")
    needs.setting("SAGE_OPS_IMAGE_REPOSITORY", "the default repository name would be used")
    settings = DeployConfig.from_env()
    if not is_ecr_host(settings.registry):
        return f"{settings.registry}/{settings.repository} (not ECR: checked when pushing)"
    # What every publish asks first: the repository exists and lets `latest` be pushed again.
    uri = ensure_repository(
        settings.repository, False, registry_host=settings.registry, mutable_tags=("latest",)
    )
    return f"{uri} exists, latest re-pushable"


def _target(needs: Needs, environment: str) -> Probe:
    variable = f"SAGE_OPS_{environment.upper()}_TARGET"

    def probe() -> str:
        needs.capability(variable, f"{environment} deploys would go to a local swarm service")
        url = DeployConfig.from_env().target(environment)
        deployer = open_deployer(url)
        image = deployer.current_image()
        if image is None:
            raise ConfigError(f"{url} ({variable}): no such service")
        return f"{url} runs {image}; health from {deployer.health_source()}"

    return probe


def _git_sensor(needs: Needs) -> str:
    repo = needs.capability("SAGE_OPS_REPO", "git_push_sensor would watch no repository")
    settings = DeployConfig.from_env()
    # The sensor's own read, into its own cache: what it sees on its next tick.
    cache = steps.git_cache_dir()
    head = scan(repo, settings.branch, [], None, cache, credential=settings.repo_credential).cursor
    return f"{repo} branch {settings.branch} at {head[:12]}"


def _git_credential(needs: Needs) -> str:
    secret = needs.capability(SECRET_ENV, "a public repository needs none", optional=True)
    credential = parse(fetch_secret(secret), secret)  # read, never shown
    kind = "deploy key" if credential.ssh_private_key else "token"
    return f"{secret} readable, a {kind}"
