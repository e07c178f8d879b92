"""Benchmark the git push sensor's scan() on a repository with 10,000 commits.

    .venv/bin/python -m benchmarks.git_sensor [--commits 10000] [--repeat 7] [--work-dir DIR]

Builds once, then reuses, a bare repository of --commits commits generated with `git fast-import`
(a 3,000-file tree; every third commit touches apps/backend/**, the others apps/web/** or
docs/**). For each source kind, the local path read in place and a file:// remote fetched
into a mirror, it times scan() on a fresh copy of that repository in these situations, --repeat
times each: no new commits; first scan (no cursor); 1 new commit; 50 new commits (17 of them
relevant); a force-push (5 commits replaced by 1); a cursor at the root commit (all history is
new). New commits are appended with fast-import before each timed scan (not timed); for the
remote, the fetch is part of the time. Each result is checked (the right commit deployed), so
the numbers are for correct scans.

Baseline, in the same invocation: the naive sensor, which lists the new commits and runs one
`git diff-tree` per commit. Target: every scan's max under 6 s, a tenth of Dagster's 60 s
sensor timeout. Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sage_ops.platforms.git.push_scan import PushScan, pathspecs, scan

RESULTS = Path(__file__).resolve().parent / "results" / "git-sensor-latest.json"
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "sage_ops_bench_git"
BRANCH = "main"
WATCH = ["apps/backend/**"]
AREAS = ("apps/backend/src", "apps/web/src", "docs")  # commit i touches AREAS[i % 3]
DIRS, FILES_PER_DIR = 20, 50  # 1,000 files per area
EPOCH = 1_700_000_000
TARGET_MAX_S = 6.0


# --- the repository -------------------------------------------------------------------------


def _path(area: str, i: int) -> str:
    return f"{area}/module{i % DIRS}/file{(i // DIRS) % FILES_PER_DIR}.txt"


def _blob(path: str, content: str) -> str:
    data = content.encode()
    return f"M 100644 inline {path}\ndata {len(data)}\n{content}\n"


def _commit(i: int, files: list[tuple[str, str]], parent: str | None) -> str:
    """One fast-import commit; `parent` only for the first commit appended to an existing
    branch (fast-import chains the following ones itself)."""
    message = f"change {i}: {files[0][0]}" if len(files) == 1 else f"initial tree ({i})"
    head = (
        f"commit refs/heads/{BRANCH}\n"
        f"committer Bench <bench@example.com> {EPOCH + i * 60} +0000\n"
        f"data {len(message.encode())}\n{message}\n"
    )
    head += f"from {parent}\n" if parent else ""
    return head + "".join(_blob(path, content) for path, content in files) + "\n"


def relevant(i: int) -> bool:
    return AREAS[i % 3] == AREAS[0]


def _stream(indices: Sequence[int], parent: str | None, initial_tree: bool) -> bytes:
    parts = []
    if initial_tree:
        files = [
            (_path(area, j), f"{area} {j}") for area in AREAS for j in range(DIRS * FILES_PER_DIR)
        ]
        parts.append(_commit(indices[0] - 1, files, parent))
        parent = None
    for n, i in enumerate(indices):
        area = AREAS[i % 3]
        parts.append(
            _commit(i, [(_path(area, i), f"{area} change {i}")], parent if n == 0 else None)
        )
    return "".join(parts).encode()


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, check=True)
    return done.stdout.decode().strip()


def fast_import(repo: Path, indices: Sequence[int], initial_tree: bool = False) -> None:
    parent = None if initial_tree else f"refs/heads/{BRANCH}^0"
    _git(repo, "fast-import", "--quiet", stdin=_stream(indices, parent, initial_tree))


def base_repository(work_dir: Path, commits: int) -> tuple[Path, float | None]:
    """The --commits repository, built with fast-import unless a previous run left it."""
    repo = work_dir / f"base-{commits}.git"
    if (repo / "HEAD").exists() and _count(repo) == commits:
        return repo, None
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    started = time.perf_counter()
    _git(repo, "init", "--quiet", "--bare", "--initial-branch", BRANCH)
    fast_import(repo, range(1, commits), initial_tree=True)  # + the initial tree commit
    return repo, time.perf_counter() - started


def _count(repo: Path) -> int:
    try:
        return int(_git(repo, "rev-list", "--count", f"refs/heads/{BRANCH}"))
    except subprocess.CalledProcessError:
        return -1


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    cursor: str | None
    expect_deploy: str | None  # the SHA the scan must deploy (None: nothing)
    expect_rewritten: bool = False


class Source:
    """A private copy of the base repository that scenarios append commits to."""

    def __init__(self, base: Path, copy: Path) -> None:
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(base, copy)
        self.path = copy
        self.next_index = itertools.count(_count(copy) + 1_000_000)

    def head(self) -> str:
        return _git(self.path, "rev-parse", f"refs/heads/{BRANCH}")

    def append(self, n: int, all_relevant: bool = False) -> str | None:
        """Append n commits with one fast-import; returns the newest relevant one."""
        indices = [self._next(all_relevant) for _ in range(n)]
        fast_import(self.path, indices)
        last = max((pos for pos, i in enumerate(indices) if relevant(i)), default=None)
        if last is None:
            return None
        return _git(self.path, "rev-parse", f"refs/heads/{BRANCH}~{n - 1 - last}")

    def _next(self, only_relevant: bool) -> int:
        i = next(self.next_index)
        while only_relevant and not relevant(i):
            i = next(self.next_index)
        return i

    def rewind(self, commits: int) -> None:
        _git(self.path, "update-ref", f"refs/heads/{BRANCH}", f"refs/heads/{BRANCH}~{commits}")

    def root(self) -> str:
        return _git(self.path, "rev-list", "--max-parents=0", f"refs/heads/{BRANCH}")


def unchanged(src: Source) -> Setup:
    return Setup(src.head(), None)


def first_scan(src: Source) -> Setup:
    return Setup(None, src.append(1, all_relevant=True))


def new_commits(n: int) -> Callable[[Source], Setup]:
    def setup(src: Source) -> Setup:
        cursor = src.head()
        return Setup(cursor, src.append(n, all_relevant=n == 1))

    return setup


def force_push(src: Source) -> Setup:
    cursor = src.head()
    src.rewind(5)
    return Setup(cursor, src.append(1, all_relevant=True), expect_rewritten=True)


def cursor_at_root(src: Source) -> Setup:
    newest = src.append(1, all_relevant=True)
    return Setup(src.root(), newest)


SCENARIOS: list[tuple[str, Callable[[Source], Setup], bool]] = [
    # name, setup, measure the naive baseline too
    ("no new commits", unchanged, False),
    ("first scan (no cursor)", first_scan, False),
    ("1 new commit", new_commits(1), True),
    ("50 new commits", new_commits(50), True),
    ("force-push (5 replaced by 1)", force_push, False),
    ("cursor at root (all history)", cursor_at_root, False),
]


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    source: str
    reps: int
    median_ms: float
    min_ms: float
    max_ms: float
    naive_median_ms: float | None = None

    @property
    def speedup(self) -> float | None:
        return self.naive_median_ms / self.median_ms if self.naive_median_ms else None


def naive_scan(repo: Path, cursor: str) -> str | None:
    """The baseline: one `git diff-tree` per new commit (all of them: the superseded ones must
    be found too), the newest relevant commit returned."""
    shas = _git(repo, "rev-list", "--first-parent", f"{cursor}..refs/heads/{BRANCH}").split()
    hits = [sha for sha in shas if _touches_backend(repo, sha)]
    return hits[0] if hits else None


def _touches_backend(repo: Path, sha: str) -> bool:
    files = _git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).splitlines()
    return any(f.startswith("apps/backend/") for f in files)


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def check(result: PushScan, setup: Setup, name: str) -> None:
    got = result.deploy.sha if result.deploy else None
    if got != setup.expect_deploy or result.history_rewritten != setup.expect_rewritten:
        raise SystemExit(f"{name}: wrong scan result {result.note!r}, expected {setup}")


def measure(
    src: Source,
    repo: str,
    cache: Path,
    scenario: tuple[str, Callable[[Source], Setup], bool],
    reps: int,
) -> Row:
    name, prepare, with_naive = scenario
    label = "local path" if repo == str(src.path) else "file:// mirror"
    reps = max(3, reps // 2) if name.startswith("cursor at root") else reps
    times: list[float] = []
    naive: list[float] = []
    for _ in range(reps):
        setup = prepare(src)
        ms, result = timed(partial(scan, repo, BRANCH, WATCH, setup.cursor, cache))
        check(result, setup, name)
        times.append(ms)
        if with_naive and label == "local path" and setup.cursor is not None:
            naive_ms, found = timed(partial(naive_scan, src.path, setup.cursor))
            assert found == setup.expect_deploy, (name, found, setup)
            naive.append(naive_ms)
    row = Row(name, label, reps, statistics.median(times), min(times), max(times))
    row.naive_median_ms = statistics.median(naive) if naive else None
    return row


def run_kind(kind: str, base: Path, work_dir: Path, reps: int) -> list[Row]:
    src = Source(base, work_dir / "run" / f"{kind}-source.git")
    cache = work_dir / "run" / f"{kind}-cache"
    shutil.rmtree(cache, ignore_errors=True)
    repo = str(src.path) if kind == "local" else f"file://{src.path}"
    ms, _ = timed(lambda: scan(repo, BRANCH, WATCH, None, cache))  # clone / warm the page cache
    rows = (
        [Row("initial mirror clone", "file:// mirror", 1, ms, ms, ms)] if kind == "remote" else []
    )
    rows += [measure(src, repo, cache, scenario, reps) for scenario in SCENARIOS]
    return rows


# --- reporting ------------------------------------------------------------------------------


def render(rows: list[Row]) -> str:
    header = (
        f"{'scenario':<30} {'source':<15} {'reps':>4} {'median ms':>10} {'min ms':>8} "
        f"{'max ms':>8} {'naive ms':>9} {'speedup':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        naive = f"{r.naive_median_ms:9.1f}" if r.naive_median_ms else f"{'-':>9}"
        speedup = f"{r.speedup:7.1f}x" if r.speedup else f"{'-':>8}"
        lines.append(
            f"{r.scenario:<30} {r.source:<15} {r.reps:>4} {r.median_ms:>10.1f} "
            f"{r.min_ms:>8.1f} {r.max_ms:>8.1f} {naive} {speedup}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.git_sensor", description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000, help="history length")
    parser.add_argument("--repeat", type=int, default=7, help="timed scans per scenario")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="reused repos")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base, build_s = base_repository(args.work_dir, args.commits)
    built = f"built in {build_s:.1f} s" if build_s is not None else "reused"
    print(f"repository: {base} ({_count(base)} commits, {built}); watching {pathspecs(WATCH)}")
    rows = run_kind("local", base, args.work_dir, args.repeat)
    rows += run_kind("remote", base, args.work_dir, args.repeat)
    scans = [r for r in rows if r.scenario != "initial mirror clone"]
    worst = max(r.max_ms for r in scans) / 1000
    passed = worst < TARGET_MAX_S
    print(render(rows))
    verdict = "PASS" if passed else "FAIL"
    print(f"\n{verdict}: slowest scan {worst:.2f} s (target: every scan under {TARGET_MAX_S:g} s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_payload(args, build_s, rows, worst, passed), indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0 if passed else 1


def _payload(
    args: argparse.Namespace, build_s: float | None, rows: list[Row], worst: float, passed: bool
) -> dict[str, Any]:
    return {
        "benchmark": "git_sensor",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.git_sensor " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git": _git(Path.cwd(), "--version"),
        "commits": args.commits,
        "repeat": args.repeat,
        "repository_build_s": build_s,
        "rows": [{**asdict(r), "speedup": r.speedup} for r in rows],
        "target": {"max_scan_s": TARGET_MAX_S, "slowest_scan_s": worst, "passed": passed},
    }


if __name__ == "__main__":
    sys.exit(main())
