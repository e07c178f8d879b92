"""Structural tests of infra/terraform.

No terraform binary exists on the project's machines, so every file is parsed with python-hcl2
and the promises of the infrastructure issue are asserted on the parsed configuration: network
layout, the security-group chain, alarms and their metrics, deploy safety, encryption, public
access, and least-privilege IAM. checkov (infra/terraform/checkov.sh) covers generic hygiene.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "infra" / "terraform"
MODULES = TF / "modules"
ENVIRONMENTS = ("staging", "production")

# --- loading -------------------------------------------------------------------------------------


def _normalize(node: Any) -> Any:
    """Drop hcl2's bookkeeping keys and surrounding quotes (older hcl2 releases keep them)."""
    if isinstance(node, dict):
        return {
            _unquote(k): _normalize(v)
            for k, v in node.items()
            if k not in ("__is_block__", "__start_line__", "__end_line__", "__comments__")
        }
    if isinstance(node, list):
        return [_normalize(v) for v in node]
    return _unquote(node) if isinstance(node, str) else node


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    options = getattr(hcl2, "SerializationOptions", None)
    with path.open() as f:
        if options is None:
            return _normalize(hcl2.load(f))
        return _normalize(
            hcl2.load(
                f,
                serialization_options=options(
                    strip_string_quotes=True, explicit_blocks=False, with_comments=False
                ),
            )
        )


class Config:
    """All .tf files of one directory, merged like Terraform merges them."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.resources: dict[str, dict[str, dict]] = {}
        self.data: dict[str, dict[str, dict]] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.modules: dict[str, dict] = {}
        self.locals: dict[str, Any] = {}
        for path in sorted(directory.glob("*.tf")):
            doc = parse(path)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        target.setdefault(rtype, {}).update(named)
            for kind, target in (
                ("variable", self.variables),
                ("output", self.outputs),
                ("module", self.modules),
                ("locals", self.locals),
            ):
                for block in doc.get(kind, []):
                    target.update(block)

    def resource(self, rtype: str, name: str) -> dict:
        assert name in self.resources.get(rtype, {}), f"{self.dir.name}: no {rtype}.{name}"
        return self.resources[rtype][name]

    def code(self) -> str:
        """The configuration's source without full-line comments."""
        return "\n".join(
            line
            for p in sorted(self.dir.glob("*.tf"))
            for line in p.read_text().splitlines()
            if not line.lstrip().startswith(("#", "//"))
        )


@functools.cache
def config(relative: str = "") -> Config:
    return Config(TF / relative if relative else TF)


def module(name: str) -> Config:
    return config(f"modules/{name}")


def block(body: dict, key: str) -> dict:
    """A nested block that occurs once (hcl2 returns blocks as lists)."""
    value = body[key]
    if isinstance(value, list):
        assert len(value) == 1, f"expected one {key} block, got {len(value)}"
        return value[0]
    return value


def blocks(body: dict, key: str) -> list[dict]:
    value = body.get(key, [])
    return value if isinstance(value, list) else [value]


def all_configs() -> Iterator[Config]:
    yield config()
    yield config("bootstrap")
    for directory in sorted(p for p in MODULES.iterdir() if p.is_dir()):
        yield module(directory.name)


def tfvars(env: str) -> dict[str, Any]:
    return parse(TF / "environments" / f"{env}.tfvars")


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- every file parses ---------------------------------------------------------------------------

HCL_FILES = sorted(
    p
    for p in TF.rglob("*")
    if p.suffix in (".tf", ".tfvars", ".tfbackend") or p.name == ".tflint.hcl"
)


def test_the_tree_has_the_expected_modules() -> None:
    expected = {
        "alarms",
        "alb",
        "backups_bucket",
        "dagster_ui",
        "ecr",
        "ecs_backend",
        "ecs_cluster",
        "kms",
        "log_bucket",
        "network",
        "rds",
        "redis",
        "sage_ops",
        "sage_ops_peering",
        "security_groups",
    }
    assert {p.name for p in MODULES.iterdir() if p.is_dir()} == expected
    assert len(HCL_FILES) > 40


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: str(p.relative_to(TF)))
def test_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


def test_root_uses_every_module_and_every_source_exists() -> None:
    sources = {m["source"] for m in config().modules.values()}
    for source in sources:
        assert (TF / source / "main.tf").is_file(), source
    assert {Path(s).name for s in sources} == {p.name for p in MODULES.iterdir() if p.is_dir()}


@pytest.mark.parametrize("cfg", list(all_configs()), ids=lambda c: c.dir.name)
def test_variables_and_outputs_are_documented(cfg: Config) -> None:
    for name, var in cfg.variables.items():
        assert var.get("description"), f"{cfg.dir.name}: variable {name} has no description"
        assert var.get("type"), f"{cfg.dir.name}: variable {name} has no type"
    for name, out in cfg.outputs.items():
        assert out.get("description"), f"{cfg.dir.name}: output {name} has no description"


