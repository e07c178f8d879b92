"""Child process running one sage_ops operation, so its peak RSS is sage_ops' own.

    DATABASE_URL=... python -m benchmarks.sage_child backup STORE_URL
    DATABASE_URL=... python -m benchmarks.sage_child verify STORE_URL KEY

Prints one JSON line: the call's wall time, this process's VmHWM, and the call's result.
pg_dump and psql are children of this process and are not in its VmHWM.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sage_ops.backups.catalog import find_manifest
from sage_ops.backups.dump import DumpOptions, backup_database
from sage_ops.backups.stores import open_store
from sage_ops.backups.verify import FULL, verify_backup
from sage_ops.postgres import MAINTENANCE_DB, PgTarget


def backup(store_url: str) -> dict[str, Any]:
    options = DumpOptions()
    manifest = backup_database(_target(), open_store(store_url), options, "benchmark", _progress)
    return {
        "key": manifest.key,
        "size": manifest.size,
        "raw_bytes": manifest.raw_bytes,
        "pg_dump": manifest.tool_choice,
        "format": options.fmt,
        "level": options.level,
    }


def verify(store_url: str, key: str) -> dict[str, Any]:
    store = open_store(store_url)
    scratch = _target().with_database(MAINTENANCE_DB)
    report = verify_backup(store, find_manifest(store, key), FULL, scratch, "benchmark")
    return {"passed": report.passed, "detail": report.detail}


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


OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {"backup": backup, "verify": verify}


def main(argv: list[str]) -> None:
    operation, *args = argv
    start = time.perf_counter()
    result = OPERATIONS[operation](*args)
    result["wall_s"] = time.perf_counter() - start
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
