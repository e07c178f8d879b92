"""The backend listens, exposes and checks its health on the port the stack routes to: the ECS
task definition and ALB target group (Terraform's backend_container_port), docker-compose, and
both backend image templates. A mismatch is a health check that fails on every deploy."""

import re
from pathlib import Path

import pytest
import yaml

from tests.infra.test_terraform import parse

INFRA = Path(__file__).resolve().parents[2] / "infra"
TEMPLATES = ["Dockerfile.node", "Dockerfile.debian"]


def _terraform_port() -> int:
    [variable] = [
        v["backend_container_port"]
        for v in parse(INFRA / "terraform" / "variables.tf")["variable"]
        if "backend_container_port" in v
    ]
    return int(variable["default"])


def _runtime_stage(dockerfile: str) -> str:
    return dockerfile[dockerfile.index(" AS runtime") :]


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_runtime_image_serves_and_checks_the_stacks_port(template):
    port = _terraform_port()
    text = (INFRA / "sample-backend" / template).read_text()
    runtime = _runtime_stage(text)
    assert re.findall(r"^EXPOSE (\d+)", runtime, re.M) == [str(port)]
    assert set(re.findall(r"\bPORT=(\d+)", text)) == {str(port)}
    [check] = re.findall(r"^HEALTHCHECK .*\n.*", text, re.M)
    assert '"/usr/local/lib/healthcheck.js"' in check  # node probing 127.0.0.1:$PORT/health
    probe = (INFRA / "sample-backend" / "runtime-rootfs.sh").read_text()
    assert "http://127.0.0.1:${process.env.PORT || 3000}/health" in probe


def test_compose_routes_to_the_same_port():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    backend = compose["services"]["backend"]
    [mapping] = backend["ports"]
    assert mapping.rsplit(":", 1)[1] == str(_terraform_port())


def test_the_client_needs_no_prisma_engine():
    """engineType "client": queries compile in Wasm and go through @prisma/adapter-pg, so no
    query engine (nor the OpenSSL it links) is in either runtime image."""
    schema = (INFRA / "sample-backend" / "prisma" / "schema.prisma").read_text()
    assert re.search(r'^\s*engineType\s*=\s*"client"', schema, re.M)
    for template in TEMPLATES:
        assert "openssl" not in _runtime_stage((INFRA / "sample-backend" / template).read_text())