def test_aws_provider_is_5x_and_region_defaults_to_us_west_2() -> None:
    for path in [TF / "versions.tf", TF / "bootstrap" / "main.tf", *MODULES.glob("*/versions.tf")]:
        providers = block(block(parse(path), "terraform"), "required_providers")
        # 6.8 added ECR's IMMUTABLE_WITH_EXCLUSION (modules/ecr).
        assert providers["aws"]["version"] == "~> 6.8", path
    assert config().variables["region"]["default"] == "us-west-2"
    provider = block(parse(TF / "providers.tf"), "provider")["aws"]
    assert provider["region"] == "${var.region}"


# --- network -------------------------------------------------------------------------------------


def test_two_public_and_two_private_subnets_across_two_pinned_azs() -> None:
    net = module("network")
    assert net.locals["azs"] == "${sort(data.aws_availability_zones.selected.names)}"
    azs = net.data["aws_availability_zones"]["selected"]
    zone_filter = block(azs, "filter")
    assert zone_filter == {"name": "zone-name", "values": "${var.availability_zones}"}
    assert "length(var.availability_zones) == 2" in str(net.variables["availability_zones"])

    for tier in ("public", "private"):
        subnet = net.resource("aws_subnet", tier)
        multiplier = subnet.get("count") or subnet.get("for_each")
        assert multiplier == "${length(local.azs)}", tier
        assert subnet["availability_zone"] == "${local.azs[count.index]}", tier
    public, private = (net.resource("aws_subnet", t)["cidr_block"] for t in ("public", "private"))
    assert public != private
    assert net.resource("aws_subnet", "public")["map_public_ip_on_launch"] is False

    default_azs = config().variables["availability_zones"]["default"]
    assert len(set(default_azs)) == 2
    for env in ENVIRONMENTS:
        azs = tfvars(env)["availability_zones"]
        assert len(set(azs)) == 2 and all(az.startswith(tfvars(env)["region"]) for az in azs)


def test_vpc_has_dns_nat_for_private_subnets_and_flow_logs() -> None:
    net = module("network")
    vpc = net.resource("aws_vpc", "this")
    assert vpc["enable_dns_support"] is True and vpc["enable_dns_hostnames"] is True
    assert net.resource("aws_nat_gateway", "this")["count"] == "${local.nat_count}"
    private_route = net.resource("aws_route", "private_nat")
    assert private_route["destination_cidr_block"] == "0.0.0.0/0"
    assert "aws_nat_gateway.this" in private_route["nat_gateway_id"]
    public_route = net.resource("aws_route", "public_internet")
    assert public_route["gateway_id"] == "${aws_internet_gateway.this.id}"
    assert net.resource("aws_flow_log", "this")["traffic_type"] == "ALL"
    default_sg = net.resource("aws_default_security_group", "this")
    assert "ingress" not in default_sg and "egress" not in default_sg


# --- security groups -----------------------------------------------------------------------------

SG_RESOURCE_TYPES = {
    "aws_security_group",
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
}


def _sg_name(ref: str) -> str:
    match = re.fullmatch(r"\$\{aws_security_group\.(\w+)(\[0\])?\.id\}", ref)
    assert match, f"not a reference to a security group of this module: {ref}"
    return match.group(1)


def _rules(rtype: str) -> dict[str, set[tuple[str, str, Any]]]:
    """SG name -> {(peer kind, peer, port)} for every rule of the given type."""
    found: dict[str, set[tuple[str, str, Any]]] = {}
    for name, rule in module("security_groups").resources.get(rtype, {}).items():
        assert rule["from_port"] == rule["to_port"], f"{name}: port ranges are not allowed"
        assert rule["ip_protocol"] == "tcp", f"{name}: only tcp rules"
        assert rule.get("description"), name
        if "data.aws_security_group." in rule.get("referenced_security_group_id", ""):
            peer = ("peer sg", rule["referenced_security_group_id"].split(".")[2].split("[")[0])
        elif "referenced_security_group_id" in rule:
            peer = ("sg", _sg_name(rule["referenced_security_group_id"]))
        else:
            assert rule["cidr_ipv4"] == "${each.value}", name
            peer = ("cidr", re.search(r"toset\(var\.(\w+)\)", rule["for_each"]).group(1))
            egress_ok = ("alb_ingress_cidrs", "peer_database_cidrs")
            if peer[1] not in egress_ok and rtype.endswith("egress_rule"):
                raise AssertionError(f"{name}: unexpected CIDR egress")
        found.setdefault(_sg_name(rule["security_group_id"]), set()).add((*peer, rule["from_port"]))
    return found


def _egress_cidr_rules() -> dict[str, Any]:
    """CIDR egress except PostgreSQL in peered VPCs (named CIDRs, test_terraform_contract)."""
    rules = module("security_groups").resources["aws_vpc_security_group_egress_rule"]
    return {n: r for n, r in rules.items() if "cidr_ipv4" in r and n != "sage_ops_to_peer_rds"}


