"""CPU seconds a variant costs, by process role, sampled from /proc while it runs.

On a shared machine wall time measures the neighbours as much as the pipeline; the CPU a variant
consumes (user + system, every process doing its work) does not. Counted: the driver's own
descendants (bash, pg_dump, gzip, the sage_ops child and its psql/pg_restore, the Dagster CLI),
the server backends connected to the benchmark database (the dump's COPY runs there) or to a
TCP port a descendant holds (a restore into a scratch database on the same server), and the
embedded scratch server started under this run's work directory with its backends and workers
(pg_ctl daemonizes it, so it is found by its data directory on its command line). Processes are
sampled every SAMPLE_S: one that exits between two samples loses at most its last interval.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SAMPLE_S = 0.1
_TICK = os.sysconf("SC_CLK_TCK")
SOURCE, SCRATCH, SAGE, RESTORE_TOOL, DUMP, OTHER = (
    "source backend",
    "scratch server",
    "python (sage_ops/dagster)",
    "psql/pg_restore",
    "pg_dump",
    "other tools",
)


@dataclass(frozen=True)
class _Proc:
    ppid: int
    comm: str
    cmdline: str
    cpu_s: float


@dataclass
class CpuSample:
    """The variant's CPU seconds by role (see the module docstring)."""

    by_role: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return sum(self.by_role.values())


class CpuSampler:
    """Samples, in a thread, the processes doing a variant's work: `database` is the benchmark
    database's name, `workdir` the directory under which its scratch servers live."""

    def __init__(self, database: str, workdir: Path) -> None:
        self._backend_mark = f" {database} "
        self._workdir = str(workdir)
        self._root = os.getpid()
        self._seen: dict[int, tuple[str, float]] = {}  # pid -> (role, CPU since the start)
        self._baseline: dict[int, float] = {}
        self._roles: dict[tuple[int, str], str] = {}  # (pid, comm): a process may exec
        self._parents: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self.sample = CpuSample()

    def __enter__(self) -> CpuSampler:
        self._baseline = {pid: p.cpu_s for pid, p in _processes().items()}
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._take()
        totals: dict[str, float] = {}
        for role, cpu in self._seen.values():
            totals[role] = totals.get(role, 0.0) + cpu
        ranked = sorted(totals.items(), key=lambda item: -item[1])
        self.sample.by_role = {role: round(s, 2) for role, s in ranked}

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._take()

    def _take(self) -> None:
        procs = _processes()
        ports = _client_ports(pid for (pid, _), role in self._roles.items() if role != SOURCE)
        self._parents = {pid: role for (pid, comm), role in self._roles.items()}
        for pid in sorted(procs, key=lambda p: _start_order(procs, p)):
            role = self._role(pid, procs[pid], ports)
            if role is not None:
                self._roles[(pid, procs[pid].comm)] = self._parents[pid] = role
                self._seen[pid] = (role, procs[pid].cpu_s - self._baseline.get(pid, 0.0))

    def _role(self, pid: int, proc: _Proc, ports: set[str]) -> str | None:
        if (pid, proc.comm) in self._roles:
            return self._roles[(pid, proc.comm)]
        parent = self._parents.get(proc.ppid)
        if parent == SCRATCH or (self._workdir in proc.cmdline and proc.comm == "postgres"):
            return SCRATCH
        if proc.cmdline.startswith("postgres:"):
            if self._backend_mark in proc.cmdline:
                return SOURCE
            if _peer_port(proc.cmdline) in ports:
                return SCRATCH
        if parent is None and proc.ppid != self._root:
            return None
        if proc.comm.startswith(("python", "dagster")):
            return SAGE
        return {"psql": RESTORE_TOOL, "pg_restore": RESTORE_TOOL, "pg_dump": DUMP}.get(
            proc.comm, OTHER
        )


def _start_order(procs: dict[int, _Proc], pid: int) -> int:
    """Parents before children (depth in the sampled tree), so a child finds its parent's role."""
    depth, seen = 0, set()
    while pid in procs and pid not in seen:
        seen.add(pid)
        pid = procs[pid].ppid
        depth += 1
    return depth


def _peer_port(cmdline: str) -> str:
    """The client port in a backend's title: `postgres: ... user db 127.0.0.1(54321) COPY`."""
    match = re.search(r"\((\d+)\)", cmdline)
    return match.group(1) if match else ""


def _client_ports(pids: Iterable[int]) -> set[str]:
    """Local TCP ports of the sockets these processes hold (the client ends of connections)."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if (link := os.readlink(fd.path)).startswith("socket:["):
                        inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    ports.add(str(int(cols[1].rsplit(":", 1)[1], 16)))
    return ports


def _processes() -> dict[int, _Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read(entry)) is not None:
            procs[int(entry)] = proc
    return procs


def _read(pid: str) -> _Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    text = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return _Proc(int(fields[1]), comm, text, cpu)
