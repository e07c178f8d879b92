"""docker-compose up for real: infra/docker-compose.yml with the images of build-images.sh.

`infra/local/stack.sh up` starts the stack (project `sage`, ports from .state/local-stack) and
waits until every service is healthy. The tests then use it as a developer would: the backend's
hot reload, the frontend, a nightly_backup launched through the UI's GraphQL API that runs in its
own container, the daemon's sensors, and a restart that keeps Dagster's history and the backups.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.infra.conftest import REPO

pytestmark = pytest.mark.stack
SERVICES = {
    "postgres",
    "redis",
    "backend",
    "frontend",
    "registry",
    "dagster-code",
    "dagster-webserver",
    "dagster-daemon",
}
RUN_TIMEOUT_S = 300
LAUNCH = """mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
RUN = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }"
SENSOR_TICKS = """query($name: String!) {
  sensorOrError(sensorSelector: {repositoryLocationName: "sage_ops",
      repositoryName: "__repository__", sensorName: $name}) {
    ... on Sensor { sensorState { status ticks(limit: 5) { status } } }
  }
}"""


def stack(*args: str, timeout: float = 900) -> str:
    result = subprocess.run(
        ["bash", "infra/local/stack.sh", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        logs = subprocess.run(
            ["bash", "infra/local/stack.sh", "logs"], cwd=REPO, capture_output=True, text=True
        )
        pytest.fail(
            f"stack.sh {' '.join(args)} exited {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-3000:]}\n{logs.stdout[-6000:]}",
            pytrace=False,
        )
    return result.stdout


@pytest.fixture(scope="module")
def ports(stack_images) -> Iterator[dict[str, str]]:
    started = time.monotonic()
    stack("up")
    print(f"stack up (images cached) in {time.monotonic() - started:.0f} s")
    env_file = Path(stack("env").strip())
    yield dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    stack("down")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def graphql(ports: dict[str, str], query: str, **variables: object) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{ports['DAGSTER_UI_PORT']}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert not body.get("errors"), body
    return body["data"]


def in_webserver(*command: str) -> str:
    return stack("compose", "exec", "-T", "dagster-webserver", *command)


def test_every_service_is_healthy(ports):
    ids = stack("compose", "ps", "-q").split()
    fmt = '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Health.Status}}'
    out = subprocess.run(
        ["docker", "inspect", "--format", fmt, *ids], capture_output=True, text=True, check=True
    ).stdout
    health = dict(line.split() for line in out.splitlines())
    assert health == dict.fromkeys(SERVICES, "healthy")


def test_backend_serves_an_edited_source_without_a_rebuild(ports):
    url = f"http://127.0.0.1:{ports['BACKEND_PORT']}/"
    assert "hello from the sample backend" in get(url)
    source = REPO / "infra" / "sample-backend" / "src" / "greeting.js"
    original = source.read_text()
    try:
        source.write_text(original.replace("hello from", "hot-reloaded"))
        deadline = time.monotonic() + 30
        while "hot-reloaded" not in _get_or_empty(url) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "hot-reloaded the sample backend" in get(url)
    finally:
        source.write_text(original)


def _get_or_empty(url: str) -> str:
    try:
        return get(url)
    except OSError:  # node --watch is restarting
        return ""


def test_frontend_answers_on_5173_with_the_api_address(ports):
    page = get(f"http://127.0.0.1:{ports['FRONTEND_PORT']}/")
    assert f"http://localhost:{ports['BACKEND_PORT']}" in page


def test_nightly_backup_runs_in_its_own_container_and_survives_a_restart(ports):
    partition = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    params = {
        "selector": {
            "repositoryLocationName": "sage_ops",
            "repositoryName": "__repository__",
            "jobName": "nightly_backup",
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = graphql(ports, LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (run := graphql(ports, RUN, id=run_id)["runOrError"])["status"] not in (
        "SUCCESS",
        "FAILURE",
        "CANCELED",
    ):
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
        time.sleep(2)
    assert run["status"] == "SUCCESS", stack("logs", "dagster-daemon")
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/image"] == "sage-ops:local" and tags["docker/container_id"]
    listing = in_webserver("sage-ops", "backups", "list")
    assert "passed" in listing, listing  # verified, in the sage-ops-state volume

    stack("down")
    stack("up")
    assert graphql(ports, RUN, id=run_id)["runOrError"]["status"] == "SUCCESS"
    assert in_webserver("sage-ops", "backups", "list") == listing


def test_daemon_ticks_the_sensors_and_runs_the_scheduler(ports):
    """Sensors tick every 30 s; the schedule's own tick comes at 03:00 UTC, so what is checked
    for it is that the scheduler daemon in the container is alive and the schedule running."""
    health = graphql(
        ports, "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
    )
    statuses = {
        d["daemonType"]: d["healthy"]
        for d in health["instance"]["daemonHealth"]["allDaemonStatuses"]
    }
    assert statuses["SCHEDULER"] and statuses["SENSOR"] and statuses["QUEUED_RUN_COORDINATOR"]
    schedule = graphql(
        ports,
        """{ scheduleOrError(scheduleSelector: {repositoryLocationName: "sage_ops",
            repositoryName: "__repository__", scheduleName: "nightly_backup_schedule"}) {
            ... on Schedule { scheduleState { status } } } }""",
    )
    assert schedule["scheduleOrError"]["scheduleState"]["status"] == "RUNNING"
    deadline = time.monotonic() + 90
    for sensor in ("alarm_sensor", "git_push_sensor"):
        while not (
            state := graphql(ports, SENSOR_TICKS, name=sensor)["sensorOrError"]["sensorState"]
        )["ticks"]:
            assert time.monotonic() < deadline, f"{sensor} has not ticked"
            time.sleep(3)
        assert state["status"] == "RUNNING"
        assert all(t["status"] != "FAILURE" for t in state["ticks"]), (sensor, state["ticks"])