def test_ingress_is_exactly_the_chain_alb_ecs_data_stores() -> None:
    assert _rules("aws_vpc_security_group_ingress_rule") == {
        "alb": {("cidr", "alb_ingress_cidrs", 80), ("cidr", "alb_ingress_cidrs", 443)},
        "backend": {("sg", "alb", "${var.backend_port}")},
        "rds": {
            ("sg", "backend", 5432),
            ("sg", "sage_ops", 5432),
            ("peer sg", "peer_sage_ops", 5432),
        },
        "redis": {("sg", "backend", 6379)},
        "sage_ops": {
            ("sg", "sage_ops", "${var.dagster_grpc_port}"),
            ("sg", "dagster_ui", "${var.dagster_webserver_port}"),
        },
        "dagster_ui": {("cidr", "dagster_ui_allowed_cidrs", 443)},
    }


def test_egress_is_narrow_and_data_stores_have_none() -> None:
    for name, rule in _egress_cidr_rules().items():
        # 22: git over SSH with a deploy key, from sage_ops only (below).
        assert rule["cidr_ipv4"] == "0.0.0.0/0" and rule["from_port"] in (443, 22), name
    egress = module("security_groups").resources["aws_vpc_security_group_egress_rule"]
    by_sg: dict[str, set] = {}
    for rule in egress.values():
        peer = rule.get("referenced_security_group_id")
        by_sg.setdefault(_sg_name(rule["security_group_id"]), set()).add(
            (_sg_name(peer) if peer else "internet", rule["from_port"])
        )
    assert by_sg == {
        "alb": {("backend", "${var.backend_port}")},
        "backend": {("internet", 443), ("rds", 5432), ("redis", 6379)},
        "sage_ops": {
            ("internet", 443),
            ("internet", 22),  # sage_ops_git_ssh: a deploy key's git remote
            ("internet", 5432),  # sage_ops_to_peer_rds: var.peer_database_cidrs only
            ("rds", 5432),
            ("sage_ops", "${var.dagster_grpc_port}"),
        },
        "dagster_ui": {("internet", 443), ("sage_ops", "${var.dagster_webserver_port}")},
    }


def test_security_groups_and_rules_live_only_in_the_security_groups_module() -> None:
    for cfg in all_configs():
        if cfg.dir.name == "security_groups":
            assert "aws_security_group_rule" not in cfg.resources  # standalone rule resources only
            for sg in cfg.resources["aws_security_group"].values():
                assert "ingress" not in sg and "egress" not in sg
            continue
        assert not SG_RESOURCE_TYPES & cfg.resources.keys(), cfg.dir.name


def test_every_security_group_is_attached_to_what_it_protects() -> None:
    # Backs the inline CKV2_AWS_5 skips: checkov does not follow module outputs.
    outputs = module("security_groups").outputs
    root = config().modules
    wiring = {
        "alb": ("alb", "alb_id"),
        "backend": ("ecs_backend", "backend_id"),
        "rds": ("rds", "rds_id"),
        "redis": ("redis", "redis_id"),
        "sage_ops": ("sage_ops", "sage_ops_id"),
        "dagster_ui": ("dagster_ui", "dagster_ui_id"),
    }
    for sg, (consumer, output) in wiring.items():
        assert f"aws_security_group.{sg}" in outputs[output]["value"]
        assert root[consumer]["security_group_id"] == f"${{module.security_groups.{output}}}"
    var = "${var.security_group_id}"
    assert module("alb").resource("aws_lb", "this")["security_groups"] == [var]
    service = module("ecs_backend").resource("aws_ecs_service", "this")
    assert block(service, "network_configuration")["security_groups"] == [var]
    assert module("rds").resource("aws_db_instance", "this")["vpc_security_group_ids"] == [var]
    redis = module("redis").resource("aws_elasticache_replication_group", "this")
    assert redis["security_group_ids"] == [var]
    services = module("sage_ops").resource("aws_ecs_service", "this")
    assert block(services, "network_configuration")["security_groups"] == [var]
    assert module("dagster_ui").resource("aws_lb", "this")["security_groups"] == [var]


# --- Dagster UI: sign-in at the internal ALB, then the sage_ops gate -----------------------------


def test_the_dagster_ui_is_reached_only_through_the_oidc_sign_in() -> None:
    ui = module("dagster_ui")
    lb = ui.resource("aws_lb", "this")
    assert lb["internal"] is True and lb["drop_invalid_header_fields"] is True
    assert config().modules["dagster_ui"]["subnet_ids"] == "${module.network.private_subnet_ids}"
    # One listener, HTTPS: authenticate-oidc first, then forward; no plain-HTTP way around it.
    assert set(ui.resources["aws_lb_listener"]) == {"https"}
    https = ui.resource("aws_lb_listener", "https")
    assert (https["port"], https["protocol"]) == (443, "HTTPS")
    assert https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    first, second = sorted(blocks(https, "default_action"), key=lambda a: a["order"])
    assert (first["type"], first["order"], second["type"], second["order"]) == (
        "authenticate-oidc",
        1,
        "forward",
        2,
    )
    oidc = block(first, "authenticate_oidc")
    assert oidc["on_unauthenticated_request"] == "authenticate"
    for key in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "user_info_endpoint",
        "client_id",
    ):
        assert oidc[key] == f"${{var.oidc.{key}}}"
    assert second["target_group_arn"] == "${aws_lb_target_group.webserver.arn}"
    health = block(ui.resource("aws_lb_target_group", "webserver"), "health_check")
    assert health["path"] == "${var.health_check_path}"
    assert ui.variables["health_check_path"]["default"] == "/_gate/health"


