"""A Fargate stand-in for one task: what the ECS agent does between RunTask and the container's
exit, for the task definitions the sandbox registers from Terraform's rendering.

It reads the task definition back from ECS (moto), resolves each secret from Secrets Manager the
way the agent does with the execution role, refusing one the role may not read or whose KMS key
it may not use (the role's grants as Terraform renders them: `local.secret_resources` for
secretsmanager:GetSecretValue, the stack key or `environment_kms_aliases` for kms:Decrypt),
builds the container's environment from the definition alone (plus what the agent adds), and
runs the container's command as a process with that environment in a fresh working directory,
its volumes fresh and, for a read-only root, nothing else writable (read_only_root.py).
A refused secret stops the task before the command starts, as ECS's ResourceInitializationError;
so does a connection the environment sets up that the security groups, as Terraform renders them,
would not let through (network.py): the task would only time out on it.
Given the task RunTask created, it reports the task's end the way the agent does, so that
DescribeTasks shows it as ECS would (lastStatus STOPPED, stopCode, stoppedReason, each
container's exitCode): what EcsRunLauncher.check_run_worker_health reads.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.ecs.models import ecs_backends

from tests.aws_sandbox import read_only_root
from tests.aws_sandbox.network import Network
from tests.infra.terraform_render import ACCOUNT, REGION, Module

BIN = Path(sys.executable).parent
ARN_SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret"  # the rendered stack's
# What the agent and the image add to every container (not in the task definition).
AGENT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)


@dataclass(frozen=True)
class StoppedTask:
    exit_code: int | None  # None: the container never started
    stopped_reason: str
    output: str  # the container's stdout (its log stream)
    errors: str = ""  # its stderr


@dataclass(frozen=True)
class Grants:
    """What Terraform lets the task do. The execution role's secret grants as Terraform renders
    them: secretsmanager:GetSecretValue on `local.secret_resources`, kms:Decrypt with the stack
    key and the keys behind `environment_kms_aliases`, checked on the secret's reference as
    rendered (the sandbox's own ARNs stand for what only AWS knows) and on the stored secret's
    key. And the security groups' rules, for every connection the task's environment sets up
    (network.py)."""

    rendered: Mapping[str, str]  # secret name -> valueFrom as Terraform renders it
    secret_resources: list[str]
    stack_key: str
    kms_aliases: list[str]
    network: Network

    @classmethod
    def of(cls, module: Module, stack_key: str, network: Network) -> Grants:
        resources = list(module.locals["secret_resources"])
        aliases = module.inputs["environment_kms_aliases"]
        return cls(module.run_secrets, resources, stack_key, aliases, network)

    def refusal(self, name: str, value_from: str) -> str | None:
        ref = self.rendered.get(name, value_from)
        arn = ref if ref.startswith("arn:") else f"{ARN_SECRETS}:{ref}-AbCdEf"
        secret = ":".join(arn.split(":")[:7])
        if not any(fnmatch.fnmatchcase(secret, r) for r in self.secret_resources):
            return f"{name}: the execution role may not secretsmanager:GetSecretValue {ref}"
        stored = ":".join(value_from.split(":")[:7])
        key = boto3.client("secretsmanager").describe_secret(SecretId=stored).get("KmsKeyId")
        if key == self.stack_key or set(_aliases(key)) & set(self.kms_aliases):
            return None
        return f"{name}: the execution role may not kms:Decrypt {ref} (its key {key})"


def _aliases(key: str | None) -> list[str]:
    if not key:
        return []
    listed = boto3.client("kms").list_aliases(KeyId=key)["Aliases"]
    return [a["AliasName"] for a in listed]


def run_task(
    definition_ref: str,
    grants: Grants,
    command: list[str] | None = None,
    *,
    task_arn: str | None = None,
    kill_when: Callable[[], bool] | None = None,
) -> StoppedTask:
    """One task of a task definition (a family: its latest revision, or an ARN), to its end;
    `command` is RunTask's container override. `task_arn`: the task RunTask created, whose end is
    reported to ECS. `kill_when`: polled while the container runs; once true, every process of the
    container is killed (SIGKILL, as when Fargate stops a task or the kernel's OOM killer fires)."""
    definition = boto3.client("ecs").describe_task_definition(taskDefinition=definition_ref)
    [container] = definition["taskDefinition"]["containerDefinitions"]
    stopped = _run_container(container, grants, command or container["command"], kill_when)
    if task_arn:
        report_stopped(task_arn, stopped)
    return stopped


def _run_container(
    container: Mapping[str, Any],
    grants: Grants,
    command: list[str],
    kill_when: Callable[[], bool] | None,
) -> StoppedTask:
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    for secret in container.get("secrets", []):
        refused = grants.refusal(secret["name"], secret["valueFrom"])
        if refused:
            return StoppedTask(None, f"ResourceInitializationError: {refused}", "")
        env[secret["name"]] = _secret_value(secret["valueFrom"])
    env |= {k: os.environ[k] for k in AGENT_VARIABLES if k in os.environ}
    env["ECS_CONTAINER_METADATA_URI_V4"] = "http://169.254.170.2/v4/fargate-stand-in"
    unreachable = grants.network.refusal(env)
    if unreachable:  # what the run would meet at its first connection, before any step
        return StoppedTask(None, f"Security groups: {unreachable}", "")
    env["PATH"] = f"{BIN}:/usr/bin:/bin"  # the image's PATH: its venv first
    with tempfile.TemporaryDirectory(prefix="fargate-task-") as workdir:
        # Each task's volumes start empty, mounted where the definition says (read_only_root.py).
        mounted = read_only_root.volumes(container.get("mountPoints", []), Path(workdir))
        if read_only_root.TMP in mounted:  # TMPDIR: a mount over /tmp would hide the sandbox
            tmp = mounted.pop(read_only_root.TMP)
            env["TMPDIR"], mounted[str(tmp)] = str(tmp), tmp
        env["HOME"] = workdir  # Docker's: the image user's home, its WORKDIR (/opt/dagster)
        read_only = bool(container.get("readonlyRootFilesystem"))
        command = read_only_root.command(command, mounted, read_only, Path(workdir))
        out, err = Path(workdir, "stdout"), Path(workdir, "stderr")
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                command, env=env, cwd=workdir, stdout=stdout, stderr=stderr, start_new_session=True
            )
            code = _wait(process, kill_when)
        return StoppedTask(
            code, "Essential container in task exited", out.read_text() + err.read_text()
        )


def _wait(process: subprocess.Popen[bytes], kill_when: Callable[[], bool] | None) -> int:
    """The container's exit code as Docker reports it (128 + the signal that ended it)."""
    deadline = time.monotonic() + 300
    while process.poll() is None:
        if (kill_when and kill_when()) or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)  # the container: its whole process group
            process.wait()
            break
        time.sleep(0.2)
    code = process.returncode
    return code if code >= 0 else 128 - code


def report_stopped(task_arn: str, stopped: StoppedTask) -> None:
    """The agent's report of the task's end, as DescribeTasks then shows it. moto has no API for a
    container's exit, so it is set on moto's own task model (its server runs in this process)."""
    region, account = task_arn.split(":")[3:5]
    tasks = ecs_backends[account][region].tasks
    [task] = [t for by_arn in tasks.values() for arn, t in by_arn.items() if arn == task_arn]
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = stopped.stopped_reason
    started = stopped.exit_code is not None
    task.stop_code = "EssentialContainerExited" if started else "TaskFailedToStart"
    for container in task.containers:
        container.last_status = "STOPPED"
        container.exitCode = stopped.exit_code  # None: never started, as ECS omits it


def _secret_value(value_from: str) -> str:
    """`arn` or `arn:json-key::` (ECS's valueFrom forms for Secrets Manager)."""
    parts = value_from.split(":")
    value = boto3.client("secretsmanager").get_secret_value(SecretId=":".join(parts[:7]))
    text: str = value["SecretString"]
    if len(parts) > 7 and parts[7]:
        loaded: dict[str, Any] = json.loads(text)
        return str(loaded[parts[7]])
    return text
