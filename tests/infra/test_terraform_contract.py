"""Contract: what Terraform gives the sage_ops tasks, evaluated by Terraform itself from each
environment's tfvars, drives every capability and starts through dagster_aws's EcsRunLauncher.

tests/infra/terraform_render.py has `terraform console` evaluate the root's variables (every
validation) with environments/<env>.tfvars and then the sage_ops module's locals with the
resulting inputs. Those values (AWS-computed ones as named stand-ins, secrets as placeholders)
go through sage_ops' own settings loaders: a capability that would fall back to a local default
(embedded database, file store, local probes, swarm, the docker builder) fails by name, as does a
missing input, a secret passed as plain environment, a secret the execution role may not read,
a launcher config dagster_aws refuses and a database the security groups do not let through.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections.abc import Callable, Iterator
from ipaddress import ip_network
from typing import Any

import boto3
import pytest
import yaml
from dagster._config import process_config
from dagster_aws.ecs import EcsRunLauncher
from moto import mock_aws

from sage_ops.backups import s3_store
from sage_ops.backups.resources import EMBEDDED_SCRATCH, BackupConfig
from sage_ops.deploy.resources import ENVIRONMENTS, DeployConfig
from sage_ops.incidents.resources import IncidentConfig
from sage_ops.platforms.builders.base import open_builder
from sage_ops.platforms.builders.codebuild import CodeBuildBuilder
from sage_ops.platforms.ecs.target import parse_target
from tests.infra import terraform_render as tf
from tests.infra.test_terraform import MODULES, REPO, TF, Config, tfvars

ROOT = Config(TF)
SAGE_OPS = Config(MODULES / "sage_ops")
SECRET_MARKS = ("PASSWORD", "SECRET", "TOKEN", "DATABASE_URL", "API_KEY")
# Plain variables whose value names a secret (an ARN), never the secret itself.
SECRET_NAMES = {"SAGE_OPS_REPO_CREDENTIAL_SECRET"}
PLACEHOLDERS = {  # values shaped like what AWS computes for the names Terraform cannot know
    "SAGE_OPS_REGISTRY": "123456789012.dkr.ecr.us-west-2.amazonaws.com",
    "SAGE_OPS_IMAGE_REPOSITORY": "sage-backend",
    "SAGE_OPS_BACKUP_URL": "s3://sage-production-backups-123456789012/backups/",
    "SAGE_OPS_BUILD_SOURCE_URL": "s3://sage-production-backups-123456789012/builds/",
    "DAGSTER_PG_PORT": "5432",
}
# Terraform sets exactly one of each pair (both hinge on sage_ops_scratch_database_url_secret_arn):
# the first is what a stack without a scratch server gets.
ALTERNATIVES = {"SAGE_OPS_SCRATCH": "SAGE_OPS_SCRATCH_DATABASE_URL"}
LAUNCHER_CONTAINER = re.compile(r'name\s*=\s*"([^"]+)"')


def sage_ops_stack() -> str:
    """The one environment whose stack runs sage_ops (it reaches every database)."""
    (env,) = [e for e in ENVIRONMENTS if tf.module_inputs(e)]
    return env


def task_environment() -> set[str]:
    return set(tf.render(sage_ops_stack()).task_environment)


def task_secrets() -> set[str]:
    """Every secret a run task gets (the services' and the runs' own)."""
    return set(tf.render(sage_ops_stack()).run_secrets)


def rendered_value(name: str) -> str | None:
    """Terraform's own value for a plain variable, None when only AWS knows it."""
    value = tf.render(sage_ops_stack()).task_environment.get(name)
    return None if value is None or "<" in value or not value else value


def placeholder(name: str) -> str:
    if name in PLACEHOLDERS:
        return PLACEHOLDERS[name]
    if name.endswith("DATABASE_URL"):
        return f"postgresql://sage:placeholder@{name.lower()}.example:5432/sage"
    return rendered_value(name) or f"placeholder-{name.lower()}"


