"""Child process running one sage_ops operation, so its peak RSS is sage_ops' own.

    DATABASE_URL=... python -m benchmarks.sage_child backup STORE_URL
    DATABASE_URL=... python -m benchmarks.sage_child verify STORE_URL KEY
    DATABASE_URL=... python -m benchmarks.sage_child restored_while_dumping STORE_URL FORMAT
    DATABASE_URL=... python -m benchmarks.sage_child parallel_restore STORE_URL

Prints one JSON line: the call's wall time, this process's VmHWM, and the call's result.
pg_dump and psql are children of this process and are not in its VmHWM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sage_ops import postgres
from sage_ops.backups.catalog import find_manifest
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.dump_and_verify import restored_while_dumping
from sage_ops.backups.manifest import CUSTOM, Manifest
from sage_ops.backups.restore import restore_tools
from sage_ops.backups.store import LocalStore
from sage_ops.backups.stores import open_store
from sage_ops.backups.verify import FULL, check_integrity, compare_row_counts, verify_backup
from sage_ops.embedded import scratch_server
from sage_ops.postgres import PgTarget

PARALLEL_JOBS = 2


def backup(store_url: str) -> dict[str, Any]:
    options = DumpOptions()
    manifest = backup_database(_target(), open_store(store_url), options, "benchmark", _progress)
    return _backup_details(manifest, options)


def verify(store_url: str, key: str) -> dict[str, Any]:
    """The full verification of a stored backup on its own, as the nightly's embedded scratch
    runs it (timed from the scratch's start): the work restoring while dumping adds."""
    scratch = scratch_server()
    store = open_store(store_url)
    report = verify_backup(store, find_manifest(store, key), FULL, scratch, "benchmark")
    return {"passed": report.passed, "detail": report.detail}


def restored_while(store_url: str, fmt: str) -> dict[str, Any]:
    """The nightly's full verification as it now runs: start the embedded scratch, then dump and
    restore it at once (timed from the scratch's start: the nightly pays for it too)."""
    options = DumpOptions(fmt)
    scratch = scratch_server()
    store = open_store(store_url)
    manifest, report = restored_while_dumping(_target(), store, options, scratch, "benchmark")
    return {**_backup_details(manifest, options), "passed": report.passed, "detail": report.detail}


def parallel_restore(store_url: str) -> dict[str, Any]:
    """The custom format's other way: dump, read back the stored archive, then pg_restore -j from
    the stored file (pg_restore -j cannot read a pipe), then compare row counts."""
    options = DumpOptions(CUSTOM)
    scratch_host = scratch_server()
    store = open_store(store_url)
    assert isinstance(store, LocalStore)
    manifest = backup_database(_target(), store, options, "benchmark", _progress)
    check_integrity(store, manifest)
    with postgres.scratch_database(scratch_host) as scratch:
        tools = restore_tools(scratch, manifest.pg_dump_version)
        args = [tools.path("pg_restore"), f"--jobs={PARALLEL_JOBS}", "--exit-on-error"]
        args += ["--dbname", scratch.dbname, str(store.root / manifest.key)]
        with postgres.libpq_env(scratch) as env:
            subprocess.run(args, env=env, check=True)
        with postgres.connect(scratch) as conn:
            compare_row_counts(
                manifest.key, manifest.row_counts, postgres.row_counts_by_table(conn)
            )
    return {**_backup_details(manifest, options), "passed": True, "detail": "row counts equal"}


def _backup_details(manifest: Manifest, options: DumpOptions) -> dict[str, Any]:
    return {
        "key": manifest.key,
        "size": manifest.size,
        "raw_bytes": manifest.raw_bytes,
        "pg_dump": manifest.tool_choice,
        "format": options.fmt,
        "level": options.level,
    }


def _target() -> PgTarget:
    return PgTarget.from_url(os.environ["DATABASE_URL"])


def _progress(raw: int, stored: int, seconds: float) -> None:
    print(
        f"{raw / 1e6:,.0f} MB read, {stored / 1e6:,.0f} MB stored, {seconds:.1f} s", file=sys.stderr
    )


def peak_rss_bytes() -> int:
    """VmHWM of this process (its peak resident set), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "backup": backup,
    "verify": verify,
    "restored_while_dumping": restored_while,
    "parallel_restore": parallel_restore,
}


def main(argv: list[str]) -> None:
    operation, *args = argv
    start = time.perf_counter()
    result = OPERATIONS[operation](*args)
    result["wall_s"] = time.perf_counter() - start
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
