"""The measured variants: shell pipelines, sage_ops in a child process, the Dagster job.

Every variant dumps the same database with the same pg_dump binary (the one sage_ops picks
for the server), connected through the same PG* environment.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.backup_cpu import CpuSampler
from benchmarks.measure import Measured, run_measured, shell
from benchmarks.model import Result
from sage_ops.backups.manifest import CUSTOM, MANIFEST_SUFFIX, PLAIN, Manifest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
S3_URL = "s3://sage-bench/backups/"
TREE_RSS = "largest process of the pipeline"
SAGE_RSS = "sage_ops python process alone (VmHWM)"
# Settings that would change what the children do; each variant sets its own.
_FOREIGN_ENV = ("SAGE_OPS_", "DATABASE_URL", "DAGSTER_HOME", "AWS_")


@dataclass(frozen=True)
class Bench:
    """One database under test and where this run may write."""

    database_url: str
    database: str  # its name, to find the server backends the variants use
    pg_dump: str
    pg_env: dict[str, str]  # libpq PG* variables for the shell variants
    workdir: Path


@dataclass(frozen=True)
class ShellVariant:
    key: str
    label: str
    script: str  # {pg_dump}, {out} and {tmp} are filled in
    needs: str | None = None
    writes: bool = True


RAW = ShellVariant("raw", "pg_dump > /dev/null", "{pg_dump} > /dev/null", writes=False)
SHELL_VARIANTS = (
    RAW,
    ShellVariant(
        "seed",
        "seed script: pg_dump | gzip > tmp; cp",
        "{pg_dump} | gzip > {tmp} && cp {tmp} {out}",
    ),
    ShellVariant("gzip1", "pg_dump | gzip -1", "{pg_dump} | gzip -1 > {out}"),
    ShellVariant("pigz", "pg_dump | pigz -p 2", "{pg_dump} | pigz -p 2 > {out}", needs="pigz"),
)


def run_suite(
    bench: Bench, s3_env: dict[str, str], custom: bool, shell_extras: bool = True
) -> list[Result]:
    """Every variant on one database; `custom`: also the custom format's two restores;
    `shell_extras`: also the shell pipelines beyond the bare dump and the seed's script."""
    log.info("warm-up run of %s (not in the table)", RAW.label)
    warmup = run_shell(bench, RAW)
    shells = SHELL_VARIANTS if shell_extras else SHELL_VARIANTS[:2]
    results = [run_shell(bench, variant) for variant in shells]
    results[0].details["warmup_wall_s"] = warmup.wall_s
    core_file = run_backup(bench, "core_file", "sage_ops backup_database -> file", _file_url(bench))
    core_s3 = run_backup(bench, "core_s3", "sage_ops backup_database -> S3 (moto)", S3_URL, s3_env)
    results += [core_file, core_s3, run_verify(bench, core_file), run_streamed(bench, PLAIN)]
    if custom:
        results += [run_streamed(bench, CUSTOM), run_parallel_restore(bench)]
    return [*results, run_dagster(bench, BEFORE), run_dagster(bench, AFTER)]


def run_shell(bench: Bench, variant: ShellVariant) -> Result:
    result = Result(variant.key, variant.label, rss_scope=TREE_RSS)
    if variant.needs and not ensure_tool(variant.needs):
        result.status = f"not available: {variant.needs} is not installed"
        return result
    out = bench.workdir / variant.key / "backup.sql.gz"
    out.parent.mkdir(exist_ok=True)
    tmp = bench.workdir / f"{variant.key}.tmp.sql.gz"
    script = variant.script.format(
        pg_dump=f"{shlex.quote(bench.pg_dump)} --no-password",
        out=shlex.quote(str(out)),
        tmp=shlex.quote(str(tmp)),
    )
    log.info("%s: %s", variant.key, script)
    measured = _run(bench, result, shell(script), bench.pg_env)
    _record(result, measured, measured.wall_s, measured.tree_peak_rss_bytes)
    result.details["script"] = script
    if variant.writes and measured.ok:
        result.output_bytes = out.stat().st_size
    for path in (out, tmp):
        path.unlink(missing_ok=True)
    return result


