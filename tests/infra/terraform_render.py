"""Terraform's own evaluation of the stack's variables and locals, per environment, offline.

`terraform init` cannot download providers here, but `terraform console` evaluates a
configuration that has no resources without any. So the renderer writes two small harnesses and
lets the real binary evaluate them:

  1. the root's variables.tf (with every `validation`) and its locals, loaded with
     environments/<env>.tfvars: a tfvars that fails a validation fails here with Terraform's
     message, and the `module "sage_ops"` arguments come out as values;
  2. the sage_ops module's variables.tf and locals, fed those values: the task environment,
     secrets, run family and IAM secret resources exactly as the module computes them.

What only AWS knows at apply time (a module output, a resource attribute, a data source) is
replaced by a stand-in string naming it, e.g. "<aws_iam_role.run.arn>", so it stays visible.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.test_terraform import MODULES, TF, Config

REGION = "us-west-2"
ACCOUNT = "111122223333"  # the account the tfvars' example ARNs use
# Data sources whose value is known without AWS once the account and region are fixed.
KNOWN = {
    "data.aws_region.current.region": REGION,
    "data.aws_caller_identity.current.account_id": ACCOUNT,
    "data.aws_partition.current.partition": "aws",
}
REFERENCE = (
    r"(?<![\w.\"])(module\.[\w-]+(?:\[\d+\])?(?:\.[\w-]+)*|data\.\w+\.\w+(?:\[\d+\])?(?:\.\w+)*"
    r"|(?:aws|random)_\w+\.\w+(?:\[[^\]]+\])?\.\w+)"
)
# A whole module or data source (iterated over, not one attribute): a local built on one is opaque.
WHOLE = re.compile(r"(?<![\w.\"])(?:module\.[\w-]+|data\.\w+\.\w+)(?![\w.\[-])")
META = {"source", "count", "for_each", "depends_on", "providers"}


class TerraformError(Exception):
    """terraform console refused the configuration or the tfvars (its message included)."""


@dataclass(frozen=True)
class Module:
    """The sage_ops module of one environment's stack, as Terraform evaluates it."""

    environment: str
    inputs: dict[str, Any]  # the module's variables
    locals: dict[str, Any]
    run_task_definition: dict[str, Any]  # RegisterTaskDefinition's arguments

    @property
    def task_environment(self) -> dict[str, str]:
        return dict(self.locals["environment"])

    @property
    def service_secrets(self) -> dict[str, str]:
        return dict(self.locals["secrets"])

    @property
    def run_secrets(self) -> dict[str, str]:
        return self.service_secrets | dict(self.locals["run_secrets"])


class Writer:
    """Writes python-hcl2 values back as HCL (an expression stays a "${...}" template, which
    Terraform evaluates to the expression's own value and type), with every reference only apply
    can resolve, and every local built on one (`local.ecr["backend"].arn`), as a stand-in."""

    def __init__(self, local_values: dict[str, Any]) -> None:
        opaque = sorted(n for n, v in local_values.items() if WHOLE.search(json.dumps(v)))
        paths = [rf"local\.{n}(?:\[[^\]]+\]|\.\w+)*" for n in opaque]
        self.pattern = re.compile(
            REFERENCE.replace("(module", "(" + "".join(p + "|" for p in paths) + "module", 1)
        )
        self.local_values = {n: v for n, v in local_values.items() if n not in opaque}

    def _stand_in(self, match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in KNOWN:
            return json.dumps(KNOWN[ref])
        # An ARN stays ARN-shaped (7 fields) so the module's ARN handling applies to it.
        shape = f"arn:aws:stand-in:{REGION}:{ACCOUNT}:x:<{{}}>" if ref.endswith("arn") else "<{}>"
        return json.dumps(shape.format(ref))

    def hcl(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "null"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, dict):
            items = ", ".join(f"{json.dumps(k)} = {self.hcl(v)}" for k, v in value.items())
            return "{" + items + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.hcl(v) for v in value) + "]"
        return '"' + self.pattern.sub(self._stand_in, str(value)) + '"'

    def locals_block(self) -> str:
        body = "\n".join(f"  {n} = {self.hcl(v)}" for n, v in self.local_values.items())
        return f"locals {{\n{body}\n}}\n"


