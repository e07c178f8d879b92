"""Image sizes per layer, and the cold start of a run container, against a baseline.

    .venv/bin/python -m benchmarks.images [--baseline-ref d7a5694] [--rounds 3] [--no-cold-start]

Builds the images with infra/local/build-images.sh (cached), and the baseline sage-ops image as REF
built it: REF's tree (its Dockerfile, pyproject.toml and sage_ops, from `git archive`) and a
wheelhouse of REF's dependencies, with the local build arguments, in this invocation. The default
REF is the last commit before issue 21 slimmed the image. Prints `docker history` of each (every
layer's size and the instruction that made it) and the budgets: the backend under 200 MB, sage-ops
at most half the baseline.

Cold start: each sage-ops image is pushed to the local registry (127.0.0.1:5000) and run by a
Docker daemon of the benchmark's own, started with an empty image store (as a Fargate task pulls
afresh), as `docker run IMAGE dagster job execute -m sage_ops.definitions -j nightly_backup` with an
ephemeral instance. Measured: `docker run` to the run's first event line (RUN_START), cold (pull
included) and then warm (image cached), the median of --rounds. The daemon, its store and the
registry manifests go at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.platforms.conftest import REGISTRY, delete_manifest, manifest_digest

ROOT = Path(__file__).resolve().parents[1]
BASELINE_CONTEXT = ROOT / "infra" / "local" / ".cache" / "contexts" / "sage-ops-baseline"
BEFORE_ISSUE_21 = "d7a5694"
BASE_IMAGE = "sage-local/debian:bookworm"
IMAGES = {"backend": "sage-backend:local", "sage-ops": "sage-ops:local"}
BASELINE = "sage-ops:images-baseline"
DOCKERFILE = "infra/docker/sage-ops.Dockerfile"
MB = 1e6
BACKEND_BUDGET_MB = 200
RUN_COMMAND = ["dagster", "job", "execute", "-m", "sage_ops.definitions", "-j", "nightly_backup"]
FIRST_EVENT = re.compile(r" - [A-Z_]+ - ")
COLD_START_TIMEOUT_S = 600


@dataclass(frozen=True)
class Layer:
    size_mb: float
    created_by: str


@dataclass
class ImageResult:
    name: str
    image: str
    size_mb: float
    layers: list[Layer]
    pushed_mb: float | None = None  # compressed layers, what a pull downloads
    cold_start_s: float | None = None
    warm_start_s: float | None = None


def sh(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    return subprocess.run(
        args, capture_output=True, text=True, check=True, timeout=timeout, env=env
    ).stdout


def build(baseline_ref: str) -> None:
    print("building the images (infra/local/build-images.sh base sage-ops backend) ...", flush=True)
    sh("bash", str(ROOT / "infra/local/build-images.sh"), "base", "sage-ops", "backend")
    context = baseline_context(baseline_ref)
    print(f"building the baseline {BASELINE} from {baseline_ref}'s tree ...", flush=True)
    sh(
        "docker", "build", "-q", "-t", BASELINE, "-f", str(context / DOCKERFILE),
        "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "PG_CLIENT=pgserver",
        "--build-arg", "PIP_INSTALL_ARGS=--no-index --find-links /src", str(context),
    )  # fmt: skip


def baseline_context(ref: str) -> Path:
    """REF's tree with wheels of REF's dependencies in wheels/ (as build-images.sh makes them),
    kept while REF resolves to the same commit."""
    commit = sh("git", "-C", str(ROOT), "rev-parse", f"{ref}^{{commit}}").strip()
    stamp = BASELINE_CONTEXT / ".commit"
    if stamp.is_file() and stamp.read_text() == commit:
        return BASELINE_CONTEXT
    print(f"preparing {ref}'s tree and wheelhouse (pip wheel) ...", flush=True)
    shutil.rmtree(BASELINE_CONTEXT, ignore_errors=True)
    BASELINE_CONTEXT.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True, timeout=300
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(BASELINE_CONTEXT)], input=archive, check=True)
    wheels = BASELINE_CONTEXT / "wheels"
    sh(
        str(ROOT / ".venv/bin/python"), "-m", "pip", "wheel", "-q", "-w", str(wheels),
        str(BASELINE_CONTEXT), "setuptools>=68", "wheel",
    )  # fmt: skip
    for own in wheels.glob("sage_ops-*.whl"):
        own.unlink()  # the image builds sage_ops itself, from REF's source
    stamp.write_text(commit)
    return BASELINE_CONTEXT


def measure(name: str, image: str) -> ImageResult:
    rows = sh("docker", "history", "--no-trunc", "--format", "{{json .}}", image).splitlines()
    layers = [
        Layer(_docker_size(row["Size"]), _instruction(row["CreatedBy"]))
        for row in map(json.loads, rows)
    ]
    size = int(sh("docker", "image", "inspect", "--format", "{{.Size}}", image))
    return ImageResult(name, image, round(size / MB, 1), [x for x in layers if x.size_mb > 0])


def _docker_size(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([kMG]?B)", text).groups()  # type: ignore[union-attr]
    return round(float(number) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit] / MB, 1)


def _instruction(created_by: str) -> str:
    text = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", created_by).strip()
    return re.sub(r"\s+", " ", text)[:110]


class ColdDaemon:
    """A Docker daemon with its own, empty image store, on a socket of its own, and a bridge of
    its own (the runs use the host's network). Never `--bridge none`: a daemon started so deletes
    the host's docker0, which the machine's own engine needs."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sage-cold-docker-", dir="/var/tmp"))
        self.env = {"DOCKER_HOST": f"unix://{self.dir}/docker.sock", "PATH": "/usr/bin:/bin"}
        self.bridge = f"sgcold{uuid.uuid4().hex[:6]}"
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"10.254.{uuid.uuid4().int % 250 + 1}.1/24", "dev", self.bridge)
        self.log = (self.dir / "dockerd.log").open("w")
        self.process = subprocess.Popen(
            [
                "dockerd", "--data-root", str(self.dir / "data"),
                "--exec-root", f"/run/{self.dir.name}", "--host", self.env["DOCKER_HOST"],
                "--pidfile", str(self.dir / "dockerd.pid"), "--bridge", self.bridge,
                "--iptables=false", "--ip-masq=false",
            ],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "info"], env=self.env, capture_output=True).returncode:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the cold daemon did not start; see {self.dir}/dockerd.log")
            time.sleep(0.5)

    def first_event_s(self, image: str) -> float:
        """`docker run` to the first event line of the run's output."""
        name = f"sage-cold-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        run = subprocess.Popen(
            ["docker", "run", "--rm", "--name", name, "--network", "host",
             "-e", "DAGSTER_HOME=", image, *RUN_COMMAND],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert run.stdout is not None
            for line in run.stdout:
                if FIRST_EVENT.search(line):
                    return time.monotonic() - started
                if time.monotonic() - started > COLD_START_TIMEOUT_S:
                    break
            raise RuntimeError(f"no event from {image} (exit {run.poll()})")
        finally:
            subprocess.run(["docker", "rm", "-f", name], env=self.env, capture_output=True)
            run.wait(timeout=60)

    def forget_images(self) -> None:
        sh("docker", "image", "prune", "-af", env=self.env)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def cold_starts(results: list[ImageResult], rounds: int) -> None:
    """Median cold and warm start of each image over `rounds`, the order alternating per round so
    that load from elsewhere on the machine falls on both alike."""
    repository = f"sage-bench-images-{uuid.uuid4().hex[:8]}"
    daemon = ColdDaemon()
    refs: dict[str, str] = {}
    times: dict[str, list[tuple[float, float]]] = {r.name: [] for r in results}
    try:
        for result in results:
            ref = refs[result.name] = f"{REGISTRY}/{repository}:{result.name}"
            sh("docker", "tag", result.image, ref)
            sh("docker", "push", "-q", ref)
            sh("docker", "rmi", ref)
            result.pushed_mb = round(pushed_size(repository, result.name) / MB, 1)
        for round_ in range(rounds):
            for result in results if round_ % 2 == 0 else results[::-1]:
                print(f"round {round_ + 1}: cold start of {result.image} ...", flush=True)
                cold = daemon.first_event_s(refs[result.name])
                times[result.name].append((cold, daemon.first_event_s(refs[result.name])))
                daemon.forget_images()  # the next start pulls again, sharing no layer
        for result in results:
            result.cold_start_s = round(statistics.median(c for c, _ in times[result.name]), 1)
            result.warm_start_s = round(statistics.median(w for _, w in times[result.name]), 1)
    finally:
        daemon.stop()
        for name in refs:
            digest = manifest_digest(REGISTRY, repository, name)
            if digest:
                delete_manifest(REGISTRY, repository, digest)


