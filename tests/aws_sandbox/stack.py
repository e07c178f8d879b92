"""The AWS side of the stack Terraform creates, on a moto server, plus the local stand-ins for
what is not AWS (databases on the machine's PostgreSQL, the repository as a local git repo).

Names follow the module's (sage-production-*), values are what the module would compute from
them; `terraform_environment` returns a value for every name the sage_ops task definitions set.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from tests.backups.s3 import REGION
from tests.incidents import seed_alarms as seed
from tests.infra import terraform_render
from tests.infra.test_terraform_contract import (
    ALTERNATIVES,
    placeholder,
    sage_ops_stack,
    task_environment,
    task_secrets,
)
from tests.platforms.conftest import sample_context

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ENVIRONMENTS = ("staging", "production")
PORT = 3000  # the backend's container port, as in the task, the ALB and the seed


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
    log_groups = _log_groups(f"/ecs/sage-production/sage-ops-{suffix}")
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"sage-production/repo-credential-{suffix}", SecretString=f"ghp_{uuid.uuid4().hex}"
    )["ARN"]
    network = _private_network(suffix)
    targets = {
        f"SAGE_OPS_{env.upper()}_TARGET": _ecs_service(
            env, suffix, network, f"{REGISTRY}/{repository}"
        )
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
        "SAGE_OPS_LOG_GROUPS": ",".join(log_groups),
        **targets,
    }


def _log_groups(own: str) -> list[str]:
    """Terraform's SAGE_OPS_LOG_GROUPS (the backends' and databases' groups by their names, and
    sage_ops' own, here `own`), each created on moto if it is not there yet."""
    rendered = terraform_render.render(sage_ops_stack()).task_environment["SAGE_OPS_LOG_GROUPS"]
    groups = [own if g.startswith("<") else g for g in rendered.split(",")]
    logs = boto3.client("logs")
    for group in groups:
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
    return groups


def _codebuild_project(name: str, bucket: str) -> None:
    group = f"/aws/codebuild/{name}"  # the module's log group, named after the project
    boto3.client("logs").create_log_group(logGroupName=group)
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
        logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": group}},
    )


