"""What a benchmark run records: one Result per variant, grouped per database size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK = "ok"


@dataclass
class Result:
    key: str
    label: str
    wall_s: float | None = None
    output_bytes: int | None = None
    peak_rss_bytes: int | None = None
    cpu_s: float | None = None  # CPU seconds of all processes doing the work (backup_cpu.py)
    rss_scope: str = ""
    status: str = OK  # "ok", "failed: ..." or "not available: ..."
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass
class SizeRun:
    size_gb: float
    database: str
    db_bytes: int
    reused: bool
    build_s: float
    results: list[Result]
    load: tuple[tuple[float, ...], ...] = ()  # os.getloadavg() before and after the suite
    cpus: int = 0  # CPUs the suite could run on

    def get(self, key: str) -> Result | None:
        return next((r for r in self.results if r.key == key and r.ok), None)

    @property
    def raw_bytes(self) -> int | None:
        """Uncompressed pg_dump output, as counted by sage_ops (the same for every variant)."""
        for result in self.results:
            if result.ok and result.details.get("raw_bytes"):
                return int(result.details["raw_bytes"])
        return None