def test_the_oidc_client_secret_is_read_from_secrets_manager_never_passed_in() -> None:
    ui = module("dagster_ui")
    https = ui.resource("aws_lb_listener", "https")
    oidc = block(
        next(a for a in blocks(https, "default_action") if a["order"] == 1), "authenticate_oidc"
    )
    assert oidc["client_secret"] == (
        "${data.aws_secretsmanager_secret_version.client_secret.secret_string}"
    )
    assert ui.data["aws_secretsmanager_secret_version"]["client_secret"]["secret_id"] == (
        "${var.oidc.client_secret_arn}"
    )
    for cfg in all_configs():
        for name in cfg.variables:
            assert not re.search(r"client_secret$|oidc_secret$", name), f"{cfg.dir.name}: {name}"
    root = config().variables["dagster_ui_oidc"]
    assert "secretsmanager" in str(root["validation"])
    assert "client_secret_arn" in tfvars("production")["dagster_ui_oidc"]


def test_the_webserver_runs_the_gate_and_trusts_only_this_load_balancer() -> None:
    sage_ops = module("sage_ops")
    webserver = sage_ops.locals["services"]["webserver"]
    assert webserver["command"][:2] == ["sage-ops", "gate"]
    assert "--local-user" not in webserver["command"]  # local identities are for 127.0.0.1 only
    assert webserver["environment"] == "${var.gate_environment}"
    gate_env = module("dagster_ui").outputs["gate_environment"]["value"]
    assert gate_env["SAGE_OPS_GATE_ALB_ARN"] == "${aws_lb.this.arn}"
    assert gate_env["SAGE_OPS_GATE_ISSUER"] == "${var.oidc.issuer}"
    assert (
        config().modules["sage_ops"]["gate_environment"]
        == "${module.dagster_ui[0].gate_environment}"
    )
    service = sage_ops.resource("aws_ecs_service", "this")
    lb = next(d["load_balancer"] for d in blocks(service, "dynamic") if "load_balancer" in d)
    assert lb["for_each"] == '${each.key == "webserver" ? [var.ui_target_group_arn] : []}'
    # Only the code server is discoverable by name: the webserver has no address but the ALB's.
    assert (
        sage_ops.resource("aws_service_discovery_service", "this")["for_each"]
        == '${toset(["code"])}'
    )
    # Audit lines go to the container's stdout, which awslogs ships to this log group.
    assert (
        "awslogs"
        in sage_ops.resource("aws_ecs_task_definition", "service")["container_definitions"]
    )


# --- alarms --------------------------------------------------------------------------------------

ALLOWED_METRICS = {
    ("AWS/ECS", "CPUUtilization"),
    ("AWS/RDS", "CPUUtilization"),
    ("AWS/RDS", "DatabaseConnections"),
    ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
    ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"),
    ("AWS/ApplicationELB", "RequestCount"),
    ("AWS/ApplicationELB", "TargetResponseTime"),
}
ERROR_RATE_EXPRESSION = "IF(m3 > 0, 100*(FILL(m1,0)+FILL(m2,0))/m3, 0)"


def _alarms() -> dict[str, dict]:
    return module("alarms").resources["aws_cloudwatch_metric_alarm"]


def _metrics(alarm: dict) -> list[tuple[str, str]]:
    if "metric_name" in alarm:
        return [(alarm["namespace"], alarm["metric_name"])]
    return [
        (block(q, "metric")["namespace"], block(q, "metric")["metric_name"])
        for q in blocks(alarm, "metric_query")
        if "metric" in q
    ]


def test_alarm_metrics_come_from_the_allowlist() -> None:
    used = set()
    for cfg in all_configs():
        for name, alarm in cfg.resources.get("aws_cloudwatch_metric_alarm", {}).items():
            assert set(_metrics(alarm)) <= ALLOWED_METRICS, name
            used |= set(_metrics(alarm))
    # Every allowed metric is used; the seed's 5XXError (API Gateway's, never on an ALB) is not.
    assert used == ALLOWED_METRICS


def test_alarms_are_prefixed_and_notify_the_topic() -> None:
    alarms = module("alarms")
    assert set(_alarms()) == {
        "ecs_cpu",
        "rds_cpu",
        "api_error_rate",
        "api_latency_p95",
        "rds_connections",
    }
    assert alarms.locals["actions"] == ["${aws_sns_topic.alerts.arn}"]
    for name, alarm in _alarms().items():
        assert alarm["alarm_name"].startswith("${var.name}-"), name
        assert alarm["alarm_actions"] == "${local.actions}", name
    assert 'startswith(var.name, "sage-")' in str(alarms.variables["name"]["validation"])
    assert config().locals["name"] == "sage-${var.environment}"
    assert config().modules["alarms"]["name"] == "${local.name}"
    assert alarms.resource("aws_sns_topic", "alerts")["name"] == "${var.topic_name}"
    assert config().variables["alerts_topic_name"]["default"] == "sage-alerts"
    assert tfvars("production")["alerts_topic_name"] == "sage-alerts"