def run_backup(
    bench: Bench, key: str, label: str, store_url: str, extra_env: dict[str, str] | None = None
) -> Result:
    log.info("%s: backup_database -> %s", key, store_url)
    result, data = _sage_child(bench, key, label, ["backup", store_url], extra_env)
    if data:
        result.output_bytes = data["size"]
        result.details.update(store_url=store_url)
    return result


def run_verify(bench: Bench, backup: Result) -> Result:
    label = "sage_ops verify_backup full (restore on the embedded scratch)"
    if not (backup.ok and backup.details.get("key")):
        return Result("verify", label, status="failed: no backup to verify")
    log.info("verify: full restore of %s", backup.details["key"])
    args = ["verify", backup.details["store_url"], backup.details["key"]]
    result, data = _sage_child(bench, "verify", label, args, _own_state(bench, "verify"))
    if data and not data["passed"]:
        result.status = f"failed: {data['detail']}"
    return result


def run_streamed(bench: Bench, fmt: str) -> Result:
    """The full verification as db_backup now runs it: embedded scratch, restored while dumping."""
    key, label = f"streamed_{fmt}", f"sage_ops verified backup ({fmt}), restored while dumping"
    log.info("%s: start the embedded scratch, dump and restore at once", key)
    env = _own_state(bench, key)
    store = f"{_file_url(bench)}_{key}"
    result, data = _sage_child(bench, key, label, ["restored_while_dumping", store, fmt], env)
    if data:
        result.output_bytes = data["size"]
        if not data["passed"]:
            result.status = f"failed: {data['detail']}"
    return result


def run_parallel_restore(bench: Bench) -> Result:
    key, label = "parallel_custom", "custom: dump, then pg_restore -j2 from the store"
    log.info("%s: custom dump, then a parallel restore of the stored file", key)
    env = _own_state(bench, key)
    store = f"{_file_url(bench)}_{key}"
    result, data = _sage_child(bench, key, label, ["parallel_restore", store], env)
    if data:
        result.output_bytes = data["size"]
    return result


@dataclass(frozen=True)
class Code:
    """Which sage_ops a nightly_backup run uses: this checkout, or `ref`'s sage_ops/ exported."""

    key: str
    label: str
    ref: str | None = None


# The last commit before restore-while-dumping (the sequential dump-then-verify nightly); a
# fixed commit, so the baseline stays the old code once this change is on main.
BASELINE_REF = "66594b60d03f347a9cc91548f40736b034fa78c4"
BEFORE = Code("nightly_before", "nightly_backup run, sequential code", BASELINE_REF)
AFTER = Code("nightly_after", "nightly_backup run, this code")


def run_dagster(bench: Bench, code: Code) -> Result:
    """`dagster job execute` of nightly_backup (dump, blocking full verification, retention) with
    the embedded scratch, as production runs it."""
    result = Result(code.key, code.label, rss_scope=TREE_RSS)
    home = _dagster_home(bench.workdir / f"dagster_home_{code.key}")
    store = bench.workdir / f"dagster_store_{code.key}"
    env = _child_env(
        DAGSTER_HOME=str(home),
        DATABASE_URL=bench.database_url,
        SAGE_OPS_BACKUP_URL=f"file://{store}",
        **_own_state(bench, code.key),
        SAGE_OPS_SCRATCH="embedded",
    )
    cwd: Path | None = REPO
    if code.ref:
        cwd = _exported(code.ref, bench.workdir / code.key)
        env["PYTHONPATH"] = str(cwd)  # its sage_ops before the installed (editable) one
        result.details["code"] = _commit(code.ref)
    if cwd is None:
        result.status = f"not available: no git ref {code.ref}"
        return result
    dagster = Path(sys.executable).parent / "dagster"
    argv = [str(dagster), "job", "execute", "-m", "sage_ops.definitions", "-j", "nightly_backup"]
    log.info("%s: %s (in %s)", code.key, shlex.join(argv), cwd)
    measured = _run(bench, result, argv, env, cwd)
    _record(result, measured, measured.wall_s, measured.tree_peak_rss_bytes)
    manifest = _latest_manifest(store)
    if manifest is None:
        if result.ok:
            result.status = "failed: the run published no backup"
        return result
    result.output_bytes = manifest.size
    result.details.update(raw_bytes=manifest.raw_bytes, verification=manifest.verification.status)
    if result.ok and not manifest.verified:
        result.status = f"failed: verification {manifest.verification.status}"
    return result


