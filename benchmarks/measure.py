"""Run one command and measure it: wall time, exit status and peak RSS of its process tree.

The tree's peak RSS comes from GNU time (`%M`, the largest ru_maxrss among the command and
the descendants it waited for). wait4() in this process would over-report it: exec records
the spawning process's own high-water mark in the child's maxrss, so every child would
look at least as large as this Python driver.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

KIB = 1024


@dataclass(frozen=True)
class Measured:
    wall_s: float
    returncode: int
    tree_peak_rss_bytes: int | None  # None without GNU time
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure(self) -> str:
        lines = self.stderr.strip().splitlines()
        return f"exit {self.returncode}: {lines[-1] if lines else 'no error output'}"


def run_measured(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Measured:
    """Run argv to completion after flushing dirty pages, so runs do not pay for each other."""
    os.sync()
    gnu_time = shutil.which("time")
    with tempfile.TemporaryDirectory(prefix="sage_bench_measure_") as tmp:
        rss_file = Path(tmp) / "rss"
        wrapped = [gnu_time, "-f", "%M", "-o", str(rss_file), *argv] if gnu_time else list(argv)
        with open(Path(tmp) / "out", "w+b") as out, open(Path(tmp) / "err", "w+b") as err:
            start = time.perf_counter()
            code = subprocess.run(wrapped, stdout=out, stderr=err, env=env, cwd=cwd).returncode
            wall = time.perf_counter() - start
            return Measured(wall, code, _peak_rss(rss_file), _text(out), _text(err))


def shell(script: str) -> list[str]:
    """argv running `script` in bash with pipefail, so a failing pg_dump fails the pipeline."""
    return ["bash", "-o", "pipefail", "-c", script]


def _peak_rss(rss_file: Path) -> int | None:
    """GNU time's %M (KiB); its last line, after any 'Command exited with...' note."""
    if not rss_file.exists():
        return None
    lines = rss_file.read_text().split()
    return int(lines[-1]) * KIB if lines and lines[-1].isdigit() else None


def _text(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")