def console(
    variables: Path, writer: Writer, expression: Any, var_file: Path, overrides: Path | None = None
) -> Any:
    """Evaluate `expression` (a python-hcl2 value) with terraform console in a directory holding
    `variables` and the writer's locals, loaded with `var_file` (.tfvars or .tfvars.json)."""
    with tempfile.TemporaryDirectory(prefix="tf-render-") as tmp:
        Path(tmp, "variables.tf").write_text(variables.read_text())
        Path(tmp, "locals.tf").write_text(writer.locals_block())
        done = subprocess.run(
            ["terraform", "console", "-no-color", f"-var-file={var_file}"]
            + ([f"-var-file={overrides}"] if overrides else []),
            input=f"jsonencode({writer.hcl(expression)})\n",
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    # console reports a failed validation and still prints a value and exits 0.
    if done.returncode != 0 or "Error: " in done.stderr:
        errors = [line for line in done.stderr.splitlines() if "CLI configuration" not in line]
        raise TerraformError("\n".join(errors).strip())
    return json.loads(json.loads(done.stdout.strip().splitlines()[-1]))


def tfvars_path(environment: str) -> Path:
    return TF / "environments" / f"{environment}.tfvars"


def module_inputs(environment: str, **overrides: Any) -> dict[str, Any]:
    """The arguments the root passes to module "sage_ops", evaluated with <env>.tfvars and then
    `overrides` (every root variable validation runs); {} when that stack does not run sage_ops."""
    if not overrides:
        return _module_inputs(environment)
    with tempfile.TemporaryDirectory(prefix="tf-overrides-") as tmp:
        extra = Path(tmp, "overrides.tfvars.json")
        extra.write_text(json.dumps(overrides))
        return _evaluate_inputs(environment, extra)


@functools.cache
def _module_inputs(environment: str) -> dict[str, Any]:
    return _evaluate_inputs(environment, None)


def _evaluate_inputs(
    environment: str, overrides: Path | None, module: str = "sage_ops"
) -> dict[str, Any]:
    """module "sage_ops"'s arguments ({} when sage_ops_enabled is false), or another module's."""
    root = Config(TF)
    arguments = {k: v for k, v in root.modules[module].items() if k not in META}
    expression = {"enabled": "${var.sage_ops_enabled}", "inputs": arguments}
    writer = Writer(root.locals)
    rendered = console(TF / "variables.tf", writer, expression, tfvars_path(environment), overrides)
    return dict(rendered["inputs"]) if rendered["enabled"] or module != "sage_ops" else {}


def _typed(value: Any, declared: str) -> Any:
    """A stand-in string shaped as the variable's type (a port stays a number)."""
    if not (isinstance(value, str) and value.startswith("<")):
        return value
    if "number" in declared:
        return 5432 if value.endswith(".port>") else 0
    if "list(" in declared:
        return [value]
    if "map(" in declared:
        return {}
    return value


@functools.cache
def render(environment: str) -> Module:
    """The sage_ops module of `environment`'s stack (TerraformError: a refused tfvars)."""
    inputs = module_inputs(environment)
    if not inputs:
        raise TerraformError(f"{environment}.tfvars: sage_ops_enabled is false")
    return render_inputs(environment, inputs)


def render_inputs(environment: str, inputs: dict[str, Any]) -> Module:
    """The sage_ops module evaluated with these inputs (module_inputs' output)."""
    module = Config(MODULES / "sage_ops")
    inputs = {k: _typed(v, module.variables[k].get("type", "")) for k, v in inputs.items()}
    with tempfile.TemporaryDirectory(prefix="tf-inputs-") as tmp:
        var_file = Path(tmp, "inputs.tfvars.json")
        var_file.write_text(json.dumps(inputs))
        writer = Writer(module.locals)
        names = {name: f"${{local.{name}}}" for name in writer.local_values}
        expression = {"locals": names, "run": _run_task_definition(module)}
        values = console(MODULES / "sage_ops" / "variables.tf", writer, expression, var_file)
    run = dict(values["run"])
    run["containerDefinitions"] = json.loads(run["containerDefinitions"])
    return Module(environment, inputs, values["locals"], run)


def _run_task_definition(module: Config) -> dict[str, Any]:
    """The run task definition's arguments, as RegisterTaskDefinition names them."""
    run = module.resources["aws_ecs_task_definition"]["run"]
    volumes = run["dynamic"][0]["volume"]["for_each"]
    return {
        "family": run["family"],
        "requiresCompatibilities": run["requires_compatibilities"],
        "networkMode": run["network_mode"],
        "cpu": f"${{tostring({run['cpu'][2:-1]})}}",
        "memory": f"${{tostring({run['memory'][2:-1]})}}",
        "executionRoleArn": run["execution_role_arn"],
        "taskRoleArn": run["task_role_arn"],
        "ephemeralStorage": {"sizeInGiB": run["ephemeral_storage"][0]["size_in_gib"]},
        "volumes": f"${{[for name in keys({volumes[2:-1]}) : {{ name = name }}]}}",
        "containerDefinitions": run["container_definitions"],
    }


@dataclass(frozen=True)
class SecurityGroups:
    """The security_groups module of one environment's stack, as Terraform evaluates it."""

    environment: str
    names: dict[str, str]  # aws_security_group resource name -> its name attribute
    found_by_name: dict[str, str]  # data.aws_security_group name -> the group-name it filters on
    # address (aws_vpc_security_group_egress_rule.sage_ops_to_peer_rds["10.41.0.0/16"]) ->
    # {security_group_id, from_port, to_port, and cidr_ipv4 or referenced_security_group_id},
    # a group's id as a stand-in ("<aws_security_group.rds.id>"); only the rules count and
    # for_each create in this stack.
    rules: dict[str, dict[str, Any]]


RULE_TYPES = ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")
RULE_FIELDS = ("security_group_id", "from_port", "to_port", "cidr_ipv4")


@functools.cache
def security_groups(environment: str) -> SecurityGroups:
    module = Config(MODULES / "security_groups")
    inputs = _evaluate_inputs(environment, None, "security_groups")
    inputs = {k: _typed(v, module.variables[k].get("type", "")) for k, v in inputs.items()}
    rules = {
        f"{rtype}.{name}": _instances(rule)
        for rtype in RULE_TYPES
        for name, rule in module.resources.get(rtype, {}).items()
    }
    expression = {
        "names": {n: g["name"] for n, g in module.resources["aws_security_group"].items()},
        "found_by_name": {
            n: d["filter"][0]["values"][0] for n, d in module.data["aws_security_group"].items()
        },
        "rules": rules,
    }
    with tempfile.TemporaryDirectory(prefix="tf-inputs-") as tmp:
        var_file = Path(tmp, "inputs.tfvars.json")
        var_file.write_text(json.dumps(inputs))
        variables = MODULES / "security_groups" / "variables.tf"
        values = console(variables, Writer(module.locals), expression, var_file)
    created = {
        _address(address, rule.pop("key")): rule
        for address, instances in values["rules"].items()
        for rule in instances
    }
    return SecurityGroups(environment, values["names"], values["found_by_name"], created)


def _address(resource: str, key: str | int) -> str:
    """Terraform's address of one instance: name, name[0] or name["key"]."""
    return resource if key == "" else f"{resource}[{json.dumps(key)}]"


def _instances(rule: dict[str, Any]) -> str:
    """The rule's instances as one HCL list, each with its `key` ("" without count/for_each):
    `for_each` and `count` become for expressions over the same collections."""
    fields = [*RULE_FIELDS, "referenced_security_group_id"]
    body = ", ".join(f"{k} = {json.dumps(rule[k])}" for k in fields if k in rule)
    body = body.replace("each.value", "each_value").replace("count.index", "count_index")
    if "for_each" in rule:
        return f"${{[for each_value in {rule['for_each'][2:-1]} : {{key = each_value, {body}}}]}}"
    if "count" in rule:
        each = f"count_index in range({rule['count'][2:-1]})"
        return f"${{[for {each} : {{key = count_index, {body}}}]}}"
    return f'${{[{{key = "", {body}}}]}}'