def pushed_size(repository: str, tag: str) -> int:
    """The sum of the image's compressed layers, from the registry's manifest."""
    request = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return sum(layer["size"] for layer in json.loads(response.read())["layers"])


def report(results: list[ImageResult]) -> list[tuple[str, bool]]:
    for result in results:
        print(f"\n{result.name}: {result.image}, {result.size_mb:.1f} MB")
        print(f"  {'MB':>7}  layer (docker history, newest first; empty layers left out)")
        for layer in result.layers:
            print(f"  {layer.size_mb:>7.1f}  {layer.created_by}")
    by_name = {r.name: r for r in results}
    backend, new, old = by_name["backend"], by_name["sage-ops"], by_name["baseline"]
    print(f"\n{'image':<10} {'MB':>7} {'pushed MB':>10} {'cold start s':>13} {'warm start s':>13}")
    for r in (old, new, backend):
        pushed, cold, warm = (
            "" if v is None else f"{v:.1f}" for v in (r.pushed_mb, r.cold_start_s, r.warm_start_s)
        )
        print(f"{r.name:<10} {r.size_mb:>7.1f} {pushed:>10} {cold:>13} {warm:>13}")
    targets = [
        (f"backend {backend.size_mb:.1f} MB < {BACKEND_BUDGET_MB} MB", backend.size_mb < 200),
        (
            f"sage-ops {new.size_mb:.1f} MB <= half the baseline ({old.size_mb / 2:.1f} MB)",
            new.size_mb <= old.size_mb / 2,
        ),
    ]
    for name, passed in targets:
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-ref", default=BEFORE_ISSUE_21)
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="cold starts per image (median)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/images-latest.json")
    args = parser.parse_args()
    build(args.baseline_ref)
    results = [measure("baseline", BASELINE), *(measure(n, i) for n, i in IMAGES.items())]
    if not args.no_cold_start:
        cold_starts([r for r in results if r.name != "backend"], args.rounds)
    targets = report(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "baseline_ref": args.baseline_ref,
        "images": [asdict(r) for r in results],
        "targets": [{"name": n, "passed": p} for n, p in targets],
    }
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"results: {args.json.relative_to(ROOT)}")
    return 0 if all(passed for _, passed in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
