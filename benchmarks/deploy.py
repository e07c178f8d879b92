"""Benchmark the build-push-deploy pipeline's own overhead and its push-to-healthy latency.

    .venv/bin/python -m benchmarks.deploy [--rounds 3] [--rerun-git-sensor]

Sets up what tests/deploy/test_pipeline.py's `stack` fixture does: a temporary git repository
holding infra/sample-backend as apps/backend, two swarm services (staging, production) with fast
health settings, scratch staging and production databases, a `file://` backup store and a
persistent temporary Dagster instance. Each round commits a change to apps/backend, ticks
git_push_sensor once (timed), and runs `deploy_backend` for the new partition in-process. The
measures come from the run's event log (RUN_START, STEP_START/STEP_SUCCESS, ASSET_CHECK_EVALUATION
timestamps); the commit time is the wall clock right after `git commit` returned.

Round 1 creates the services and applies the three sample migrations (cold-ish: the layer cache
may hold the base layers); later rounds are cached builds that update the services. Targets:
overhead (run start -> staging deploy call, minus build and push) under 15 s in every round;
push-to-healthy (commit -> production_healthy) under 60 s in every cached round. The git sensor
medians on a 10,000-commit repository come from benchmarks/git_sensor.py's results (run first
when missing or with --rerun-git-sensor). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from dagster import AssetMaterialization, DagsterEventType, DagsterInstance

from benchmarks import git_sensor
from sage_ops import postgres
from sage_ops.backups.resources import BackupConfig
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.platforms.docker_engine.engine import docker_client
from sage_ops.postgres import PgTarget
from tests.deploy.test_pipeline import Stack, _commit_backend, _git
from tests.platforms.conftest import REGISTRY, delete_manifest, remove_image

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results" / "deploy-latest.json"
HEALTH = "?health_interval=1s&monitor=2s"
TARGET_OVERHEAD_S = 15.0
TARGET_PUSH_TO_HEALTHY_S = 60.0
SENSOR_INTERVAL_S = 30  # git_push_sensor's minimum_interval_seconds (not part of the measure)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
MEASURES = (  # key, label
    ("sensor_tick_s", "sensor tick (small repo)"),
    ("launch_s", "tick end -> run start"),
    ("build_s", "build (backend_image step)"),
    ("push_s", "push (registry_image step)"),
    ("overhead_s", "OVERHEAD run start -> deploy call"),
    ("startup_s", "  run start -> first step"),
    ("image_policy_s", "  image_policy check step"),
    ("staging_schema_s", "  staging_schema step"),
    ("gaps_s", "  between steps"),
    ("staging_rollout_s", "staging rollout (-> healthy)"),
    ("staging_deploy_call_s", "  deployer.deploy() itself"),
    ("production_schema_s", "production_schema step"),
    ("production_rollout_s", "production rollout (-> healthy)"),
    ("production_deploy_call_s", "  deployer.deploy() itself"),
    ("run_s", "run start -> run success"),
    ("push_to_healthy_s", "PUSH-TO-HEALTHY commit -> healthy"),
)


# --- the stack ------------------------------------------------------------------------------


class BenchStack(Stack):
    """The test fixture's Stack, remembering the digests it pushed (for the cleanup)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.digests: list[str] = []


@contextlib.contextmanager
def stack(work: Path, server: PgTarget) -> Iterator[BenchStack]:
    """Repository, databases, Dagster instance and DeployConfig as the test fixture builds them;
    the services, images and databases are removed afterwards."""
    name = f"sage-bench-{uuid.uuid4().hex[:8]}"
    services = {env: f"{name}-{env}" for env in ("staging", "production")}
    repo = work / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    with (
        postgres.scratch_database(server, prefix="sage_bench_staging") as staging_db,
        postgres.scratch_database(server, prefix="sage_bench_production") as production_db,
        mock.patch.dict(os.environ, _environment(work, staging_db, production_db)),
    ):
        (work / "dagster_home").mkdir()
        instance = DagsterInstance.local_temp(str(work / "dagster_home"))
        built = BenchStack(repo, _resources(work), instance, services, staging_db, production_db)
        built.configure(**_deploy_settings(repo, name, services))
        try:
            yield built
        finally:
            instance.dispose()
            cleanup(built)


def _environment(work: Path, staging: PgTarget, production: PgTarget) -> dict[str, str]:
    return {
        "SAGE_OPS_STATE_DIR": str(work / "state"),
        "STAGING_DATABASE_URL": staging.redacted,
        "PRODUCTION_DATABASE_URL": production.redacted,
    }


def _resources(work: Path) -> dict[str, Any]:
    return {
        "backups": BackupConfig(backup_url=f"file://{work / 'backups'}", verify_level="checksum"),
        "migrations": MigrationConfig(migrations_dir="unused"),
    }


def _deploy_settings(repo: Path, name: str, services: dict[str, str]) -> dict[str, Any]:
    return dict(
        repo=str(repo),
        build_files={"busybox": "/bin/busybox"},
        repository=name,
        staging_target=f"swarm://{services['staging']}{HEALTH}",
        production_target=f"swarm://{services['production']}{HEALTH}",
        deploy_timeout_s=120,
    )


