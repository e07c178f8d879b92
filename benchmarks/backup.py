"""Benchmark sage_ops' backup pipeline against the seed's `pg_dump | gzip` script.

    .venv/bin/python -m benchmarks.backup [--size-gb 1.0] [--also-size-gb 3.0] [--keep-db]
        [--no-shell-extras]

See benchmarks/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks import dataset, report
from benchmarks.model import SizeRun
from benchmarks.moto import moto_s3
from benchmarks.variants import REPO, Bench, run_suite
from sage_ops import postgres
from sage_ops.pgtools import PgTools, tools_for_server
from sage_ops.postgres import PgTarget

log = logging.getLogger("benchmarks")

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backup", description=__doc__)
    parser.add_argument("--size-gb", type=float, default=1.0, help="database size in GiB")
    parser.add_argument("--also-size-gb", type=float, help="a second size, for RSS scaling")
    parser.add_argument("--keep-db", action="store_true", help="keep the databases for reuse")
    parser.add_argument(
        "--no-shell-extras",
        action="store_true",
        help="skip the gzip -1 and pigz pipelines (the bare dump and the seed's script still run)",
    )
    parser.add_argument("--server-url", default=DEFAULT_SERVER, help="server to benchmark on")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    server = PgTarget.from_url(args.server_url, "--server-url")
    tools, server_version = _server_tools(server)
    sizes = [args.size_gb] + ([args.also_size_gb] if args.also_size_gb else [])
    runs = [
        benchmark_size(server, args, size, tools, custom=i == 0) for i, size in enumerate(sizes)
    ]
    targets = report.evaluate(runs)
    print(report.render(runs, targets), flush=True)
    meta = _meta(args, tools, server_version)
    report.write_json(args.json, report.to_json(meta, runs, targets))
    print(f"\nresults written to {args.json}")


def benchmark_size(
    server: PgTarget, args: argparse.Namespace, size_gb: float, tools: PgTools, custom: bool
) -> SizeRun:
    """The suite on a database of `size_gb`; `custom`: with the custom format's rows."""
    data = dataset.ensure_database(server, size_gb)
    try:
        with (
            _workspace() as workdir,
            moto_s3("sage-bench", workdir / "moto.log") as s3_env,
            postgres.libpq_env(data.target) as pg_env,
        ):
            bench = Bench(
                database_url=_database_url(args.server_url, data.target.dbname),
                database=data.target.dbname,
                pg_dump=tools.path("pg_dump"),
                pg_env=pg_env,
                workdir=workdir,
            )
            load_before = os.getloadavg()
            results = run_suite(bench, s3_env, custom, not args.no_shell_extras)
            load = (load_before, os.getloadavg())
    finally:
        if not args.keep_db:
            log.info("dropping %s (--keep-db keeps it for the next run)", data.target.dbname)
            dataset.drop_database(server, data.target.dbname)
    return SizeRun(
        size_gb,
        data.target.dbname,
        data.db_bytes,
        data.reused,
        data.build_s,
        results,
        load,
        len(os.sched_getaffinity(0)),
    )


@contextlib.contextmanager
def _workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sage_bench_") as tmp:
        yield Path(tmp)


def _server_tools(server: PgTarget) -> tuple[PgTools, str]:
    """The pg_dump sage_ops picks for this server: every variant uses it."""
    with postgres.connect(server) as conn:
        major, version = postgres.server_version(conn)
    tools = tools_for_server(major, version)
    log.info("server %s; %s", version, tools.reason)
    return tools, version


def _database_url(server_url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{dbname}"))


def _meta(args: argparse.Namespace, tools: PgTools, server_version: str) -> dict[str, Any]:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return {
        "finished_at": datetime.now(UTC).isoformat(),
        "command": vars(args) | {"json": str(args.json)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "server_version": server_version,
        "pg_dump": {"path": tools.path("pg_dump"), "version": tools.version},
        "repo_head": head.stdout.strip() or None,
    }


if __name__ == "__main__":
    main()
