"""The dagster-daemon `sage-ops gate --with-daemon` runs beside the UI: one per instance, and it
dies with the gate however the gate ends.

Ctrl-C, SIGTERM and SIGHUP stop the gate cleanly, which stops the daemon's process group; if the
gate is killed outright (SIGKILL, OOM), the kernel sends the daemon SIGTERM (PR_SET_PDEATHSIG).
A second daemon on one instance would fight the first for its sensors and schedules, so a start
that sees another daemon's fresh heartbeats in the instance refuses, naming it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.workspace.load_target import (
    GrpcServerTarget,
    WorkspaceFileTarget,
    WorkspaceLoadTarget,
)

from sage_ops.errors import ConfigError

# Dagster's daemons write a heartbeat every 30 s: one fresher than two intervals is a live daemon.
HEARTBEAT_FRESH_S = 70.0
_PR_SET_PDEATHSIG = 1


def refuse_second_daemon(instance: DagsterInstance) -> None:
    """Raise, naming the other daemon and how to stop it, if one is alive on `instance`."""
    home = os.environ.get("DAGSTER_HOME", "")
    local = _local_daemons(home) if home else []
    if local:
        pids = " ".join(str(p) for p in local)
        raise ConfigError(
            f"a dagster-daemon is already running on this instance (pid {pids}); a second one "
            "would keep the first's sensors and schedules from ticking: stop it with "
            f"`kill {pids}`, or start the gate without --with-daemon"
        )
    beats = instance.get_daemon_heartbeats().values()
    fresh = [b for b in beats if time.time() - b.timestamp < HEARTBEAT_FRESH_S]
    if fresh and _shared_storage(instance):  # a local SQLite instance's daemons are all local
        newest = max(fresh, key=lambda b: b.timestamp)
        age = time.time() - newest.timestamp
        raise ConfigError(
            f"another dagster-daemon (id {newest.daemon_id}) sent a heartbeat to this instance's "
            f"storage {age:.0f} s ago from another host or container: stop that daemon, or "
            "start the gate without --with-daemon (if it is stopped already, retry in "
            f"{HEARTBEAT_FRESH_S - age:.0f} s)"
        )


@contextlib.contextmanager
def daemon_beside(
    target: WorkspaceLoadTarget, instance: DagsterInstance
) -> Iterator[subprocess.Popen[bytes]]:
    """dagster-daemon in a session of its own, stopped (the whole group) when the block ends,
    however this process ends; refused if another daemon runs on `instance`."""
    refuse_second_daemon(instance)
    exit_on_hangup_and_term()
    command = [str(Path(sys.executable).parent / "dagster-daemon"), "run"]
    if isinstance(target, WorkspaceFileTarget):
        command += ["-w", *target.paths]
    elif isinstance(target, GrpcServerTarget):
        command += ["--grpc-host", target.host, "--grpc-port", str(target.port)]
    parent = os.getpid()
    proc = subprocess.Popen(command, start_new_session=True, preexec_fn=lambda: _die_with(parent))
    try:
        yield proc
    finally:
        _stop_group(proc)


def exit_on_hangup_and_term() -> None:
    """SIGTERM and SIGHUP end the gate as Ctrl-C does, so its cleanup (the daemon's) runs.
    uvicorn handles SIGTERM itself while serving and raises it again once it has stopped."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)


def _die_with(parent: int) -> None:
    """In the child before exec: SIGTERM when the gate dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the gate died before the prctl took effect
        os._exit(1)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _local_daemons(dagster_home: str) -> list[int]:
    """Pids of `dagster-daemon run` processes on this host with the same DAGSTER_HOME."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not any(a.endswith(b"dagster-daemon") for a in argv[:2]) or b"run" not in argv:
                continue
            env = dict(
                item.split(b"=", 1)
                for item in (entry / "environ").read_bytes().split(b"\0")
                if b"=" in item
            )
        except OSError:  # gone, or another user's
            continue
        if env.get(b"DAGSTER_HOME", b"").decode(errors="replace") == dagster_home:
            found.append(int(entry.name))
    return sorted(found)


def _shared_storage(instance: DagsterInstance) -> bool:
    """Whether daemons on other hosts can share this instance (not a local SQLite file)."""
    return "sqlite" not in type(instance.run_storage).__name__.lower()