def test_ecs_and_rds_cpu_alarms_match_the_reference() -> None:
    ecs, rds = _alarms()["ecs_cpu"], _alarms()["rds_cpu"]
    assert set(ecs["dimensions"]) == {"ClusterName", "ServiceName"}
    assert (ecs["statistic"], ecs["period"], ecs["evaluation_periods"]) == ("Average", 300, 2)
    assert ecs["datapoints_to_alarm"] == 2
    assert set(rds["dimensions"]) == {"DBInstanceIdentifier"}
    assert (rds["statistic"], rds["period"], rds["evaluation_periods"]) == ("Average", 300, 2)
    assert rds["datapoints_to_alarm"] == 2
    for alarm in (ecs, rds):
        assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanThreshold", 80)


def test_error_rate_is_metric_math_over_alb_counters() -> None:
    alarm = _alarms()["api_error_rate"]
    queries = {q["id"]: q for q in blocks(alarm, "metric_query")}
    assert queries["e1"]["expression"] == ERROR_RATE_EXPRESSION
    assert queries["e1"]["return_data"] is True
    expected = {
        "m1": "HTTPCode_Target_5XX_Count",
        "m2": "HTTPCode_ELB_5XX_Count",
        "m3": "RequestCount",
    }
    assert set(queries) == {"e1", *expected}
    for qid, metric_name in expected.items():
        metric = block(queries[qid], "metric")
        assert metric["metric_name"] == metric_name
        assert metric["namespace"] == "AWS/ApplicationELB"
        assert (metric["stat"], metric["period"]) == ("Sum", 60)
        assert set(metric["dimensions"]) == {"LoadBalancer"}
        assert queries[qid].get("return_data") in (None, False)
    assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanThreshold", 5)
    assert alarm["treat_missing_data"] == "notBreaching"


def test_p95_latency_uses_the_extended_statistic() -> None:
    alarm = _alarms()["api_latency_p95"]
    assert (alarm["namespace"], alarm["metric_name"]) == (
        "AWS/ApplicationELB",
        "TargetResponseTime",
    )
    assert alarm["extended_statistic"] == "p95" and "statistic" not in alarm
    assert (alarm["period"], alarm["threshold"]) == (60, 2)
    assert alarm["comparison_operator"] == "GreaterThanThreshold"


def test_connection_alarm_threshold_derives_from_max_connections() -> None:
    alarm = _alarms()["rds_connections"]
    assert alarm["threshold"] == "${local.connection_threshold}"
    threshold = module("alarms").locals["connection_threshold"]
    assert "var.db_max_connections" in threshold and "var.connection_alarm_percent" in threshold
    assert config().modules["alarms"]["db_max_connections"] == "${module.rds.max_connections}"
    pg = module("rds").resource("aws_db_parameter_group", "this")
    params = {p["name"]: p["value"] for p in blocks(pg, "parameter")}
    assert params["max_connections"] == "${tostring(var.max_connections)}"
    assert config().modules["rds"]["max_connections"] == "${var.db_max_connections}"


# --- ECS -----------------------------------------------------------------------------------------


def _services() -> dict[str, dict]:
    return {
        f"{cfg.dir.name}.{name}": svc
        for cfg in all_configs()
        for name, svc in cfg.resources.get("aws_ecs_service", {}).items()
    }


def test_every_service_has_circuit_breaker_with_rollback_and_no_public_ip() -> None:
    assert set(_services()) == {"ecs_backend.this", "sage_ops.this"}
    for name, svc in _services().items():
        breaker = block(svc, "deployment_circuit_breaker")
        assert breaker == {"enable": True, "rollback": True}, name
        assert block(svc, "network_configuration")["assign_public_ip"] is False, name
        assert svc["launch_type"] == "FARGATE", name


def test_backend_rollout_percentages_are_variables_and_terraform_never_reverts_a_deploy() -> None:
    svc = module("ecs_backend").resource("aws_ecs_service", "this")
    assert svc["deployment_minimum_healthy_percent"] == "${var.deployment_minimum_percent}"
    assert svc["deployment_maximum_percent"] == "${var.deployment_maximum_percent}"
    root = config()
    assert root.modules["ecs_backend"]["deployment_minimum_percent"] == (
        "${var.backend_deployment_minimum_percent}"
    )
    assert root.modules["ecs_backend"]["deployment_maximum_percent"] == (
        "${var.backend_deployment_maximum_percent}"
    )
    assert "task_definition" in block(svc, "lifecycle")["ignore_changes"]
    lb = block(svc, "load_balancer")
    assert lb["target_group_arn"] == "${var.target_group_arn}"


def test_exactly_one_dagster_daemon_at_a_time() -> None:
    svc = module("sage_ops").resource("aws_ecs_service", "this")
    assert (svc["deployment_minimum_healthy_percent"], svc["deployment_maximum_percent"]) == (
        0,
        100,
    )
    assert svc["desired_count"] == 1
    assert set(module("sage_ops").locals["services"]) == {"webserver", "daemon", "code"}


