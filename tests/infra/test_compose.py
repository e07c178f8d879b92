"""docker-compose.yml and the sage_ops Dockerfile, validated as far as this machine allows
(no image can be pulled here, so the stack is checked with `docker-compose config`)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sage_ops.cli import _parser
from sage_ops.cli.gate import gate

INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.fixture
def compose_config(tmp_path) -> dict:
    if shutil.which("docker-compose") is None:  # .ci/run installs it; a dev machine may not have it
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"], check=True)
    for app in ("backend", "frontend"):
        (tmp_path / app / "src").mkdir(parents=True)
    env = tmp_path / ".env"
    env.write_text(
        f"POSTGRES_PASSWORD=compose-test-secret\nBACKEND_DIR={tmp_path}/backend\n"
        f"FRONTEND_DIR={tmp_path}/frontend\nSAGE_ENV_FILE={tmp_path}/.env\n"
    )
    result = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(INFRA / "docker-compose.yml"),
            "--env-file",
            str(env),
            "config",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_stack_has_every_service_on_one_network(compose_config):
    services = compose_config["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "backend",
        "frontend",
        "registry",
        "dagster-code",
        "dagster-webserver",
        "dagster-daemon",
    }
    assert all(list(s["networks"]) == ["sage-network"] for s in services.values())
    assert compose_config["networks"]["sage-network"]["name"] == "sage-network"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert "postgres-data" in compose_config["volumes"]


def test_ports_bind_to_loopback_only(compose_config):
    for name, service in compose_config["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_sage_ops_services_share_one_image_and_instance_config(compose_config):
    services = compose_config["services"]
    dagster = [services[n] for n in ("dagster-code", "dagster-webserver", "dagster-daemon")]
    assert {s["image"] for s in dagster} == {"sage-ops:local"}
    assert all(s["environment"]["DAGSTER_PG_HOST"] == "postgres" for s in dagster)
    daemon_mounts = " ".join(str(v) for v in services["dagster-daemon"]["volumes"])
    assert "docker.sock" in daemon_mounts and "dagster-docker.yaml" in daemon_mounts
    # The DockerRunLauncher has no image of its own: runs use the code location's.
    assert services["dagster-code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == "sage-ops:local"
    assert compose_config["volumes"]["sage-ops-state"]["name"] == "sage-ops-state"


def test_ports_match_the_seed(compose_config):
    """The backend on 3000 as the seed has it, the frontend on 5173, Dagster's UI elsewhere."""
    published = {
        name: [p["published"] if isinstance(p, dict) else str(p).split(":")[1] for p in s["ports"]]
        for name, s in compose_config["services"].items()
        if s.get("ports")
    }
    assert published["backend"] == ["3000"] or published["backend"] == [3000]
    assert str(published["frontend"][0]) == "5173"
    assert str(published["dagster-webserver"][0]) not in ("3000", "5173")


def test_webserver_is_the_gate_with_a_local_admin(compose_config):
    """The UI behind the sage_ops gate, as in production, with a local identity; the command is
    parsed by sage-ops' own CLI, so a flag it does not know fails here, not in the container."""
    web = compose_config["services"]["dagster-webserver"]
    args = _parser().parse_args(web["command"][1:])
    assert web["command"][0] == "sage-ops" and args.func.resolve() is gate
    assert (args.local_user, args.local_admin, args.local_any_interface) == (
        "dev@localhost",
        True,
        True,
    )
    assert args.host == "0.0.0.0" and args.workspace == "/opt/dagster/workspace.yaml"
    [port] = web["ports"]  # docker-compose 1.29 prints "127.0.0.1:3300:3300/tcp"
    assert str(port).split("/")[0].rsplit(":", 1)[1] == str(args.port)
    assert "/_gate/health" in " ".join(web["healthcheck"]["test"])


def test_backend_runs_the_dev_target(compose_config):
    """Built before `pnpm prune --prod`, so `pnpm start:dev` still has the Nest CLI."""
    assert compose_config["services"]["backend"]["build"]["target"] == "dev"
    dockerfile = (INFRA / "sample-backend" / "Dockerfile.node").read_text()
    assert dockerfile.index("FROM deps AS dev") < dockerfile.index("&& pnpm prune --prod")


def test_sage_ops_dockerfile_is_non_root_with_healthcheck():
    dockerfile = (INFRA / "docker" / "sage-ops.Dockerfile").read_text()
    # Multi-stage: build tools, the package manager and what the slimming removed stay out.
    stages = [line.split(" ", 1)[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert stages == ["${BASE_IMAGE} AS build", "${BASE_IMAGE} AS system", "scratch"]
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile
    assert 'CMD ["dagster", "api", "grpc"' in dockerfile
    # One PostgreSQL 16: the pgserver wheel's binaries, linked where sage_ops looks for them.
    assert "postgresql-client" not in dockerfile and "pginstall/bin/*" in dockerfile