@pytest.fixture
def terraform_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Exactly a run task's variables, nothing inherited from this machine."""
    for name in list(os.environ):
        if name.startswith(("SAGE_OPS_", "DAGSTER_", "AWS_")) or name.endswith("DATABASE_URL"):
            monkeypatch.delenv(name)
    given = task_environment() | task_secrets()
    for name in given:
        monkeypatch.setenv(name, placeholder(name))
    yield given


def _backups() -> str:
    s = BackupConfig.from_env(env_refs=False)
    assert s.database_url, "DATABASE_URL: the embedded database would be backed up"
    assert s.backup_url.startswith("s3://"), f"SAGE_OPS_BACKUP_URL: local store {s.backup_url}"
    return s.backup_url


def _verification() -> str:
    s = BackupConfig.from_env(env_refs=False)
    assert s.verify_level == "full", "the restore would never be tried"
    if s.scratch == EMBEDDED_SCRATCH:
        home = sage_ops_stack()
        need = math.ceil(tfvars(home).get("db_max_allocated_storage", 200) * 1.25)
        disk = tf.module_inputs(home)["run_ephemeral_storage_gib"]
        assert disk >= need, f"run task disk {disk} GiB < 1.25 x db_max_allocated_storage"
        return f"full, embedded scratch on {disk} GiB in the run task"
    assert s.scratch_database_url, "full verification would restore onto DATABASE_URL's server"
    assert s.scratch_server(s.target()).host != s.target().host, "scratch is production's"
    return "full, scratch server"


def _kms() -> str:
    s = BackupConfig.from_env(env_refs=False)  # the backups resource's loader reads them
    args = s3_store.encryption_args(s.s3_sse, s.s3_kms_key_id)
    assert args.get("SSEKMSKeyId"), "backups would not name the stack's KMS key"
    return args["SSEKMSKeyId"]


def _migrations() -> str:
    settings = DeployConfig.from_env()
    missing = [e for e in ENVIRONMENTS if settings.database(e) is None]
    assert not missing, f"no database URL for {missing}: their migrations would be skipped"
    return "every environment"


def _builder() -> str:
    builder = open_builder(DeployConfig.from_env().build_spec())
    assert isinstance(builder, CodeBuildBuilder), "the docker builder needs a daemon Fargate lacks"
    return builder.project


def _targets() -> str:
    settings = DeployConfig.from_env()
    for env in ENVIRONMENTS:
        assert settings.target(env).startswith("ecs://"), f"{env}: swarm target"
        parse_target(settings.target(env))
    return "ecs"


def _git_sensor() -> str:
    assert DeployConfig.from_env().repo, "SAGE_OPS_REPO unset: the sensor watches nothing"
    return "repo"


def _alarms() -> str:
    incidents = IncidentConfig.from_env()
    assert incidents.source == "cloudwatch", "local probes instead of the stack's alarms"
    return incidents.alarm_prefix


def _sns() -> str:
    assert IncidentConfig.from_env().sns_topic_arn, "reports would go to the run log only"
    return "sns"


def _triage_evidence() -> str:
    incidents = IncidentConfig.from_env()
    assert incidents.log_groups, "SAGE_OPS_LOG_GROUPS unset: reports carry no log lines"
    budget = ("service_tasks", "db_pool_size", "task_vcpus", "db_max_connections")
    missing = [k for k in budget if getattr(incidents, k, None) in (None, "", 0)]
    assert not missing, f"the connection budget lacks {missing}"
    assert incidents.dagster_url, "SAGE_OPS_DAGSTER_URL unset: reports link to no run"
    return f"{len(incidents.log_groups)} log groups, budget, links"


def _lineage() -> str:
    missing = {"DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"} - set(
        os.environ
    )
    assert not missing, f"lineage reads Dagster's Postgres storage: {missing}"
    return "dagster storage"


