"""`sage-ops gate --with-daemon`: the daemon dies with the gate however the gate ends, and a gate
started while another daemon runs on its instance stops at once, naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER", "SAGE_OPS"))},
        "DAGSTER_HOME": str(home),
        "SAGE_OPS_STATE_DIR": str(tmp_path / "state"),
    }


def _gate(env: dict[str, str]) -> subprocess.Popen[str]:
    port = str(pg.free_port())
    return subprocess.Popen(
        [
            str(BIN / "sage-ops"),
            "gate",
            "--with-daemon",
            "--local-user",
            "dev@localhost",
            "-p",
            port,
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _children_named(parent: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and any(a.endswith(name.encode()) for a in argv[:2]):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def gate_with_daemon(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    gate = _gate(env)
    daemons: list[int] = []

    def started() -> bool:
        daemons[:] = _children_named(gate.pid, "dagster-daemon")
        return bool(daemons) or gate.poll() is not None

    _wait(started, 120, "the gate never started its daemon")
    assert daemons, gate.stdout.read() if gate.stdout else ""
    yield gate, daemons[0]
    for pid in [gate.pid, *daemons]:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    gate.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_daemon_dies_with_the_gate(gate_with_daemon, sig):
    gate, daemon = gate_with_daemon
    assert _alive(daemon)
    gate.send_signal(sig)
    gate.wait(timeout=60)
    _wait(lambda: not _alive(daemon), 60, f"the daemon outlived the gate's {sig.name}")


def test_a_second_daemon_on_the_instance_is_refused_by_name(gate_with_daemon, env):
    _, daemon = gate_with_daemon
    second = _gate(env)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 1, out
    assert f"a dagster-daemon is already running on this instance (pid {daemon})" in out
    assert f"kill {daemon}" in out
    assert _alive(daemon)
