"""The AWS API models slim-venv.sh keeps in the sage-ops image cover every AWS service the image's
processes call: sage_ops itself, the ECS run launcher that dagster.yaml configures, and botocore's
credential providers. A service left out would fail at run time with UnknownServiceError."""

from __future__ import annotations

import re
from pathlib import Path

import botocore
import dagster_aws.ecs.launcher

REPO = Path(__file__).resolve().parents[2]
SLIM_VENV = REPO / "infra/docker/slim-venv.sh"
CALL = re.compile(r"""(?:client|resource|client_creator)\(\s*['"]([a-z0-9-]+)['"]""")


def kept() -> set[str]:
    match = re.search(r'^AWS_SERVICES="([^"]*)"', SLIM_VENV.read_text(), re.MULTILINE)
    assert match, "AWS_SERVICES is not set in slim-venv.sh"
    return set(match.group(1).split())


def called(*files: Path) -> set[str]:
    return {name for file in files for name in CALL.findall(file.read_text())}


def test_every_service_sage_ops_calls_keeps_its_model():
    services = called(*(REPO / "sage_ops").rglob("*.py"))
    assert {"ecs", "s3", "logs", "sns"} <= services  # the pattern still finds the calls
    assert services - kept() == set()


def test_the_ecs_run_launcher_and_botocore_credentials_keep_theirs():
    launcher = called(Path(dagster_aws.ecs.launcher.__file__))
    assert {"ecs", "ec2", "secretsmanager", "logs"} <= launcher
    botocore_dir = Path(botocore.__file__).parent
    credentials = called(botocore_dir / "credentials.py", botocore_dir / "tokens.py")
    assert "sts" in credentials
    assert (launcher | credentials) - kept() == set()
    assert "dagster_aws.ecs" in (REPO / "infra/dagster/dagster.yaml").read_text()


def test_each_kept_service_has_a_model_in_botocore():
    models = Path(botocore.__file__).parent / "data"
    assert {service for service in kept() if not (models / service).is_dir()} == set()