CAPABILITIES: dict[str, Callable[[], str]] = {
    "backups": _backups,
    "verification": _verification,
    "backup encryption": _kms,
    "migrations per environment": _migrations,
    "deploy builder": _builder,
    "deploy targets": _targets,
    "git sensor": _git_sensor,
    "alarms": _alarms,
    "sns": _sns,
    "triage evidence": _triage_evidence,
    "lineage": _lineage,
}


@pytest.mark.parametrize("capability", list(CAPABILITIES))
def test_capability_is_wired(terraform_env: set[str], capability: str) -> None:
    try:
        CAPABILITIES[capability]()
    except AssertionError as exc:
        pytest.fail(f"{capability} falls back to a local default: {exc}", pytrace=False)


def test_verification_with_a_scratch_server_instead(
    terraform_env: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = "arn:aws:secretsmanager:us-west-2:111122223333:secret:sage/scratch-AbCdEf"
    home = sage_ops_stack()
    inputs = tf.module_inputs(home, sage_ops_scratch_database_url_secret_arn=arn)
    assert inputs["scratch_database_url_secret_arn"] == arn
    module = tf.render_inputs(home, inputs)
    assert "SAGE_OPS_SCRATCH" not in module.task_environment
    assert module.run_secrets["SAGE_OPS_SCRATCH_DATABASE_URL"] == arn
    for embedded, url in ALTERNATIVES.items():
        monkeypatch.delenv(embedded)
        monkeypatch.setenv(url, placeholder(url))
    assert _verification() == "full, scratch server"


def test_no_secret_is_plain_environment() -> None:
    plain = {n for n in task_environment() if any(m in n for m in SECRET_MARKS)} - SECRET_NAMES
    assert not plain, f"secrets passed as plain environment: {sorted(plain)}"


def test_alarm_prefix_matches_the_alarms_module() -> None:
    alarms = Config(MODULES / "alarms").resources["aws_cloudwatch_metric_alarm"]
    prefix = re.search(r'SAGE_OPS_ALARM_PREFIX = "([^"]*)"', SAGE_OPS.locals["environment"])
    assert prefix is not None and prefix[1] == "${var.name}-"
    assert all(a["alarm_name"].startswith("${var.name}-") for a in alarms.values())


def _same_stack_reach() -> bool:
    """The stack's own RDS admits the sage_ops security group, and sage_ops uses its URL."""
    rules = Config(MODULES / "security_groups").resources["aws_vpc_security_group_ingress_rule"]
    admitted = any(
        r.get("from_port") == 5432 and "sage_ops" in str(r.get("referenced_security_group_id"))
        for r in rules.values()
    )
    wired = str(ROOT.modules["sage_ops"]["environment_database_url_secret_arns"])
    return admitted and "module.rds.ops_database_url_secret_arn" in wired


def _peer_reach(env: str, home: str) -> list[str]:
    """What keeps `env`'s database (another stack, another VPC) from `home`'s sage_ops tasks."""
    problems = []
    if tfvars(env).get("sage_ops_peer_environment") != home:
        problems.append(f"{env}.tfvars does not peer with {home} (sage_ops_peer_environment)")
    peering = ROOT.modules.get("sage_ops_peering", {})
    if "var.sage_ops_peer_environment" not in str(peering.get("count")):
        problems.append("no sage_ops_peering module enabled by sage_ops_peer_environment")
    module = Config(MODULES / "sage_ops_peering")
    routes = module.resources.get("aws_route", {}).values()
    if sum("aws_vpc_peering_connection.this" in str(r) for r in routes) < 2:
        problems.append("no routes both ways through the peering connection")
    groups = Config(MODULES / "security_groups")
    ingress = groups.resources["aws_vpc_security_group_ingress_rule"].values()
    if not any(
        r.get("from_port") == 5432
        and r.get("security_group_id") == "${aws_security_group.rds.id}"
        and "data.aws_security_group.peer_sage_ops" in str(r.get("referenced_security_group_id"))
        for r in ingress
    ) or "sage_ops_peer_environment" not in str(ROOT.modules["security_groups"]):
        problems.append("the peered RDS does not admit the peer's sage_ops security group")
    peer_cidr = tfvars(home).get("sage_ops_peer_vpc_cidrs", {}).get(env)
    if peer_cidr != tfvars(env)["vpc_cidr"]:
        problems.append(f"{home}.tfvars sage_ops_peer_vpc_cidrs[{env}] is not {env}'s vpc_cidr")
    elif ip_network(peer_cidr).overlaps(ip_network(tfvars(home)["vpc_cidr"])):
        problems.append(f"{env}'s and {home}'s VPC CIDRs overlap: they cannot be peered")
    egress = groups.resources["aws_vpc_security_group_egress_rule"]
    if not any(
        r.get("from_port") == 5432 and "var.peer_database_cidrs" in str(r.get("for_each"))
        for r in egress.values()
    ):
        problems.append("the sage_ops security group may not open 5432 to peered VPCs")
    return problems


def unreachable_databases() -> dict[str, list[str]]:
    """Environments whose database the sage_ops tasks cannot reach on 5432, and why."""
    home = sage_ops_stack()
    found = {home: [] if _same_stack_reach() else ["the stack's own RDS does not admit sage_ops"]}
    found |= {env: _peer_reach(env, home) for env in ENVIRONMENTS if env != home}
    return {env: problems for env, problems in found.items() if problems}


def test_every_database_is_reachable_from_sage_ops() -> None:
    unreachable = unreachable_databases()
    assert not unreachable, f"sage_ops cannot reach these databases: {unreachable}"


# --- every environment's tfvars, as `terraform plan` would read them ----------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_tfvars_pass_every_validation(environment: str) -> None:
    inputs = tf.module_inputs(environment)  # TerraformError with Terraform's message otherwise
    assert bool(inputs) == tfvars(environment).get("sage_ops_enabled", True)


REQUIRED = {  # what a capability needs that a stack running sage_ops must be given
    "sage_ops_repo": None,
    "db_max_allocated_storage": 400,  # without a scratch server: more than the run disk holds
    "sage_ops_repo_credential_secret_arn": "ghp_the-token-itself",
}


@pytest.mark.parametrize("variable", list(REQUIRED))
def test_a_missing_or_bad_input_fails_the_plan_naming_it(variable: str) -> None:
    with pytest.raises(tf.TerraformError) as refused:
        tf.module_inputs(sage_ops_stack(), **{variable: REQUIRED[variable]})
    assert variable.removesuffix("_secret_arn") in str(refused.value)


def test_an_ssh_repository_needs_its_deploy_key() -> None:
    with pytest.raises(tf.TerraformError, match="deploy key"):
        tf.module_inputs(
            sage_ops_stack(),
            sage_ops_repo="git@github.com:sage/sage.git",
            sage_ops_repo_credential_secret_arn=None,
        )


def test_every_environment_database_url_is_wired_with_its_key() -> None:
    """One DATABASE_URL secret per deploy environment, each readable and decryptable."""
    home = sage_ops_stack()
    module = tf.render(home)
    environments = tfvars(home).get("sage_ops_deploy_environments", list(ENVIRONMENTS))
    assert set(module.inputs["environment_database_url_secret_arns"]) == set(environments)
    others = sorted(set(environments) - {home})
    assert module.inputs["environment_kms_aliases"] == [f"alias/sage-{e}" for e in others]
    rds = Config(MODULES / "rds").resources["aws_secretsmanager_secret"]["ops_database_url"]
    for env in others:  # the name each environment's own stack gives its secret
        assert module.run_secrets[f"{env.upper()}_DATABASE_URL"] == rds["name"].replace(
            "${var.name}", f"sage-{env}"
        )
    assert "kms:ResourceAliases" in str(SAGE_OPS.data["aws_iam_policy_document"])


def test_execution_role_may_read_every_secret_a_run_gets() -> None:
    module = tf.render(sage_ops_stack())
    readable = module.locals["secret_resources"]
    for name, ref in module.run_secrets.items():
        arn = ref if ref.startswith("arn:") else f"{tf_secret_arn()}:{ref}-AbCdEf"
        secret = ":".join(arn.split(":")[:7])
        assert any(fnmatch.fnmatchcase(secret, r) for r in readable), f"{name}: {ref} unreadable"


def tf_secret_arn() -> str:
    return f"arn:aws:secretsmanager:{tf.REGION}:{tf.ACCOUNT}:secret"


# --- the run launcher: what dagster_aws accepts, with the run task definition Terraform owns ----


def launcher_config(environment: dict[str, str]) -> dict[str, Any]:
    """infra/dagster/dagster.yaml's run_launcher config with its {env: NAME} resolved."""
    text = (REPO / "infra" / "dagster" / "dagster.yaml").read_text()
    section = yaml.safe_load(text)["run_launcher"]
    assert (section["module"], section["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"env"}:
            assert value["env"] in environment, f"dagster.yaml reads {value['env']}: unset"
            return environment[value["env"]]
        return {k: resolve(v) for k, v in value.items()} if isinstance(value, dict) else value

    return {k: resolve(v) for k, v in section["config"].items()}


def run_container_name() -> str:
    definition = SAGE_OPS.resources["aws_ecs_task_definition"]["run"]
    return LAUNCHER_CONTAINER.findall(definition["container_definitions"])[0]


def test_launcher_config_is_accepted_by_dagster_aws() -> None:
    """In every environment whose stack runs sage_ops (production's today)."""
    running = [e for e in ENVIRONMENTS if tf.module_inputs(e)]
    assert running, "no tfvars runs sage_ops"
    for environment in running:
        check_launcher(tf.render(environment).task_environment)


def check_launcher(task_env: dict[str, str]) -> None:
    config = launcher_config(task_env)
    checked = process_config(EcsRunLauncher.config_type(), config)
    assert checked.success, checked.errors
    values = dict(checked.value or {})
    assert len(values.get("task_definition_prefix", "run")) <= 16
    family = task_env["SAGE_OPS_RUN_TASK_DEFINITION"]
    assert SAGE_OPS.resources["aws_ecs_task_definition"]["run"]["family"] == "${local.run_family}"
    assert family == tf.render(sage_ops_stack()).locals["run_family"]
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", tf.REGION)
        arn = boto3.client("ecs").register_task_definition(
            family=family,
            containerDefinitions=[
                {"name": run_container_name(), "image": "sage-ops", "memory": 512}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        launcher = EcsRunLauncher(**values)
    # A string task definition: the launcher registers nothing and runs this one as it is.
    assert launcher.task_definition == arn and launcher.task_definition_dict == {}
    assert launcher.container_name == run_container_name()


def test_run_task_definition_is_what_fargate_runs() -> None:
    """What RegisterTaskDefinition receives for the runs, as Terraform renders it."""
    home = sage_ops_stack()
    module = tf.render(home)
    definition = module.run_task_definition
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["networkMode"] == "awsvpc"
    assert "aws_iam_role.run.arn" in definition["taskRoleArn"]
    assert "aws_iam_role.execution.arn" in definition["executionRoleArn"]
    need = math.ceil(tfvars(home).get("db_max_allocated_storage", 200) * 1.25)
    assert definition["ephemeralStorage"]["sizeInGiB"] >= min(need, 200)
    [container] = definition["containerDefinitions"]
    assert container["name"] == run_container_name() == "run"  # the launcher's container_name
    assert container["readonlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env == module.task_environment
    secrets = {e["name"]: e["valueFrom"] for e in container["secrets"]}
    assert secrets == module.run_secrets
    volumes = {v["name"] for v in definition["volumes"]}
    mounts = {m["containerPath"]: m["sourceVolume"] for m in container["mountPoints"]}
    assert set(mounts.values()) == volumes and "/tmp" in mounts
    assert env["SAGE_OPS_STATE_DIR"] in mounts, "the state directory is on the read-only root"
    assert container["logConfiguration"]["logDriver"] == "awslogs"