def _private_network(suffix: str) -> dict[str, Any]:
    """The VPC's private subnet and the backend's security group: an awsvpc placement."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the module's
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"sage-backend-{suffix}", Description="backend tasks", VpcId=vpc
    )["GroupId"]
    return {
        "vpc": vpc,
        "awsvpcConfiguration": {
            "subnets": [subnet],
            "securityGroups": [group],
            "assignPublicIp": "DISABLED",
        },
    }


def _ecs_service(
    environment: str, suffix: str, network: Mapping[str, Any], repository_uri: str
) -> str:
    """A cluster with the backend service (Fargate, awsvpc, behind an ALB target group, as the
    ecs_backend module makes it) on revision 1, its one task running and registered."""
    cluster, service = f"sage-{environment}-{suffix}", "sage-backend"
    group = boto3.client("elbv2").create_target_group(
        Name=f"sage-{environment}-{suffix}",
        Protocol="HTTP",
        Port=PORT,
        VpcId=network["vpc"],
        TargetType="ip",
        HealthCheckPath="/health",
    )["TargetGroups"][0]["TargetGroupArn"]
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
    created = ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=revision,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": network["awsvpcConfiguration"]},
        loadBalancers=[{"targetGroupArn": group, "containerName": service, "containerPort": PORT}],
    )["service"]
    start_service_task(created, revision, started_by=created["deployments"][0]["id"])
    return f"ecs://{cluster}/{service}"


def start_service_task(service: Mapping[str, Any], revision: str, started_by: str) -> str:
    """What ECS does for a service and moto does not (moto never launches a service's tasks):
    run a task of `revision` placed like the service and register its address in the service's
    target groups (moto then reports it healthy there); returns the task's ARN."""
    [task] = boto3.client("ecs").run_task(
        cluster=service["clusterArn"],
        taskDefinition=revision,
        launchType="FARGATE",
        networkConfiguration=service["networkConfiguration"],
        startedBy=started_by,
        group=f"service:{service['serviceName']}",
    )["tasks"]
    address = task_address(task)
    for balancer in service["loadBalancers"]:
        boto3.client("elbv2").register_targets(
            TargetGroupArn=balancer["targetGroupArn"],
            Targets=[{"Id": address, "Port": balancer["containerPort"]}],
        )
    return str(task["taskArn"])


def task_address(task: Mapping[str, Any]) -> str:
    """The awsvpc task's private IP, which is its target id in an ip target group."""
    [address] = [
        detail["value"]
        for attachment in task["attachments"]
        for detail in attachment["details"]
        if detail["name"] == "privateIPv4Address"
    ]
    return str(address)


def keep_service_tasks_running(endpoint: str) -> None:
    """moto moves a task one state towards STOPPED per describe_tasks (right for one-off tasks);
    a service's tasks run until replaced, so on this server they stay RUNNING when looked at."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/state-manager/set-transition",
        data=json.dumps(
            {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def git_repo(root: Path) -> tuple[Path, str]:
    """The product's repository with the sample backend at apps/backend; (path, head SHA)."""
    sample_context(root / "apps" / "backend")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "backend"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return root, head.stdout.strip()


def sns_inbox(topic: str) -> str:
    """A fresh SQS queue subscribed to `topic`: what is published there can be read back."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    boto3.client("sns").subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
    )
    return str(queue)


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


def register_run_task_definition(env: Mapping[str, str]) -> str:
    """Terraform's run task definition, as terraform console renders it from the HCL and the
    tfvars, registered with this sandbox's values: its variables, and its secrets stored in
    Secrets Manager as each stack stores them (a name stays a name; another environment's under
    that environment's key, alias/sage-<env>; a `:json-key::` reference gets a JSON secret).
    Returns its family."""
    definition = copy.deepcopy(terraform_render.render(sage_ops_stack()).run_task_definition)
    [container] = definition["containerDefinitions"]
    rendered = {e["name"]: e["value"] for e in container["environment"]}
    container["environment"] = [{"name": n, "value": env[n]} for n in rendered]
    for mount in container["mountPoints"]:  # a volume at or under a path a variable names...
        path = mount["containerPath"]
        names = [n for n, v in rendered.items() if v and (path + "/").startswith(v + "/")]
        if names:  # ...is at or under where ours points (DAGSTER_HOME's storage, the state dir)
            mount["containerPath"] = env[names[0]] + path.removeprefix(rendered[names[0]])
    key = env["SAGE_OPS_S3_KMS_KEY_ID"]
    container["secrets"] = [
        _stored(s["name"], s["valueFrom"], env, key) for s in container["secrets"]
    ]
    container["image"] = "sage-ops"
    # moto's RunTask sums the containers' memory (None without it); Fargate takes the task's.
    container.setdefault("memory", int(definition["memory"]))
    roles = {
        f"{role}RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sage-production-sage-ops-{name}"
        for role, name in (("task", "run"), ("execution", "execution"))
    }
    boto3.client("ecs").register_task_definition(
        **{**definition, **roles, "containerDefinitions": [container]}
    )
    return str(definition["family"])


def _stored(name: str, value_from: str, env: Mapping[str, str], stack_key: str) -> dict[str, str]:
    parts = value_from.split(":")
    json_key = parts[7] if value_from.startswith("arn:") and len(parts) > 7 else ""
    value = json.dumps({json_key: env[name]}) if json_key else env[name]
    secrets = boto3.client("secretsmanager")
    if not value_from.startswith("arn:"):  # another stack's, by name, under that stack's key
        try:
            secrets.create_secret(
                Name=value_from, SecretString=value, KmsKeyId=_stack_key(value_from)
            )
        except secrets.exceptions.ResourceExistsException:  # moto's state outlives a sandbox
            secrets.put_secret_value(SecretId=value_from, SecretString=value)
        return {"name": name, "valueFrom": value_from}
    arn = secrets.create_secret(
        Name=f"sage-production/{name.lower()}-{uuid.uuid4().hex[:8]}",
        SecretString=value,
        KmsKeyId=stack_key,
    )["ARN"]
    return {"name": name, "valueFrom": f"{arn}:{json_key}::" if json_key else arn}


def _stack_key(secret_name: str) -> str:
    """The key of the stack a secret name belongs to (sage-<env>/...), found by its alias."""
    alias = f"alias/{secret_name.split('/')[0]}"
    kms = boto3.client("kms")
    known = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    if not known.get(alias):
        key = kms.create_key(Description=secret_name.split("/")[0])["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=alias, TargetKeyId=key)
        return str(key)
    return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])
