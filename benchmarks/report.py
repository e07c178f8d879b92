"""Turn measurements into the table, the PASS/FAIL targets and results/latest.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.dataset import GIB
from benchmarks.model import Result, SizeRun

MB = 1e6
MIN_SPEEDUP = 2.0
MAX_SIZE_RATIO = 1.10
MAX_RSS_BYTES = 200 * MB
MAX_RSS_GROWTH = 0.10
MAX_NIGHTLY_VS_CORE = 1.5
MAX_VERIFY_SHARE = 0.30
NIGHTLY_KEYS = ("nightly_before", "nightly_after")
CORE_KEYS = ("core_file", "core_s3")
STREAMED = "streamed_plain"
SAGE_PROCESS_KEYS = (*CORE_KEYS, "verify", STREAMED)
HEADER = (
    f"{'variant':<42} {'wall s':>8} {'CPU s':>7} {'MB/s':>7} {'out MB':>8} {'peak RSS MB':>11} "
    f"{'speed vs seed':>13} {'size vs seed':>12}  status"
)

CPU_NOTE = (
    "CPU s: user + system seconds of every process doing the row's work (the pipeline's own\n"
    "processes, the source database's backends, the scratch server's), sampled every 0.1 s."
)
RSS_NOTE = (
    "peak RSS: sage_ops rows = the sage_ops Python process alone (VmHWM, without pg_dump/psql);\n"
    "other rows = the largest single process of the pipeline or run (GNU time %M)."
)


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    passed: bool | None  # None: a measurement it needs is missing

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A "}[self.passed]


def evaluate(runs: list[SizeRun]) -> list[Target]:
    targets = []
    for run in runs:
        targets += [_speed(run, key) for key in CORE_KEYS]
        targets.append(_size(run, "core_file"))
        targets += [_rss(run, key) for key in SAGE_PROCESS_KEYS]
        targets += [_nightly(run), _verify_share(run), _nightly_gain(run)]
    if len(runs) == 2:
        targets += [_rss_growth(runs[0], runs[1], key) for key in (*CORE_KEYS, STREAMED)]
    return targets


def _nightly(run: SizeRun) -> Target:
    name = f"[{_tag(run)}] whole nightly_backup run <= {MAX_NIGHTLY_VS_CORE}x the core pipeline"
    target = _compare(name, run.get("core_file"), run.get("nightly_after"), _wall, _nightly_check)
    return _with_floor(_with_cpu(target, run, "core_file", "nightly_after"), run)


def _with_cpu(target: Target, run: SizeRun, base_key: str, key: str) -> Target:
    """The target as measured in wall time, with the same ratio in CPU seconds appended."""
    return Target(target.name, target.measured + _cpu_ratio(run, base_key, key), target.passed)


def _with_floor(target: Target, run: SizeRun) -> Target:
    """The target with the fastest wall time the run's CPUs allow for a dump that is also
    restored: the core's CPU seconds plus the verification's, spread over every CPU."""
    core, verify = run.get("core_file"), run.get("verify")
    if not (core and verify and core.cpu_s and verify.cpu_s and core.wall_s and run.cpus):
        return target
    floor = (core.cpu_s + verify.cpu_s) / run.cpus
    text = (
        f"; lower bound on {run.cpus} CPUs: (core {core.cpu_s:.1f} + verification "
        f"{verify.cpu_s:.1f} CPU s) / {run.cpus} = {floor:.1f} s = {floor / core.wall_s:.2f}x core"
    )
    return Target(target.name, target.measured + text, target.passed)


def _nightly_check(core: float, nightly: float) -> tuple[str, bool]:
    ratio = nightly / core
    text = f"nightly {nightly:.1f} s / core {core:.1f} s = {ratio:.2f}x"
    return text, ratio <= MAX_NIGHTLY_VS_CORE


def _cpu_ratio(run: SizeRun, base_key: str, key: str) -> str:
    base, other = run.get(base_key), run.get(key)
    if not (base and other and base.cpu_s and other.cpu_s):
        return ""
    return f" (CPU {other.cpu_s:.1f} s / {base.cpu_s:.1f} s = {other.cpu_s / base.cpu_s:.2f}x)"


def _verify_share(run: SizeRun) -> Target:
    name = f"[{_tag(run)}] full verification adds <= {MAX_VERIFY_SHARE:.0%} to the core pipeline"
    target = _compare(name, run.get("core_file"), run.get(STREAMED), _wall, _share_check)
    return _with_floor(_with_cpu(target, run, "core_file", STREAMED), run)


def _share_check(core: float, verified: float) -> tuple[str, bool]:
    share = (verified - core) / core
    text = f"restored while dumping {verified:.1f} s vs core {core:.1f} s: {share:+.0%}"
    return text, share <= MAX_VERIFY_SHARE


def _nightly_gain(run: SizeRun) -> Target:
    name = f"[{_tag(run)}] nightly_backup run faster than the sequential code's"
    before, after = (run.get(key) for key in NIGHTLY_KEYS)
    return _with_cpu(_compare(name, before, after, _wall, _gain_check), run, *NIGHTLY_KEYS)


def _gain_check(before: float, after: float) -> tuple[str, bool]:
    return f"sequential {before:.1f} s -> {after:.1f} s ({before / after:.2f}x)", after < before


def _wall(result: Result) -> float | None:
    return result.wall_s


def _speed(run: SizeRun, key: str) -> Target:
    name = f"[{_tag(run)}] {key} >= {MIN_SPEEDUP}x faster than the seed script"
    return _compare(name, run.get("seed"), run.get(key), lambda r: r.wall_s, _speed_check)


def _speed_check(seed: float, core: float) -> tuple[str, bool]:
    ratio = seed / core
    return f"seed {seed:.1f} s / sage_ops {core:.1f} s = {ratio:.2f}x", ratio >= MIN_SPEEDUP


def _size(run: SizeRun, key: str) -> Target:
    name = f"[{_tag(run)}] {key} output <= {MAX_SIZE_RATIO}x the seed's"
    return _compare(name, run.get("seed"), run.get(key), lambda r: r.output_bytes, _size_check)


def _size_check(seed: float, core: float) -> tuple[str, bool]:
    ratio = core / seed
    text = f"sage_ops {core / MB:.1f} MB / seed {seed / MB:.1f} MB = {ratio:.3f}x"
    return text, ratio <= MAX_SIZE_RATIO


def _rss(run: SizeRun, key: str) -> Target:
    name = f"[{_tag(run)}] {key} peak RSS < {MAX_RSS_BYTES / MB:.0f} MB"
    result = run.get(key)
    if result is None or result.peak_rss_bytes is None:
        return Target(name, "not measured", None)
    rss = result.peak_rss_bytes
    return Target(name, f"{rss / MB:.1f} MB", rss < MAX_RSS_BYTES)


def _rss_growth(small: SizeRun, large: SizeRun, key: str) -> Target:
    name = f"{key} peak RSS at {_tag(small)} and {_tag(large)} within {MAX_RSS_GROWTH:.0%}"
    return _compare(name, small.get(key), large.get(key), lambda r: r.peak_rss_bytes, _growth)


def _growth(small: float, large: float) -> tuple[str, bool]:
    change = (large - small) / small
    text = f"{small / MB:.1f} MB -> {large / MB:.1f} MB ({change:+.1%})"
    return text, abs(change) <= MAX_RSS_GROWTH


def _compare(
    name: str,
    base: Result | None,
    other: Result | None,
    value: Callable[[Result], float | int | None],
    check: Callable[[float, float], tuple[str, bool]],
) -> Target:
    a = value(base) if base else None
    b = value(other) if other else None
    if not a or not b:
        return Target(name, "not measured", None)
    text, passed = check(a, b)
    return Target(name, text, passed)


def _tag(run: SizeRun) -> str:
    return f"{run.size_gb:g} GiB"


def render(runs: list[SizeRun], targets: list[Target]) -> str:
    lines = []
    for run in runs:
        lines += ["", _title(run), HEADER, *(_row(run, r) for r in run.results)]
        lines += ["", "CPU seconds by process:", *_cpu_rows(run)]
    lines += ["", CPU_NOTE, RSS_NOTE, "", "Targets (as measured):"]
    lines += [f"  {t.verdict}  {t.name}: {t.measured}" for t in targets]
    return "\n".join(lines)


def _cpu_rows(run: SizeRun) -> list[str]:
    return [
        f"  {r.key:<16} " + ", ".join(f"{role} {s:.1f}" for role, s in roles.items())
        for r in run.results
        if (roles := r.details.get("cpu_s_by_role"))
    ]


def _title(run: SizeRun) -> str:
    raw = f"{run.raw_bytes / MB:,.0f} MB" if run.raw_bytes else "unknown"
    how = "reused" if run.reused else f"built in {run.build_s:.0f} s"
    load = " -> ".join(" ".join(f"{x:.2f}" for x in avg) for avg in run.load)
    return (
        f"== {run.database}: pg_database_size {run.db_bytes / GIB:.2f} GiB "
        f"({run.db_bytes / MB:,.0f} MB, {how}); raw dump {raw}; load average {load} =="
    )


def _row(run: SizeRun, result: Result) -> str:
    seed = run.get("seed")
    wall, out = result.wall_s, result.output_bytes
    throughput = run.raw_bytes / MB / wall if run.raw_bytes and wall else None
    speed = seed.wall_s / wall if seed and seed.wall_s and wall else None
    size = out / seed.output_bytes if seed and seed.output_bytes and out else None
    rss = result.peak_rss_bytes / MB if result.peak_rss_bytes else None
    return (
        f"{result.label:<42} {_num(wall, 8, 2)} {_num(result.cpu_s, 7, 1)} "
        f"{_num(throughput, 7, 1)} "
        f"{_num(out / MB if out else None, 8, 1)} {_num(rss, 11, 1)} "
        f"{_ratio(speed, 13, 2)} {_ratio(size, 12, 3)}  {result.status}"
    )


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def _ratio(value: float | None, width: int, digits: int) -> str:
    return f"{value:.{digits}f}x".rjust(width) if value is not None else "-".rjust(width)


def to_json(meta: dict[str, Any], runs: list[SizeRun], targets: list[Target]) -> dict[str, Any]:
    return {
        **meta,
        "runs": [{**asdict(run), "raw_bytes": run.raw_bytes} for run in runs],
        "targets": [{**asdict(t), "verdict": t.verdict.strip()} for t in targets],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