def test_task_definitions_log_to_cloudwatch_and_read_secrets_from_secrets_manager() -> None:
    # sage_ops's three services share local.base_container (runs copy the daemon's definition).
    base = module("sage_ops").locals["base_container"]
    assert base["readonlyRootFilesystem"] is True
    assert base["secrets"] == "${[for k, v in local.secrets : {name = k, valueFrom = v}]}"
    for cfg_name in ("ecs_backend", "sage_ops"):
        for name, td in module(cfg_name).resources["aws_ecs_task_definition"].items():
            containers = td["container_definitions"]
            assert '"awslogs"' in containers, f"{cfg_name}.{name}"
            if "local.base_container" not in containers:
                assert "readonlyRootFilesystem = true" in containers, f"{cfg_name}.{name}"
                assert "valueFrom" in containers, f"{cfg_name}.{name}"
            assert td["requires_compatibilities"] == ["FARGATE"]
            assert td["execution_role_arn"] != td.get("task_role_arn")
    secrets = config().modules["ecs_backend"]["secrets"]
    assert secrets == {
        "DATABASE_URL": "${module.rds.database_url_secret_arn}",
        "REDIS_URL": "${module.redis.redis_url_secret_arn}",
    }


# --- data stores ---------------------------------------------------------------------------------


def test_rds_is_postgres_16_private_encrypted_backed_up_with_generated_password() -> None:
    rds = module("rds")
    db = rds.resource("aws_db_instance", "this")
    assert (db["engine"], db["engine_version"]) == ("postgres", "16")
    assert db["storage_encrypted"] is True and db["kms_key_id"] == "${var.kms_key_arn}"
    assert db["publicly_accessible"] is False
    assert db["backup_retention_period"] == "${var.backup_retention_days}"
    assert config().variables["db_backup_retention_days"]["default"] >= 7
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert config().variables["deletion_protection"]["default"] is True
    assert db["password"] == "${random_password.master.result}"
    assert "random_password.master.result" in str(
        rds.resource("aws_secretsmanager_secret_version", "master")
    )
    assert rds.resource("aws_db_parameter_group", "this")["family"] == "postgres16"
    assert config().modules["rds"]["subnet_ids"] == "${module.network.private_subnet_ids}"


def test_redis_7_is_private_with_transit_and_rest_encryption() -> None:
    redis = module("redis").resource("aws_elasticache_replication_group", "this")
    assert redis["engine"] == "redis" and str(redis["engine_version"]).startswith("7")
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["transit_encryption_enabled"] is True
    assert redis["auth_token"] == "${random_password.auth_token.result}"
    assert redis["automatic_failover_enabled"] is True
    assert config().modules["redis"]["subnet_ids"] == "${module.network.private_subnet_ids}"


def test_dagster_storage_is_a_separate_database_and_role_on_the_shared_instance() -> None:
    sage_ops = module("sage_ops")
    assert sage_ops.variables["dagster_db_name"]["default"] == "dagster"
    assert sage_ops.variables["dagster_db_user"]["default"] == "dagster"
    assert config().modules["sage_ops"]["db_address"] == "${module.rds.address}"
    script = (MODULES / "sage_ops" / "db_init.sh").read_text()
    assert "CREATE DATABASE %I OWNER %I" in script and "REVOKE ALL ON DATABASE" in script
    # The password reaches psql on stdin, never in argv.
    assert "\\password" in script and "printf" in script
    assert not re.search(r"psql[^\n|]*\$DAGSTER_PG_PASSWORD", script)


# --- S3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg", [c for c in all_configs() if "aws_s3_bucket" in c.resources], ids=lambda c: c.dir.name
)
def test_every_bucket_is_private_versioned_encrypted_and_has_a_lifecycle(cfg: Config) -> None:
    for rtype in (
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_policy",
    ):
        assert rtype in cfg.resources, f"{cfg.dir.name}: no {rtype}"
    for pab in cfg.resources["aws_s3_bucket_public_access_block"].values():
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls")
        assert all(pab[k] is True for k in (*flags, "restrict_public_buckets"))
    for versioning in cfg.resources["aws_s3_bucket_versioning"].values():
        assert block(versioning, "versioning_configuration")["status"] == "Enabled"
    for bucket in cfg.resources["aws_s3_bucket"].values():
        assert bucket.get("force_destroy", False) is False
        assert "acl" not in bucket
    assert "aws:SecureTransport" in cfg.code()


