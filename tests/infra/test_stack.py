"""docker-compose up for real: infra/docker-compose.yml with the images of build-images.sh.

`infra/local/stack.sh up --no-build` starts the stack (project `sage`, ports from
.state/local-stack), waits until every service is healthy and loads the sample data. The images
are built once per session (`stack_images`) and the sage_ops image is pinned to the session's own
tag, so a restart mid-test never rebuilds from a tree that is being edited. The tests then use the
stack as a developer would: the backend's hot reload, the frontend, a nightly_backup launched
through the UI's GraphQL API and the operator's browser journey through the gate, each run in its
own container, the daemon's sensors, and a restart that keeps Dagster's history and the backups.
Every wait has a timeout, and a failure shows what the stack was doing (the run's events, the
services' logs).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.conftest import REPO, docker
from tests.ui.journey import backup_is_in_store, open_page, operator_journey

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
DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon", "dagster-code")
RUN_TIMEOUT_S = 300  # queued -> a container of its own started -> dump, full verify, retention
STACK_TIMEOUT_S = 900  # stack.sh up waits up to 300 s for health itself
LOCAL_USER = "dev@localhost"  # the gate's local identity in docker-compose.yml
STORE = "file:///var/lib/sage-ops/backups"  # SAGE_OPS_BACKUP_URL's default, in sage-ops-state
FINAL = ("SUCCESS", "FAILURE", "CANCELED")
LAUNCH = """mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
RUN = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }"
RUN_EVENTS = """query($id: ID!) {
  logsForRun(runId: $id) {
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message stepKey }
        ... on ExecutionStepFailureEvent { error { message } }
        ... on RunFailureEvent { error { message } }
        ... on EngineEvent { error { message } }
      }
    }
  }
}"""
SENSOR_TICKS = """query($name: String!) {
  sensorOrError(sensorSelector: {repositoryLocationName: "sage_ops",
      repositoryName: "__repository__", sensorName: $name}) {
    ... on Sensor { sensorState { status ticks(limit: 5) { status } } }
  }
}"""


@dataclass(frozen=True)
class Stack:
    """The running stack: `stack.sh` with the session's image, its ports, the UI's API."""

    image: str
    ports: dict[str, str]

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ports['DAGSTER_UI_PORT']}"

    def sh(self, *args: str) -> str:
        return stack_sh(self.image, *args)

    def graphql(self, query: str, **variables: object) -> dict:
        request = urllib.request.Request(
            f"{self.ui}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        assert not body.get("errors"), body
        return body["data"]

    def wait_for_run(self, run_id: str, timeout_s: float = RUN_TIMEOUT_S) -> dict:
        """The run once it has finished; its events and the services' logs if it failed or has
        not finished in time."""
        deadline = time.monotonic() + timeout_s
        while (run := self.graphql(RUN, id=run_id)["runOrError"])["status"] not in FINAL:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"run {run_id} still {run['status']} after {timeout_s} s\n"
                    + self.run_diagnostics(run_id),
                    pytrace=False,
                )
            time.sleep(2)
        if run["status"] != "SUCCESS":
            pytest.fail(
                f"run {run_id} ended {run['status']}\n" + self.run_diagnostics(run_id),
                pytrace=False,
            )
        return run

    def run_diagnostics(self, run_id: str) -> str:
        """The run's last events (its container is removed when it exits) and Dagster's logs."""
        events = self.graphql(RUN_EVENTS, id=run_id)["logsForRun"].get("events", [])
        lines = [
            f"{e['__typename']} {e.get('stepKey') or ''}: {e.get('message', '')}"
            + (f"\n    {e['error']['message']}" if e.get("error") else "")
            for e in events[-30:]
        ]
        return "--- run events\n" + "\n".join(lines) + "\n" + stack_logs(*DAGSTER_SERVICES)

    def tags(self, run: dict) -> dict[str, str]:
        return {t["key"]: t["value"] for t in run["tags"]}

    def copy_store(self, destination: Path) -> Path:
        """The backup store (in the sage-ops-state volume) copied out of the webserver."""
        [container] = self.sh("compose", "ps", "-q", "dagster-webserver").split()
        docker("cp", f"{container}:{STORE.removeprefix('file://')}", str(destination))
        return destination


def stack_sh(image: str, *args: str) -> str:
    """`infra/local/stack.sh ARGS` on the session's image; a failure shows its output (stack.sh
    names the services that are not healthy, with their logs) and every service's log."""
    result = subprocess.run(
        ["bash", "infra/local/stack.sh", *args],
        cwd=REPO,
        env={**os.environ, "SAGE_OPS_IMAGE": image},
        capture_output=True,
        text=True,
        timeout=STACK_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"stack.sh {' '.join(args)} exited {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-6000:]}\n{stack_logs()[-8000:]}",
            pytrace=False,
        )
    return result.stdout


