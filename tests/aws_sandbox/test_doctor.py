"""`sage-ops doctor` with the environment Terraform gives the sage_ops tasks, on the sandbox.

Every capability answers `[ok]` from its real system (moto for AWS, the machine's PostgreSQL for
the databases and Dagster's storage); with any one variable removed, the first line that is not
`[ok]` names it. Run as on the stack: strict, since the ECS agent's variable is set in the task.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sage_ops import doctor
from sage_ops.backups.resources import BackupConfig
from tests.aws_sandbox import stack
from tests.aws_sandbox.conftest import Sandbox

SAGE_OPS = str(Path(sys.executable).parent / "sage-ops")
CAPABILITIES = {
    "database",
    "pg_dump",
    "scratch server",
    "backup store",
    "backup encryption",
    "state directory",
    "migrations staging",
    "migrations production",
    "deploy builder",
    "deploy registry",
    "deploy staging target",
    "deploy production target",
    "git sensor",
    "git credential",
    "alarms",
    "sns topic",
    "lineage",
    "run launcher",
    "compute logs",
    "database tls",
    "migrations dir",
    "triage evidence",
}
# Optional in the module too (`var.repo_credential_secret_arn == null ? {} : ...`): a public
# repository needs no credential, so its absence is a skip even on the stack.
OPTIONAL = {"SAGE_OPS_REPO_CREDENTIAL_SECRET"}


def checks() -> tuple[list[str], int, str]:
    text, code = doctor.report(*BackupConfig.read_env(), strict=True)
    lines = text.split("checks:\n", 1)[1].splitlines()
    return [line.strip() for line in lines], code, text


def test_every_capability_is_ok_with_the_terraform_environment(sandbox: Sandbox) -> None:
    lines, code, text = checks()
    assert code == 0, text
    assert all(line.startswith("[ok] ") for line in lines), text
    assert {line[5:].split(":", 1)[0] for line in lines} == CAPABILITIES
    for name in ("DATABASE_URL", "STAGING_DATABASE_URL", "PRODUCTION_DATABASE_URL"):
        password = sandbox.env[name].split("://", 1)[1].split("@")[0].partition(":")[2]
        assert not password or password not in text, f"{name}'s password shown"


def test_sage_ops_doctor_in_the_task_is_strict_and_passes(sandbox: Sandbox) -> None:
    """The command itself, with the variable the ECS agent sets in every task."""
    env = dict(os.environ, ECS_CONTAINER_METADATA_URI_V4="http://169.254.170.2/v4/sandbox")
    result = subprocess.run(
        [SAGE_OPS, "doctor"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("[ok] ") == len(CAPABILITIES)


@pytest.mark.parametrize("variable", sorted(stack.terraform_names()))
def test_a_missing_variable_is_named(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv(variable)
    if variable == "AWS_REGION":
        monkeypatch.delenv("AWS_DEFAULT_REGION")  # what Fargate sets beside it: no region at all
    lines, code, text = checks()
    first = next(line for line in lines if not line.startswith("[ok] "))
    assert variable in first, text
    assert code == (0 if variable in OPTIONAL else 1), text