def test_backups_bucket_uses_kms_and_lifecycle_is_a_safety_net() -> None:
    cfg = module("backups_bucket")
    sse = cfg.resource("aws_s3_bucket_server_side_encryption_configuration", "this")
    default = block(block(sse, "rule"), "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms"
    lifecycle = cfg.resource("aws_s3_bucket_lifecycle_configuration", "this")
    rules = {r["id"]: r for r in blocks(lifecycle, "rule")}
    backups = rules["backups-safety-net"]
    assert block(backups, "filter")["prefix"] == "${var.backup_prefix}"
    assert block(backups, "expiration")["days"] == "${var.backup_expiration_days}"
    assert block(backups, "abort_incomplete_multipart_upload")["days_after_initiation"] == 1
    assert "noncurrent_version_expiration" in backups
    # Far behind sage_ops retention: it only acts when retention has stopped running.
    assert config().variables["backup_expiration_days"]["default"] >= 365


# --- ECR and ALB ---------------------------------------------------------------------------------


def test_ecr_tags_are_immutable_scanned_and_expire() -> None:
    ecr = module("ecr")
    repo = ecr.resource("aws_ecr_repository", "this")
    # SHA tags immutable; `latest`, which every deploy moves, excluded.
    assert repo["image_tag_mutability"] == "IMMUTABLE_WITH_EXCLUSION"
    exclusion = block(repo, "image_tag_mutability_exclusion_filter")
    assert (exclusion["filter"], exclusion["filter_type"]) == ("latest", "WILDCARD")
    assert block(repo, "image_scanning_configuration")["scan_on_push"] is True
    assert block(repo, "encryption_configuration")["encryption_type"] == "KMS"
    assert "aws_ecr_lifecycle_policy" in ecr.resources


def test_alb_https_when_certificate_given_and_health_check_on_slash_health() -> None:
    alb = module("alb")
    assert alb.locals["https"] == "${var.certificate_arn != null}"
    https = alb.resource("aws_lb_listener", "https")
    assert https["count"] == "${local.https ? 1 : 0}" and https["protocol"] == "HTTPS"
    assert https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    redirect = alb.resource("aws_lb_listener", "http_redirect")
    assert redirect["count"] == "${local.https ? 1 : 0}"
    action = block(redirect, "default_action")
    assert action["type"] == "redirect"
    assert block(action, "redirect") == {
        "port": "443",
        "protocol": "HTTPS",
        "status_code": "HTTP_301",
    }
    forward = alb.resource("aws_lb_listener", "http_forward")
    assert forward["count"] == "${local.https ? 0 : 1}"

    health = block(alb.resource("aws_lb_target_group", "backend"), "health_check")
    assert health["path"] == "${var.health_check_path}" and health["matcher"] == "200"
    assert alb.variables["health_check_path"]["default"] == "/health"
    assert config().modules["alb"]["health_check_path"] == "/health"
    assert config().outputs["alb_dns_name"]["value"] == "${module.alb.dns_name}"
    assert "certificate_arn" in tfvars("production")


# --- IAM -----------------------------------------------------------------------------------------

# Actions that AWS's Service Authorization Reference lists without a resource type: a statement
# may use Resource "*" only if every action in it is here.
UNSCOPABLE_ACTIONS = {
    "ecr:GetAuthorizationToken",  # registry login token, account-wide
    "ecs:RegisterTaskDefinition",  # families do not exist before registration
    "ecs:DescribeTaskDefinition",
    "ec2:DescribeNetworkInterfaces",  # EcsRunLauncher reads the daemon's own ENI
    "cloudwatch:GetMetricData",
    "cloudwatch:DescribeAlarms",  # listing by prefix; scoped to this account's alarm:* anyway
    "elasticloadbalancing:DescribeTargetHealth",  # ELB's Describe* take no resource ARNs
    "elasticloadbalancing:DescribeTargetGroups",
}
AWS_MANAGED_POLICIES = {"AmazonRDSEnhancedMonitoringRole"}  # writes only RDSOSMetrics


def _policy_documents() -> Iterator[tuple[str, dict]]:
    for cfg in all_configs():
        kms_policies = {
            k["policy"] for k in cfg.resources.get("aws_kms_key", {}).values() if "policy" in k
        }
        for name, doc in cfg.data.get("aws_iam_policy_document", {}).items():
            if f"${{data.aws_iam_policy_document.{name}.json}}" in kms_policies:
                continue  # a key policy: Resource "*" there means "this key"
            yield f"{cfg.dir.name}.{name}", doc


def test_iam_policies_are_written_as_policy_documents_only() -> None:
    for cfg in all_configs():
        text = cfg.code()
        assert not re.search(r'\b(Action|NotAction|Resource|NotResource)"?\s*[=:]', text), (
            f"{cfg.dir.name}: write IAM policies with aws_iam_policy_document"
        )
        assert "aws_iam_user" not in text and "aws_iam_access_key" not in text
        for attachment in cfg.resources.get("aws_iam_role_policy_attachment", {}).values():
            assert attachment["policy_arn"].rsplit("/", 1)[-1] in AWS_MANAGED_POLICIES


def test_no_wildcard_actions_and_no_star_resource_except_unscopable_actions() -> None:
    documents = list(_policy_documents())
    assert len(documents) >= 10
    for name, doc in documents:
        for statement in blocks(doc, "statement"):
            assert "not_actions" not in statement and "not_resources" not in statement, name
            actions = as_list(statement.get("actions", []))
            assert "*" not in actions, name
            if statement.get("effect", "Allow") == "Deny":
                continue
            assert not [a for a in actions if a.endswith(":*")], f"{name}: {actions}"
            if "*" in as_list(statement.get("resources", [])):
                extra = set(actions) - UNSCOPABLE_ACTIONS
                assert not extra, f"{name}: Resource * with scopable actions {extra}"


def test_pass_role_is_limited_to_named_roles_and_ecs() -> None:
    for name, doc in _policy_documents():
        for statement in blocks(doc, "statement"):
            if "iam:PassRole" not in as_list(statement.get("actions", [])):
                continue
            assert as_list(statement["actions"]) == ["iam:PassRole"], name
            assert "*" not in as_list(statement["resources"]), name
            condition = block(statement, "condition")
            assert condition["variable"] == "iam:PassedToService"
            assert condition["values"] == ["ecs-tasks.amazonaws.com"]


def _actions(policy: str) -> set[str]:
    doc = module("sage_ops").data["aws_iam_policy_document"][policy]
    return {a for s in blocks(doc, "statement") for a in as_list(s["actions"])}


def test_sage_ops_run_role_can_do_exactly_what_the_pipelines_need() -> None:
    assert _actions("run") == {
        # push the backend image
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:CompleteLayerUpload",
        "ecr:DescribeImages",
        "ecr:DescribeRepositories",  # the push refuses a repository that would reject `latest`
        "ecr:GetDownloadUrlForLayer",
        "ecr:InitiateLayerUpload",
        "ecr:PutImage",
        "ecr:UploadLayerPart",
        # deploy: new revision, update the service, one-off migration tasks
        "ecs:RegisterTaskDefinition",
        "ecs:DescribeTaskDefinition",
        "ecs:DescribeServices",
        "ecs:UpdateService",
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:TagResource",
        "iam:PassRole",
        # triage: alarms, metrics, logs
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricData",
        "logs:FilterLogEvents",
        "logs:GetLogEvents",
        "logs:DescribeLogStreams",
        # backups and compute logs
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        # notify
        "sns:Publish",
        # sage-ops doctor's read-only probes on the stack
        "kms:DescribeKey",
        "sns:GetTopicAttributes",
    }


def test_sage_ops_service_roles_are_smaller_still() -> None:
    assert _actions("code") == {"cloudwatch:DescribeAlarms"}
    # The launcher runs Terraform's run task definition as it is: it registers none.
    assert _actions("dagster") == {
        "ecs:DescribeTaskDefinition",
        "ec2:DescribeNetworkInterfaces",
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:TagResource",
        "iam:PassRole",
        "logs:GetLogEvents",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:DeleteObject",
        "kms:Decrypt",
    }
    assert _actions("execution") == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
    }


