"""Contract: the environment Terraform gives the sage_ops tasks drives every capability.

The names come from the HCL (modules/sage_ops/main.tf: `environment`, `secrets` and the
`capability_*` locals; optional entries count as set, as an operator enabling them would), get
placeholder values, and go through sage_ops' own settings loaders. A capability that would fall
back to a local default (embedded database, file store, local probes, swarm, the docker builder)
fails the test by name, as does a secret passed as plain environment and a database URL whose
server the sage_ops security group cannot reach.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from ipaddress import ip_network

import pytest

from sage_ops.backups import s3_store
from sage_ops.backups.resources import EMBEDDED_SCRATCH, BackupConfig
from sage_ops.deploy.resources import ENVIRONMENTS, DeployConfig
from sage_ops.incidents.resources import IncidentConfig
from sage_ops.platforms.builders.base import open_builder
from sage_ops.platforms.builders.codebuild import CodeBuildBuilder
from sage_ops.platforms.ecs.target import parse_target
from tests.infra.test_terraform import MODULES, TF, Config, tfvars

SAGE_OPS = Config(MODULES / "sage_ops")
ROOT = Config(TF)
NAME = re.compile(r"\b([A-Z][A-Z0-9_]+)\s*=")
SECRET_MARKS = ("PASSWORD", "SECRET", "TOKEN", "DATABASE_URL", "API_KEY")
# Plain variables whose value names a secret (an ARN), never the secret itself.
SECRET_NAMES = {"SAGE_OPS_REPO_CREDENTIAL_SECRET"}
PLACEHOLDERS = {  # values shaped like what Terraform computes for these names
    "SAGE_OPS_REGISTRY": "123456789012.dkr.ecr.us-west-2.amazonaws.com",
    "SAGE_OPS_IMAGE_REPOSITORY": "sage-backend",
    "SAGE_OPS_BUILDER": "codebuild",
    "SAGE_OPS_ALARM_SOURCE": "cloudwatch",
    "SAGE_OPS_BACKUP_URL": "s3://sage-production-backups-123456789012/backups/",
    "SAGE_OPS_BUILD_SOURCE_URL": "s3://sage-production-backups-123456789012/builds/",
    "SAGE_OPS_VERIFY_LEVEL": "full",
    "SAGE_OPS_SCRATCH": "embedded",
    "SAGE_OPS_REPO": "https://github.com/example/sage.git",
    "AWS_REGION": "us-west-2",
}


# Terraform sets exactly one of each pair (both hinge on sage_ops_scratch_database_url_secret_arn):
# the first is what a stack without a scratch server gets.
ALTERNATIVES = {"SAGE_OPS_SCRATCH": "SAGE_OPS_SCRATCH_DATABASE_URL"}


def names(expression: str) -> set[str]:
    return set(NAME.findall(expression))


def deploy_environments() -> list[str]:
    return list(ROOT.variables["sage_ops_deploy_environments"]["default"])


def task_environment() -> set[str]:
    found = names(SAGE_OPS.locals["environment"]) | names(SAGE_OPS.locals["capability_environment"])
    if "SAGE_OPS_${upper(env)}_TARGET" in SAGE_OPS.locals["environment"]:
        found |= {f"SAGE_OPS_{env.upper()}_TARGET" for env in deploy_environments()}
    return found


def task_secrets() -> set[str]:
    found = names(SAGE_OPS.locals["secrets"]) | names(SAGE_OPS.locals["capability_secrets"])
    if '"${upper(env)}_DATABASE_URL"' in SAGE_OPS.locals["capability_secrets"]:
        found |= {f"{env.upper()}_DATABASE_URL" for env in ENVIRONMENTS}
    return found


def placeholder(name: str) -> str:
    if name in PLACEHOLDERS:
        return PLACEHOLDERS[name]
    if name.endswith("DATABASE_URL"):
        return f"postgresql://sage:placeholder@{name.lower()}.example:5432/sage"
    if name.endswith("_TARGET"):
        return f"ecs://sage-{name.split('_')[2].lower()}/sage-backend"
    return f"placeholder-{name.lower()}"


@pytest.fixture
def terraform_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Exactly the task's variables, nothing inherited from this machine."""
    for name in list(os.environ):
        if name.startswith(("SAGE_OPS_", "DAGSTER_", "AWS_")) or name.endswith("DATABASE_URL"):
            monkeypatch.delenv(name)
    given = (task_environment() | task_secrets()) - set(ALTERNATIVES.values())
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
        daemon = SAGE_OPS.resources["aws_ecs_task_definition"]["service"]
        assert "ephemeral_storage" in str(daemon.get("dynamic")), "no disk sized for the restore"
        return "full, embedded scratch in the run task"
    assert s.scratch_database_url, "full verification would restore onto DATABASE_URL's server"
    assert s.scratch_server(s.target()).host != s.target().host, "scratch is production's"
    return "full, scratch server"


def _kms() -> str:
    args = s3_store._encryption_args()
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
    for embedded, url in ALTERNATIVES.items():
        condition = "var.scratch_database_url_secret_arn == null"
        assert condition in SAGE_OPS.locals["capability_environment"]
        assert (
            url.removeprefix("SAGE_OPS_").lower() + "_secret_arn"
            in (SAGE_OPS.locals["capability_secrets"])
        )
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


def sage_ops_stack() -> str:
    """The one environment whose stack runs sage_ops (it reaches every database)."""
    (env,) = [e for e in ENVIRONMENTS if tfvars(e).get("sage_ops_enabled", True)]
    return env


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
