"""A run task as Fargate starts it: Terraform's run task definition (rendered by terraform
console, registered on moto with the sandbox's values), its secrets resolved through the
execution role's rendered grants, its own command (`sage-ops doctor --require-all`) run with
nothing but the environment the definition gives it."""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from tests.aws_sandbox import fargate
from tests.aws_sandbox.conftest import Sandbox
from tests.aws_sandbox.network import Network
from tests.aws_sandbox.test_doctor import CAPABILITIES
from tests.infra import terraform_render
from tests.infra.test_terraform_contract import sage_ops_stack


def grants(sandbox: Sandbox) -> fargate.Grants:
    module = terraform_render.render(sage_ops_stack())
    reach = Network.of(sage_ops_stack(), sandbox.places)
    return fargate.Grants.of(module, sandbox.env["SAGE_OPS_S3_KMS_KEY_ID"], reach)


def run_task(sandbox: Sandbox, given: fargate.Grants | None = None) -> fargate.StoppedTask:
    return fargate.run_task(sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"], given or grants(sandbox))


def test_doctor_in_the_run_task_is_ok_on_every_line(sandbox: Sandbox) -> None:
    task = run_task(sandbox)
    assert task.exit_code == 0, task.stopped_reason + task.output + task.errors
    lines = [line.strip() for line in task.output.split("checks:\n", 1)[1].splitlines()]
    assert {line[5:].split(":", 1)[0] for line in lines} == CAPABILITIES
    assert all(line.startswith("[ok] ") for line in lines), task.output
    family = sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
    assert f"runs start {family}:" in task.output  # the launcher's task definition, described


@pytest.mark.parametrize("secret", sorted(terraform_render.render(sage_ops_stack()).run_secrets))
def test_a_secret_the_execution_role_may_not_read_stops_the_task(
    sandbox: Sandbox, secret: str
) -> None:
    full = grants(sandbox)
    ref = full.rendered[secret]
    arn = ref if ref.startswith("arn:") else f"{fargate.ARN_SECRETS}:{ref}-AbCdEf"
    secret_arn = ":".join(arn.split(":")[:7])
    kept = [r for r in full.secret_resources if not fnmatch.fnmatchcase(secret_arn, r)]
    task = run_task(sandbox, replace(full, secret_resources=kept))
    assert task.exit_code is None
    # Named by the secret it refers to (DATABASE_URL and PRODUCTION_DATABASE_URL share one).
    assert f"GetSecretValue {ref}" in task.stopped_reason


def test_another_environments_key_without_its_alias_grant_stops_the_task(sandbox: Sandbox) -> None:
    full = grants(sandbox)
    assert full.kms_aliases == ["alias/sage-staging"]
    task = run_task(sandbox, replace(full, kms_aliases=[]))
    assert task.exit_code is None
    assert "STAGING_DATABASE_URL" in task.stopped_reason and "kms:Decrypt" in task.stopped_reason


@pytest.mark.parametrize("variable", ["SAGE_OPS_REPO", "SAGE_OPS_LOG_GROUPS"])
def test_a_variable_missing_from_the_definition_is_named_by_doctor(
    sandbox: Sandbox, variable: str
) -> None:
    ecs = boto3.client("ecs")
    current = ecs.describe_task_definition(
        taskDefinition=sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"]
    )
    definition = current["taskDefinition"]
    [container] = definition["containerDefinitions"]
    container["environment"] = [e for e in container["environment"] if e["name"] != variable]
    keep = (
        "requiresCompatibilities",
        "networkMode",
        "cpu",
        "memory",
        "volumes",
        "ephemeralStorage",
    )
    family = f"{definition['family']}-without-{variable.lower().replace('_', '-')}"
    ecs.register_task_definition(
        **{k: definition[k] for k in keep},
        family=family,
        taskRoleArn=definition["taskRoleArn"],
        executionRoleArn=definition["executionRoleArn"],
        containerDefinitions=[container],
    )
    task = fargate.run_task(family, grants(sandbox))
    assert task.exit_code == 1
    failed = [line for line in task.output.splitlines() if "[FAIL]" in line]
    assert len(failed) == 1 and variable in failed[0], task.output


def _written(sandbox: Sandbox, path: str) -> fargate.StoppedTask:
    script = f'echo written > "{path}" && echo "wrote {path}"'
    return fargate.run_task(
        sandbox.env["SAGE_OPS_RUN_TASK_DEFINITION"], grants(sandbox), ["sh", "-c", script]
    )


@pytest.mark.parametrize(
    "path",
    ["$SAGE_OPS_STATE_DIR/x", "$DAGSTER_HOME/storage/x", "$TMPDIR/x"],
    ids=["state", "storage", "tmp"],
)
def test_the_run_task_writes_to_its_volumes(sandbox: Sandbox, path: str) -> None:
    task = _written(sandbox, path)
    assert task.exit_code == 0, task.output


@pytest.mark.parametrize(
    "path",
    ["$DAGSTER_HOME/x", "$HOME/x", "$SAGE_OPS_REPO/x", f"{fargate.BIN}/x"],
    ids=["dagster-home", "home", "repository", "image"],
)
def test_a_write_outside_the_volumes_fails_on_the_read_only_root(
    sandbox: Sandbox, path: str
) -> None:
    """readonlyRootFilesystem: the image's files, its user's home (the working directory) and
    whatever stands for them here are read-only in the task."""
    task = _written(sandbox, path)
    assert task.exit_code != 0 and "Read-only file system" in task.output, task.output
    for where in ("DAGSTER_HOME", "SAGE_OPS_REPO"):
        assert not Path(sandbox.env[where], "x").exists()