def test_sage_ops_grants_are_scoped_to_this_stacks_arns() -> None:
    sage_ops = module("sage_ops")
    run = {
        s["sid"]: s for s in blocks(sage_ops.data["aws_iam_policy_document"]["run"], "statement")
    }
    assert run["PushBackendImage"]["resources"] == ["${var.backend_repository_arn}"]
    assert run["PublishAlerts"]["resources"] == ["${var.alerts_topic_arn}"]
    assert run["WriteBackups"]["resources"] == ["${local.bucket_objects}"]
    assert run["DeployBackendServices"]["resources"] == "${local.target_service_arns}"
    assert run["PassBackendRoles"]["resources"] == "${local.target_role_arns}"
    assert block(run["RunMigrationTasks"], "condition")["variable"] == "ecs:cluster"
    targets = config().locals["deploy_targets"]
    assert "sage-${env}-backend" in str(targets) and "var.sage_ops_deploy_environments" in targets


# --- environments, skips, CI ---------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_files_set_only_declared_variables(env: str) -> None:
    values = tfvars(env)
    assert values["environment"] == env
    assert set(values) <= set(config().variables), set(values) - set(config().variables)
    backend = parse(TF / "environments" / f"{env}.s3.tfbackend")
    assert backend["key"] == f"sage/{env}/terraform.tfstate"
    assert backend["use_lockfile"] is True and backend["encrypt"] is True


def test_the_var_file_sizing_passes_the_connection_check() -> None:
    # Mirrors the db_max_connections validation, which terraform evaluates only at plan time.
    for env in ENVIRONMENTS:
        v = {k: tfvars(env).get(k, d.get("default")) for k, d in config().variables.items()}
        surge = -(-v["backend_desired_count"] * v["backend_deployment_maximum_percent"] // 100)
        needed = surge * v["backend_db_connection_limit"] + v["db_reserved_connections"]
        assert v["db_max_connections"] >= needed, env
        assert v["redis_num_nodes"] >= 2, env


def test_every_checkov_skip_is_inline_with_a_reason() -> None:
    skips = []
    for path in TF.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                skips.append(line.strip())
                assert re.fullmatch(r"#checkov:skip=CKV2?_AWS_\d+:\S.{20,}", line.strip()), line
    assert skips


def test_checkov_script_uses_its_own_venv_and_fails_on_findings() -> None:
    script = TF / "checkov.sh"
    text = script.read_text()
    assert ".state/tools/checkov-venv" in text and "set -euo pipefail" in text
    for flag in ("--framework terraform", "--compact", "--quiet"):
        assert flag in text
    assert "--soft-fail" not in text
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_hosted_ci_workflow_runs_fmt_validate_and_tflint() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "terraform.yml").read_text())
    commands = " ".join(
        step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]
    )
    for command in (
        "terraform fmt -check -recursive",
        "terraform init -backend=false",
        "terraform validate",
        "tflint --init",
        "tflint --recursive",
    ):
        assert command in commands, command
