"""The security groups' rules, as Terraform renders them, enforced by the Fargate stand-in: a
rule a run's connection needs, removed from the rendering, stops the run task before it starts,
naming the rule (fargate.py, network.py)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from tests.aws_sandbox import fargate, network
from tests.aws_sandbox.conftest import Sandbox
from tests.aws_sandbox.network import Network
from tests.aws_sandbox.test_run_task import grants, run_task
from tests.infra.test_terraform_contract import sage_ops_stack

SSH_REMOTE = "git@github.com:REPLACE-ME/sage.git"  # a deploy key's remote


def run_task_rules() -> list[tuple[str, str]]:
    """(environment, address) of every rule that lets the run task's group out, or admits it
    into another group, in any stack; not those among the sage_ops tasks themselves (the
    code server's gRPC: a run worker loads its code from the image and calls no other task)."""
    reach = Network.of(sage_ops_stack(), {})
    task = (reach.task.stack, reach.task.group)
    found = []
    for environment, groups in reach.groups.items():
        for address, rule in groups.rules.items():
            owner = reach.group_of(environment, rule["security_group_id"])
            peer = reach.peer_of(environment, rule)
            egress = "egress_rule" in address and owner == task
            admits = "ingress_rule" in address and peer == task
            if (egress or admits) and not owner == peer == task:
                found.append((environment, address))
    return found


def _environment(sandbox: Sandbox) -> dict[str, str]:
    """The run task's environment as the stand-in builds it (the agent's endpoint included)."""
    return sandbox.env | {"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]}


def _over_ssh(sandbox: Sandbox, given: fargate.Grants) -> fargate.Grants:
    """The sandbox's repository standing for an SSH remote: its deploy key needs port 22 out."""
    places = {**sandbox.places, sandbox.env["SAGE_OPS_REPO"]: network.git_host(SSH_REMOTE)}
    return replace(given, network=replace(given.network, places=places))


@pytest.mark.parametrize(("environment", "address"), run_task_rules())
def test_a_rule_missing_from_terraform_stops_the_run_task_naming_it(
    sandbox: Sandbox, environment: str, address: str
) -> None:
    full = _over_ssh(sandbox, grants(sandbox))
    assert full.network.refusal(_environment(sandbox)) is None
    rule = full.network.groups[environment].rules[address]
    _, group = full.network.group_of(environment, rule["security_group_id"])

    task = run_task(sandbox, replace(full, network=full.network.without(environment, address)))

    assert task.exit_code is None, task.output
    kind = address.split(".")[0]
    assert f"no {kind} on {environment}'s aws_security_group.{group} " in task.stopped_reason
    assert f"tcp/{rule['from_port']}" in task.stopped_reason, task.stopped_reason


def test_the_rules_cover_what_a_run_connects_to() -> None:
    """Every kind of place a run reaches is among the rules tested above."""
    rules = {address.split(".")[1].split("[")[0] for _, address in run_task_rules()}
    assert rules == {
        "sage_ops_https",
        "sage_ops_git_ssh",
        "sage_ops_to_rds",
        "rds_from_sage_ops",
        "sage_ops_to_peer_rds",
        "rds_from_peer_sage_ops",
    }


def test_an_https_repository_needs_no_ssh_rule(sandbox: Sandbox) -> None:
    reach = grants(sandbox).network
    [ssh] = [a for e, a in run_task_rules() if "sage_ops_git_ssh" in a]
    assert reach.without(sage_ops_stack(), ssh).refusal(_environment(sandbox)) is None
    over_ssh = _over_ssh(sandbox, grants(sandbox)).network
    refused = over_ssh.without(sage_ops_stack(), ssh).refusal(_environment(sandbox))
    assert refused and "SAGE_OPS_REPO" in refused and "tcp/22" in refused
