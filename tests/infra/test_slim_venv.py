"""The AWS API models slim-venv.sh keeps in the sage-ops image cover every AWS service the image's
processes call: sage_ops itself, the ECS run launcher that dagster.yaml configures, and botocore's
credential providers. A service left out would fail at run time with UnknownServiceError."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import botocore
import dagster_aws.ecs.launcher
import dagster_aws.s3.compute_log_manager

REPO = Path(__file__).resolve().parents[2]
SLIM_VENV = REPO / "infra/docker/slim-venv.sh"


def kept() -> set[str]:
    match = re.search(r'^AWS_SERVICES="([^"]*)"', SLIM_VENV.read_text(), re.MULTILINE)
    assert match, "AWS_SERVICES is not set in slim-venv.sh"
    return set(match.group(1).split())


def called(*files: Path) -> set[str]:
    """Service names passed to anything named like a client or resource factory (boto3.client,
    aws.client, a builder's clients, client_creator), positionally or as service_name."""
    return {name for file in files for name in _service_names(ast.parse(file.read_text()))}


def _service_names(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if "client" not in name and "resource" not in name:
            continue
        args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "service_name")]
        found |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return {name for name in found if re.fullmatch(r"[a-z0-9-]+", name)}


def test_every_service_sage_ops_calls_keeps_its_model():
    services = called(*(REPO / "sage_ops").rglob("*.py"))
    # the walk still finds the calls, the builder's clients("codebuild") among them
    assert {"ecs", "s3", "logs", "sns", "codebuild"} <= services
    assert services - kept() == set()


def launcher_services() -> set[str]:
    """What dagster.yaml's ECS run launcher and S3 compute log manager call."""
    return called(
        Path(dagster_aws.ecs.launcher.__file__),
        Path(dagster_aws.s3.compute_log_manager.__file__),
    )


def test_the_ecs_run_launcher_and_botocore_credentials_keep_theirs():
    launcher = launcher_services()
    assert {"ecs", "ec2", "secretsmanager", "logs"} <= launcher
    botocore_dir = Path(botocore.__file__).parent
    credentials = called(botocore_dir / "credentials.py", botocore_dir / "tokens.py")
    assert "sts" in credentials
    assert (launcher | credentials) - kept() == set()
    assert "dagster_aws.ecs" in (REPO / "infra/dagster/dagster.yaml").read_text()


def test_each_kept_service_has_a_model_in_botocore():
    models = Path(botocore.__file__).parent / "data"
    assert {service for service in kept() if not (models / service).is_dir()} == set()