def cleanup(built: BenchStack) -> None:
    """Services first (their tasks hold the images), then local images and registry manifests."""
    for service in built.services.values():
        subprocess.run(["docker", "service", "rm", service], capture_output=True, check=False)
    repository = built.config.repository
    client = docker_client()
    _wait_for_tasks_gone(client, list(built.services.values()))
    for name in (repository, f"{REGISTRY}/{repository}"):
        for image in client.images.list(name=name):
            for ref in [*image.tags, image.id]:
                remove_image(client, ref)
    for digest in built.digests:
        delete_manifest(REGISTRY, repository, digest)


def _wait_for_tasks_gone(client: Any, services: list[str], timeout_s: float = 30.0) -> None:
    """Removed services stop their containers asynchronously; their images are in use till then."""
    labels = [f"com.docker.swarm.service.name={service}" for service in services]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(client.containers.list(all=True, filters={"label": label}) for label in labels):
            return
        time.sleep(0.5)


# --- one round ------------------------------------------------------------------------------


@dataclass
class Timeline:
    """What one run's event log says, as wall-clock timestamps (time.time())."""

    run_start: float = 0.0
    run_end: float = 0.0
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> start, end
    checks: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> step, time
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset -> values

    def duration(self, step: str) -> float:
        start, end = self.steps[step]
        return end - start

    def check_step(self, check: str) -> str:
        return self.checks[check][0]


def timeline(instance: DagsterInstance, run_id: str) -> Timeline:
    found, starts = Timeline(), dict[str, float]()
    for entry in instance.all_logs(run_id):
        event, at, step = entry.dagster_event, entry.timestamp, entry.step_key or ""
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            found.run_start = at
        elif kind == DagsterEventType.RUN_SUCCESS:
            found.run_end = at
        elif kind == DagsterEventType.STEP_START:
            starts.setdefault(step, at)  # a retried step keeps its first start
        elif kind == DagsterEventType.STEP_SUCCESS:
            found.steps[step] = (starts[step], at)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            found.checks[event.asset_check_evaluation_data.check_name] = (step, at)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION and entry.asset_materialization:
            _record_metadata(found, entry.asset_materialization)
    return found


def _record_metadata(found: Timeline, materialization: AssetMaterialization) -> None:
    values = {key: value.value for key, value in materialization.metadata.items()}
    found.metadata[materialization.asset_key.to_user_string()] = values


def measures(t: Timeline, committed: float, tick_s: float, tick_end: float) -> dict[str, float]:
    build_s, push_s = t.duration("backend_image"), t.duration("registry_image")
    deploy_call = t.steps["staging_deployment"][0]
    overhead = deploy_call - t.run_start - build_s - push_s
    startup = min(start for start, _ in t.steps.values()) - t.run_start
    image_policy, schema = t.duration(t.check_step("image_policy")), t.duration("staging_schema")
    values = {
        "sensor_tick_s": tick_s,
        "launch_s": t.run_start - tick_end,
        "build_s": build_s,
        "push_s": push_s,
        "overhead_s": overhead,
        "startup_s": startup,
        "image_policy_s": image_policy,
        "staging_schema_s": schema,
        "gaps_s": overhead - startup - image_policy - schema,
        "production_schema_s": t.duration("production_schema"),
        "run_s": t.run_end - t.run_start,
        "push_to_healthy_s": t.checks["production_healthy"][1] - committed,
    }
    for env in ("staging", "production"):
        healthy = t.checks[f"{env}_healthy"][1]
        values[f"{env}_rollout_s"] = healthy - t.steps[f"{env}_deployment"][0]
        values[f"{env}_deploy_call_s"] = float(t.metadata[f"{env}_deployment"]["rollout_seconds"])
    return values


def run_round(built: BenchStack, index: int) -> dict[str, Any]:
    sha = _commit_backend(built.repo, "healthy", f"benchmark round {index}")
    committed = time.time()
    started = time.perf_counter()
    [request] = built.tick().run_requests
    tick_s, tick_end = time.perf_counter() - started, time.time()
    if request.partition_key != sha:
        raise SystemExit(f"round {index}: the sensor asked for {request.partition_key}, not {sha}")
    job = built.definitions.resolve_job_def(request.job_name)
    result = job.execute_in_process(
        partition_key=sha,
        instance=built.instance,
        tags=request.tags,
        run_config=QUIET,
        raise_on_error=False,
    )
    if not result.success:
        raise SystemExit(f"round {index}: deploy_backend failed for {sha} (run {result.run_id})")
    t = timeline(built.instance, result.run_id)
    built.digests.append(str(t.metadata["registry_image"]["digest"]))
    return {
        "round": index,
        "commit": sha,
        "run_id": result.run_id,
        "cached_steps": t.metadata["backend_image"]["cached_steps"],
        "migrations_applied": t.metadata["staging_schema"].get("migrations_applied", []),
        "measures": measures(t, committed, tick_s, tick_end),
    }