def stack_logs(*services: str) -> str:
    """The last 100 lines of each service's log (all services by default)."""
    result = subprocess.run(
        ["bash", "infra/local/stack.sh", "logs", *services],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def running(stack_images: str) -> Iterator[Stack]:
    started = time.monotonic()
    stack_sh(stack_images, "up", "--no-build")
    print(f"stack up in {time.monotonic() - started:.0f} s")
    env_file = Path(stack_sh(stack_images, "env").strip())
    ports = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    yield Stack(stack_images, ports)
    stack_sh(stack_images, "down")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_every_service_is_healthy(running):
    ids = running.sh("compose", "ps", "-q").split()
    fmt = '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Health.Status}}'
    health = dict(line.split() for line in docker("inspect", "--format", fmt, *ids).splitlines())
    assert health == dict.fromkeys(SERVICES, "healthy")


def test_the_ui_is_behind_the_gate_as_the_local_admin(running):
    assert json.loads(get(f"{running.ui}/_gate/health")) == {"status": "ok"}
    logs = running.sh("compose", "logs", "--no-color", "dagster-webserver")
    assert f"Dagster UI on http://0.0.0.0:3300 as {LOCAL_USER}" in logs, logs


def test_backend_serves_an_edited_source_without_a_rebuild(running):
    url = f"http://127.0.0.1:{running.ports['BACKEND_PORT']}/"
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


def test_frontend_answers_on_5173_with_the_api_address(running):
    page = get(f"http://127.0.0.1:{running.ports['FRONTEND_PORT']}/")
    assert f"http://localhost:{running.ports['BACKEND_PORT']}" in page


def test_operator_journey_in_the_browser_through_the_gate(running, tmp_path, capsys):
    """The journey of tests/ui on the containerised UI: the run has a container of its own, the
    backup lands in the sage-ops-state volume, and the gate tags who launched it."""
    started = time.monotonic()
    try:
        with open_page(running.ui) as page:
            journey = operator_journey(
                page, tmp_path / "screenshots", run_timeout_ms=RUN_TIMEOUT_S * 1000
            )
    except BaseException:
        print(stack_logs(*DAGSTER_SERVICES))
        raise
    run = running.wait_for_run(journey.run_id)
    tags = running.tags(run)
    assert tags["sage_ops/launched_by"] == LOCAL_USER
    assert tags["dagster/image"] == running.image and tags["docker/container_id"]
    store = running.copy_store(tmp_path / "store")
    backup_is_in_store(store, STORE, journey.metadata, journey.run_id)
    with capsys.disabled():
        print(f"\nUI journey on the stack took {time.monotonic() - started:.0f} s; screenshots:")
        for path in journey.screenshots:
            print(f"  {path}")


def test_nightly_backup_runs_in_its_own_container_and_survives_a_restart(running):
    params = {
        "selector": {
            "repositoryLocationName": "sage_ops",
            "repositoryName": "__repository__",
            "jobName": "nightly_backup",
        },
        "runConfigData": {},
        "executionMetadata": {"tags": []},
    }
    launched = running.graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    tags = running.tags(running.wait_for_run(run_id))
    assert tags["dagster/image"] == running.image and tags["docker/container_id"]
    listing = running.sh(
        "compose", "exec", "-T", "dagster-webserver", "sage-ops", "backups", "list"
    )
    assert "passed" in listing, listing  # verified, in the sage-ops-state volume

    running.sh("down")
    running.sh("up", "--no-build")
    assert running.graphql(RUN, id=run_id)["runOrError"]["status"] == "SUCCESS"
    again = running.sh("compose", "exec", "-T", "dagster-webserver", "sage-ops", "backups", "list")
    assert again == listing


def test_daemon_ticks_the_sensors_and_runs_the_scheduler(running):
    """Sensors tick every 30 s; the schedule's own tick comes at 03:00 UTC, so what is checked
    for it is that the scheduler daemon in the container is alive and the schedule running."""
    health = running.graphql(
        "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
    )
    statuses = {
        d["daemonType"]: d["healthy"]
        for d in health["instance"]["daemonHealth"]["allDaemonStatuses"]
    }
    assert statuses["SCHEDULER"] and statuses["SENSOR"] and statuses["QUEUED_RUN_COORDINATOR"]
    schedule = running.graphql(
        """{ scheduleOrError(scheduleSelector: {repositoryLocationName: "sage_ops",
            repositoryName: "__repository__", scheduleName: "nightly_backup_schedule"}) {
            ... on Schedule { scheduleState { status } } } }""",
    )
    assert schedule["scheduleOrError"]["scheduleState"]["status"] == "RUNNING"
    deadline = time.monotonic() + 90
    for sensor in ("alarm_sensor", "git_push_sensor"):
        while not (
            state := running.graphql(SENSOR_TICKS, name=sensor)["sensorOrError"]["sensorState"]
        )["ticks"]:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{sensor} has not ticked in 90 s\n{stack_logs('dagster-daemon')}",
                    pytrace=False,
                )
            time.sleep(3)
        assert state["status"] == "RUNNING"
        assert all(t["status"] != "FAILURE" for t in state["ticks"]), (sensor, state["ticks"])
