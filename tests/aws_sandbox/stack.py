"""The AWS side of the stack Terraform creates, on a moto server, plus the local stand-ins for
what is not AWS (databases on the machine's PostgreSQL, the repository as a local git repo).

Names follow the module's (sage-production-*), values are what the module would compute from
them; `terraform_environment` returns a value for every name the sage_ops task definitions set.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import boto3

from tests.backups.s3 import REGION
from tests.incidents import seed_alarms as seed
from tests.infra.test_terraform_contract import (
    ALTERNATIVES,
    placeholder,
    task_environment,
    task_secrets,
)
from tests.platforms.conftest import sample_context

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ENVIRONMENTS = ("staging", "production")
PORT = 3000  # the backend's container port, as in the task, the ALB and the seed
TASK_IPS = {"staging": "10.0.1.10", "production": "10.0.2.10"}  # one task per service


def terraform_names() -> set[str]:
    """Every variable the sage_ops task definitions set (a stack without a scratch server)."""
    return (task_environment() | task_secrets()) - set(ALTERNATIVES.values())


def aws_resources(repo: Path) -> dict[str, str]:
    """Bucket, KMS key, topic, alarms, ECR, CodeBuild, ECS services behind target groups, and
    the repository credential secret; returns the variables naming them."""
    suffix = uuid.uuid4().hex[:8]  # moto's state is shared per process: unique names
    bucket = f"sage-production-{suffix}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    key = boto3.client("kms").create_key(Description="sage-production")["KeyMetadata"]["Arn"]
    topic = boto3.client("sns").create_topic(Name=f"sage-production-alerts-{suffix}")["TopicArn"]
    seed.create_seed_alarms(boto3.client("cloudwatch"))
    repository = f"sage-production-backend-{suffix}"
    boto3.client("ecr").create_repository(
        repositoryName=repository,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )
    project = f"sage-production-backend-build-{suffix}"
    _codebuild_project(project, bucket)
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"sage-production/repo-credential-{suffix}", SecretString=f"ghp_{uuid.uuid4().hex}"
    )["ARN"]
    vpc = boto3.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    targets = {
        f"SAGE_OPS_{env.upper()}_TARGET": _ecs_service(env, suffix, vpc, f"{REGISTRY}/{repository}")
        for env in ENVIRONMENTS
    }
    return {
        "SAGE_OPS_BACKUP_URL": f"s3://{bucket}/backups/",
        "SAGE_OPS_BUILD_SOURCE_URL": f"s3://{bucket}/builds/",
        "DAGSTER_COMPUTE_LOGS_BUCKET": bucket,
        "SAGE_OPS_S3_KMS_KEY_ID": key,
        "SAGE_OPS_SNS_TOPIC_ARN": topic,
        "SAGE_OPS_ALARM_PREFIX": seed.PREFIX,  # "${var.name}-" for the production stack
        "SAGE_OPS_REGISTRY": REGISTRY,
        "SAGE_OPS_IMAGE_REPOSITORY": repository,
        "SAGE_OPS_CODEBUILD_PROJECT": project,
        "SAGE_OPS_REPO": str(repo),
        "SAGE_OPS_REPO_CREDENTIAL_SECRET": secret,
        **targets,
    }


def _codebuild_project(name: str, bucket: str) -> None:
    boto3.client("codebuild").create_project(
        name=name,
        source={"type": "S3", "location": f"{bucket}/builds/placeholder.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
        },
        serviceRole=f"arn:aws:iam::{ACCOUNT}:role/sage-production-codebuild",
    )


def _ecs_service(environment: str, suffix: str, vpc: str, repository_uri: str) -> str:
    """A cluster with the backend service on revision 1, registered in an ALB target group
    where its one task's address is registered (moto reports registered targets healthy)."""
    cluster, service = f"sage-{environment}-{suffix}", "sage-backend"
    elbv2 = boto3.client("elbv2")
    group = elbv2.create_target_group(
        Name=f"sage-{environment}-{suffix}",
        Protocol="HTTP",
        Port=PORT,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/health",
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(
        TargetGroupArn=group, Targets=[{"Id": TASK_IPS[environment], "Port": PORT}]
    )
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    revision = ecs.register_task_definition(
        family=f"sage-{environment}-backend-{suffix}",
        containerDefinitions=[
            {
                "name": service,
                "image": f"{repository_uri}@sha256:{'0' * 64}",
                "memory": 512,
                "essential": True,
                "portMappings": [{"containerPort": PORT}],
            }
        ],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=revision,
        desiredCount=1,
        loadBalancers=[{"targetGroupArn": group, "containerName": service, "containerPort": PORT}],
    )
    return f"ecs://{cluster}/{service}"


def git_repo(root: Path) -> tuple[Path, str]:
    """The product's repository with the sample backend at apps/backend; (path, head SHA)."""
    sample_context(root / "apps" / "backend")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "backend"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return root, head.stdout.strip()


def dagster_home(root: Path) -> Path:
    """DAGSTER_HOME as the image has it: the production instance config."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "infra" / "dagster" / "dagster.yaml", root / "dagster.yaml")
    return root


def terraform_environment(aws: dict[str, str], local: dict[str, str]) -> dict[str, str]:
    """Every Terraform name with a value: ours where we made the resource, else a placeholder."""
    names = terraform_names()
    env = {name: placeholder(name) for name in names} | aws | local
    env["AWS_REGION"] = REGION
    assert set(env) == names, f"the sandbox sets what Terraform does not: {set(env) - names}"
    return env