def _commit(ref: str) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def _exported(ref: str, into: Path) -> Path | None:
    """`ref`'s sage_ops/ package extracted into `into` (None if there is no such ref)."""
    commit = _commit(ref)
    if commit is None:
        return None
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "sage_ops"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def ensure_tool(name: str) -> bool:
    """True if `name` is on PATH, after trying `apt-get install` when it is not."""
    if shutil.which(name):
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        log.info("installing %s with apt-get", name)
        subprocess.run(["apt-get", "install", "-y", "-q", name], capture_output=True, check=False)
    return shutil.which(name) is not None


def _sage_child(
    bench: Bench, key: str, label: str, args: list[str], extra_env: dict[str, str] | None = None
) -> tuple[Result, dict[str, Any] | None]:
    """Run benchmarks.sage_child; time and RSS are what the child measured of itself."""
    argv = [sys.executable, "-m", "benchmarks.sage_child", *args]
    env = _child_env(DATABASE_URL=bench.database_url, **(extra_env or {}))
    result = Result(key, label, rss_scope=SAGE_RSS)
    measured = _run(bench, result, argv, env, REPO)
    if not measured.ok:
        _record(result, measured, None, None)
        return result, None
    data: dict[str, Any] = json.loads(measured.stdout.strip().splitlines()[-1])
    _record(result, measured, data.pop("wall_s"), data.pop("peak_rss_bytes"))
    result.details.update(data, process_wall_s=measured.wall_s)
    result.details["tree_peak_rss_bytes"] = measured.tree_peak_rss_bytes
    return result, data


def _run(
    bench: Bench, result: Result, argv: list[str], env: dict[str, str], cwd: Path | None = None
) -> Measured:
    """run_measured, with the CPU seconds of every process doing the work in result.cpu_s."""
    with CpuSampler(bench.database, bench.workdir) as cpu:
        measured = run_measured(argv, env=env, cwd=cwd)
    result.cpu_s = round(cpu.sample.total_s, 2)
    result.details["cpu_s_by_role"] = cpu.sample.by_role
    return measured


def _record(result: Result, measured: Measured, wall: float | None, rss: int | None) -> None:
    result.wall_s, result.peak_rss_bytes = wall, rss
    if not measured.ok:
        result.status = f"failed: {measured.failure()}"
        log.error("%s failed:\n%s", result.key, measured.stderr[-4000:])


def _child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV)}
    return {**env, **overrides}


def _own_state(bench: Bench, key: str) -> dict[str, str]:
    """A fresh state directory (the embedded scratch's data directory) and runtime directory:
    pgserver serializes server starts and stops through a lock file in XDG_RUNTIME_DIR, which
    other users of pgserver on a shared machine would otherwise hold while the run waits."""
    runtime = bench.workdir / f"runtime_{key}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)  # platformdirs ignores a runtime directory others may read
    return {
        "SAGE_OPS_STATE_DIR": str(bench.workdir / f"state_{key}"),
        "XDG_RUNTIME_DIR": str(runtime),
    }


def _file_url(bench: Bench) -> str:
    return f"file://{bench.workdir / 'core_store'}"


def _dagster_home(home: Path) -> Path:
    """A DAGSTER_HOME with the repo's dagster.yaml, its relative base_dirs made absolute."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    _absolute_base_dirs(config, home)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def _absolute_base_dirs(node: Any, root: Path) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "base_dir" and isinstance(value, str) and not os.path.isabs(value):
                node[key] = str(root / value)
            else:
                _absolute_base_dirs(value, root)


def _latest_manifest(store: Path) -> Manifest | None:
    manifests = sorted(store.glob(f"*{MANIFEST_SUFFIX}")) if store.is_dir() else []
    return Manifest.from_json(manifests[-1].read_bytes()) if manifests else None
