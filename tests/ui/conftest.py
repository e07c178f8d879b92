"""A throw-away Dagster instance (webserver + daemon) serving sage_ops, and a headless Chromium.

The UI is served the way operators get it: dagster-webserver's app inside the sage_ops gate
(`sage-ops gate`), here with a local identity, so every request takes the gate's code path and the
runs the journey launches carry `sage_ops/launched_by`.

The instance is the repo's own dagster.yaml and workspace.yaml copied into a temporary directory
that is both DAGSTER_HOME and the processes' working directory, so its relative `.state/...`
storage lands there. The database is a fresh copy of the sample data (`source_db`), backups go
to a temporary file:// store, and the test's environment never leaks into the processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page

from sage_ops.postgres import PgTarget
from tests import pg
from tests.ui.journey import open_page

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv running pytest holds dagster-webserver/-daemon
OPERATOR = "operator@localhost"  # the gate's local identity: an ordinary user, not an admin
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30

# Ready = the code location loaded without error and every required daemon sends heartbeats.
READY_QUERY = """{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } }
}"""


@dataclass(frozen=True)
class DagsterUI:
    url: str
    workdir: Path
    backup_dir: Path
    logs: dict[str, Path]

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {name} ({path})\n{_tail(path, lines)}" for name, path in self.logs.items()
        )


@pytest.fixture
def dagster_ui(source_db: PgTarget, tmp_path: Path) -> Iterator[DagsterUI]:
    workdir = tmp_path / "dagster"
    workdir.mkdir()
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(REPO / name, workdir / name)
    backup_dir = tmp_path / "backups"
    port = pg.free_port()
    ui = DagsterUI(
        url=f"http://127.0.0.1:{port}",
        workdir=workdir,
        backup_dir=backup_dir,
        logs={
            "webserver": tmp_path / "webserver.log",
            "daemon": tmp_path / "daemon.log",
            "audit": tmp_path / "audit.jsonl",
        },
    )
    env = _child_env(source_db, workdir, backup_dir, tmp_path / "state")
    env["SAGE_OPS_GATE_AUDIT_LOG"] = str(ui.logs["audit"])
    commands = {
        "webserver": [BIN / "sage-ops", "gate", "-p", str(port), "--local-user", OPERATOR],
        "daemon": [BIN / "dagster-daemon", "run"],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with contextlib.ExitStack() as started:  # stops every process started, even if one fails
        for name, command in commands.items():
            with ui.logs[name].open("wb") as log:
                procs[name] = subprocess.Popen(
                    [*map(str, command), "-w", "workspace.yaml"],
                    cwd=workdir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopped with its children
                )
            started.callback(_stop, procs[name])
            # One at a time: both would create the fresh SQLite storage at once otherwise
            # ("table alembic_version already exists"); the webserver has created it once it
            # answers.
            _wait_until_ready(ui, procs, daemon=name == "daemon")
        yield ui


@pytest.fixture
def page(dagster_ui: DagsterUI) -> Iterator[Page]:
    with open_page(dagster_ui.url) as page:
        yield page


def _child_env(db: PgTarget, workdir: Path, backup_dir: Path, state_dir: Path) -> dict[str, str]:
    """The test process's environment without any sage_ops/Dagster settings, plus the test's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAGE_OPS_", "DAGSTER_"))
        and k not in ("DATABASE_URL", "ANTHROPIC_API_KEY")
    }
    env.update(
        DAGSTER_HOME=str(workdir),
        DATABASE_URL=db.secret_url(),
        SAGE_OPS_BACKUP_URL=f"file://{backup_dir}",
        SAGE_OPS_STATE_DIR=str(state_dir),
        SAGE_OPS_VERIFY_LEVEL="full",
        PYTHONUNBUFFERED="1",
    )
    return env  # SAGE_OPS_REPO and SAGE_OPS_ALARM_SOURCE stay unset on purpose


def _wait_until_ready(
    ui: DagsterUI, procs: dict[str, subprocess.Popen[bytes]], daemon: bool
) -> None:
    """Poll until the webserver answers with the code location loaded (and, with `daemon`,
    until every required daemon sends heartbeats); fail fast when a process exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting_for = "the webserver to answer /server_info"
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                pytest.fail(f"dagster {name} exited with {proc.returncode}\n{ui.log_tails()}")
        try:
            _get_json(f"{ui.url}/server_info")
            waiting_for = _not_ready(_graphql(ui.url, READY_QUERY), daemon)
        except (OSError, ValueError) as exc:  # not listening yet, or a half-started server
            waiting_for = f"the webserver to answer ({exc})"
        if not waiting_for:
            return
        if waiting_for.startswith("code location failed"):
            pytest.fail(f"{waiting_for}\n{ui.log_tails()}")
        time.sleep(0.5)
    pytest.fail(f"Dagster not ready after {START_TIMEOUT_S} s: {waiting_for}\n{ui.log_tails()}")


def _not_ready(data: dict, daemon: bool) -> str:
    """What is still missing, or "" when the location is loaded and the daemons are healthy."""
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        return f"the workspace ({workspace['__typename']})"
    for entry in workspace["locationEntries"]:
        loaded = entry["locationOrLoadError"]
        if loaded and loaded["__typename"] == "PythonError":
            return f"code location failed to load: {entry['name']}: {loaded['message']}"
        if entry["loadStatus"] != "LOADED" or not loaded:
            return f"code location {entry['name']} to load"
    if not workspace["locationEntries"]:
        return "a code location"
    if not daemon:
        return ""
    daemons = data["instance"]["daemonHealth"]["allDaemonStatuses"]
    unhealthy = [d["daemonType"] for d in daemons if d["required"] and not d["healthy"]]
    if unhealthy or not daemons:
        return f"daemon heartbeats ({', '.join(unhealthy) or 'none yet'})"
    return ""


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise ValueError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group this fixture created (the process and the children it spawned:
    code servers, run workers), SIGKILL whatever is left after a grace period."""
    group = proc.pid  # start_new_session: the process leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _live_members(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _live_members(group):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait()


def _live_members(group: int) -> list[int]:
    """Processes of the group that still run (zombies left to a non-reaping init do not count)."""
    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        # A process may vanish while it is read: ENOENT or ESRCH (ProcessLookupError).
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == group and state != "Z":
                members.append(int(pid))
    return members


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
