"""Benchmark `sage-ops triage` end to end on a real RDS log, against pgbadger and main's triage.

    .venv/bin/python -m benchmarks.triage [--repeat 3] [--copies 4] [--base main]

The log is pgbadger's own RDS test fixture (tests/incidents/real_logs/pgbadger_rds.log.bz2,
114,604 lines of a pgbench run in RDS's `%t:%r:%u@%d:[%p]:` prefix), decompressed to a temporary
directory. In the same invocation, every row reads that same file:

- `sage-ops triage analyze` of this checkout (the whole CLI process: start-up, reading, grouping,
  classifying, the report);
- the same command from `--base`'s code (`git archive <base> sage_ops`, run with this venv's
  Python and PYTHONPATH pointing at it): the previous classifier;
- pgbadger (`-f rds -j 1`), the usual tool for reading PostgreSQL logs (a fuller report: it
  parses every statement, so it is the reference for reading speed, not for the same output);
- this checkout's analyze on --copies concatenated copies of the log: its peak RSS must stay
  that of one copy (flat memory);
- start-up: `sage-ops --help`, `triage classify` and `triage analyze` of a one-line log, for this
  checkout and for the base.

Each row is the best of --repeat runs: wall time, CPU time (user + system, which a busy machine
inflates less than wall time) and the process tree's peak RSS (GNU time). Lines/s are the log's
lines over the wall time. Run it with nothing else busy: the rows compete for the same CPUs.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import run_measured

ROOT = Path(__file__).resolve().parent.parent
RDS_LOG = ROOT / "tests" / "incidents" / "real_logs" / "pgbadger_rds.log.bz2"
CLI = "import sys; from sage_ops.cli import main; sys.exit(main())"
ONE_LINE = "2026-12-01 14:47:00 UTC:10.0.1.17(50312):app@sage:[4243]:ERROR:  deadlock detected\n"


@dataclass(frozen=True)
class Row:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float | None
    lines: int

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.wall_s if self.lines else 0.0


def best(
    name: str, argv: Sequence[str], repeat: int, lines: int = 0, env: Mapping[str, str] = {}
) -> Row:
    """The fastest of `repeat` runs (wall), with its CPU time and peak RSS."""
    runs = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        # From a neutral directory: `python -c` puts the working directory first on sys.path,
        # which would shadow the base's PYTHONPATH with this checkout.
        measured = run_measured(argv, env={**os.environ, **env}, cwd=Path(tempfile.gettempdir()))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if not measured.ok:
            raise SystemExit(f"{name}: {measured.failure()}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rss = measured.tree_peak_rss_bytes
        runs.append(Row(name, measured.wall_s, cpu, rss / 2**20 if rss else None, lines))
    return min(runs, key=lambda r: r.wall_s)


def base_checkout(base: str, into: Path) -> Path:
    """The base's sage_ops package, extracted without touching any worktree."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", base, "sage_ops"], check=True, capture_output=True
    ).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--base", default="main", help="git revision of the previous triage")
    args = parser.parse_args(argv)
    pgbadger = shutil.which("pgbadger")
    if not pgbadger:
        raise SystemExit("pgbadger is not installed (apt-get install pgbadger)")
    with tempfile.TemporaryDirectory(prefix="sage_bench_triage_") as tmp:
        work = Path(tmp)
        log, many, one = work / "rds.log", work / "rds_copies.log", work / "one.log"
        log.write_bytes(bz2.decompress(RDS_LOG.read_bytes()))
        many.write_bytes(log.read_bytes() * args.copies)
        one.write_text(ONE_LINE)
        lines = log.read_bytes().count(b"\n")
        base_dir = base_checkout(args.base, work / "base")
        ours, theirs = [sys.executable, "-c", CLI], {"PYTHONPATH": str(base_dir)}
        rows = [
            best(
                "sage-ops triage analyze",
                [*ours, "triage", "analyze", str(log)],
                args.repeat,
                lines,
            ),
            best(
                f"{args.base}: sage-ops triage analyze",
                [*ours, "triage", "analyze", str(log)],
                args.repeat,
                lines,
                theirs,
            ),
            best(
                "pgbadger -f rds -j 1",
                [pgbadger, "-f", "rds", "-j", "1", "-q", "-o", str(work / "out.html"), str(log)],
                args.repeat,
                lines,
            ),
            best(
                f"sage-ops triage analyze, {args.copies} copies",
                [*ours, "triage", "analyze", str(many)],
                1,
                lines * args.copies,
            ),
        ]
        startup = [
            best(f"{who}sage-ops {' '.join(cmd[:2])}", [*ours, *cmd], 5, env=env)
            for who, env in (("", {}), (f"{args.base}: ", theirs))
            for cmd in (
                ["--help"],
                ["triage", "classify", str(one)],
                ["triage", "analyze", str(one)],
            )
        ]
    report(lines, rows, startup)
    return 0


def report(lines: int, rows: list[Row], startup: list[Row]) -> None:
    print(f"{lines:,} lines of a real RDS log (pgbadger's fixture); best of the runs")
    print(
        f"{'run':<46} {'wall s':>7} {'cpu s':>7} {'lines/s':>10} {'lines/cpu s':>12} "
        f"{'peak RSS MB':>12}"
    )
    for r in rows:
        rss = f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "-"
        per_cpu = r.lines / r.cpu_s if r.cpu_s else 0.0
        print(
            f"{r.name:<46} {r.wall_s:>7.2f} {r.cpu_s:>7.2f} {r.lines_per_s:>10,.0f} "
            f"{per_cpu:>12,.0f} {rss:>12}"
        )
    ours, base, pgbadger = rows[0], rows[1], rows[2]
    print(
        f"analyze vs {base.name.split(':')[0]}: {base.wall_s / ours.wall_s:.1f}x the speed; "
        f"vs pgbadger: {pgbadger.wall_s / ours.wall_s:.1f}x"
    )
    print("\nstart-up (best of 5)")
    for r in startup:
        print(f"{r.name:<46} {r.wall_s:>6.3f} s wall {r.cpu_s:>6.3f} s cpu")
    print(
        json.dumps(
            {
                r.name: {
                    "wall_s": round(r.wall_s, 3),
                    "cpu_s": round(r.cpu_s, 3),
                    "lines_per_s": round(r.lines_per_s),
                    "peak_rss_mb": r.peak_rss_mb,
                }
                for r in rows + startup
            }
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