# --- results --------------------------------------------------------------------------------


def summarize(rounds: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per group (cold = round 1, cached = the rest): median/min/max of every measure."""
    groups = {"cold": rounds[:1], "cached": rounds[1:]}
    return {
        name: {key: _stats([r["measures"][key] for r in members]) for key, _ in MEASURES}
        for name, members in groups.items()
        if members
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def targets(summary: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    overhead = max(group["overhead_s"]["max"] for group in summary.values())
    cached = summary.get("cached", {}).get("push_to_healthy_s")
    return [
        _target("overhead (run start -> deploy call) in every round", overhead, TARGET_OVERHEAD_S),
        _target(
            "push-to-healthy, every cached round",
            cached["max"] if cached else None,
            TARGET_PUSH_TO_HEALTHY_S,
        ),
    ]


def _target(name: str, measured: float | None, limit: float) -> dict[str, Any]:
    passed = None if measured is None else measured < limit
    return {"name": name, "measured_s": measured, "limit_s": limit, "passed": passed}


def render(summary: dict[str, dict[str, dict[str, float]]], rounds: int) -> str:
    groups = list(summary)
    head = f"{'measure (seconds)':<36}" + "".join(
        f" {f'{g} median':>14} {'min':>7} {'max':>7}" for g in groups
    )
    lines = [f"{rounds} round(s): cold = round 1, cached = rounds 2..{rounds}", head]
    lines.append("-" * len(head))
    for key, label in MEASURES:
        cells = [summary[g][key] for g in groups]
        lines.append(
            f"{label:<36}"
            + "".join(f" {c['median']:>14.2f} {c['min']:>7.2f} {c['max']:>7.2f}" for c in cells)
        )
    return "\n".join(lines)


def render_targets(found: list[dict[str, Any]]) -> str:
    verdicts = {True: "PASS", False: "FAIL", None: "N/A "}
    return "\n".join(
        f"{verdicts[t['passed']]}: {t['name']}: "
        + ("not measured" if t["measured_s"] is None else f"{t['measured_s']:.2f} s")
        + f" (target < {t['limit_s']:g} s)"
        for t in found
    )


def git_sensor_medians(rerun: bool) -> list[dict[str, Any]]:
    """benchmarks/git_sensor.py's rows (10,000 commits), run first when asked or missing."""
    if rerun or not git_sensor.RESULTS.exists():
        git_sensor.main(["--json", str(git_sensor.RESULTS)])
    rows = json.loads(git_sensor.RESULTS.read_text())["rows"]
    table = [git_sensor.Row(**{k: v for k, v in row.items() if k != "speedup"}) for row in rows]
    print(f"\ngit sensor scans, 10,000 commits ({git_sensor.RESULTS.name}):")
    print(git_sensor.render(table))
    return [{"scenario": r.scenario, "source": r.source, "median_ms": r.median_ms} for r in table]


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def _payload(rounds: list, summary: dict, found: list, sensor: list) -> dict:
    return {
        "benchmark": "deploy",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.deploy " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
        "health": HEALTH,
        "sensor_interval_s": SENSOR_INTERVAL_S,
        "rounds": rounds,
        "summary": summary,
        "git_sensor_medians": sensor,
        "targets": found,
    }


# --- command --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deploy", description=__doc__)
    parser.add_argument(
        "--rounds", type=_positive, default=3, help="commits deployed: 1 cold + N-1 cached"
    )
    parser.add_argument("--server-url", default=DEFAULT_SERVER, help="PostgreSQL server to use")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument(
        "--rerun-git-sensor", action="store_true", help="rerun benchmarks.git_sensor first"
    )
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = PgTarget.from_url(args.server_url, "--server-url")
    rounds = []
    with (
        tempfile.TemporaryDirectory(prefix="sage_bench_deploy_") as tmp,
        stack(Path(tmp), server) as built,
    ):
        for index in range(1, args.rounds + 1):
            rounds.append(run_round(built, index))
            m = rounds[-1]["measures"]
            print(
                f"round {index}/{args.rounds}: overhead {m['overhead_s']:.2f} s, build "
                f"{m['build_s']:.2f} s, push {m['push_s']:.2f} s, push-to-healthy "
                f"{m['push_to_healthy_s']:.2f} s (cached steps {rounds[-1]['cached_steps']})"
            )
    summary, sensor = summarize(rounds), git_sensor_medians(args.rerun_git_sensor)
    found = targets(summary)
    print(f"\n{render(summary, args.rounds)}\n\n{render_targets(found)}")
    print(f"(a daemon adds up to {SENSOR_INTERVAL_S} s: the sensor's interval; not measured)")
    write_json(args.json, _payload(rounds, summary, found, sensor))
    print(f"results written to {args.json}")
    return 0 if all(t["passed"] for t in found) else 1


if __name__ == "__main__":
    sys.exit(main())
