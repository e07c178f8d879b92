"""Where local probe samples and local alarm states live between sensor ticks: one SQLite file.

The sensor (in the code server) writes, triage runs (other processes) read; WAL mode lets them
do so at once. Samples older than the retention are pruned on write.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from sage_ops.incidents.evidence.base import metric_frame
from sage_ops.incidents.evidence.probes import Sample

RETENTION = timedelta(days=2)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (metric TEXT NOT NULL, at REAL NOT NULL, value REAL NOT NULL,
                                    detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS samples_metric_at ON samples (metric, at);
CREATE TABLE IF NOT EXISTS alarm_states (name TEXT PRIMARY KEY, state TEXT NOT NULL,
                                         changed_at REAL NOT NULL, reason TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredState:
    state: str
    changed_at: datetime
    reason: str


class ProbeHistory:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def record(self, samples: Iterable[Sample]) -> None:
        rows = [(s.metric, s.at.timestamp(), s.value, s.detail) for s in samples]
        cutoff = (datetime.now(UTC) - RETENTION).timestamp()
        with self._db() as db:
            db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", rows)
            db.execute("DELETE FROM samples WHERE at < ?", (cutoff,))

    def frame(self, metrics: Iterable[str], start: datetime, end: datetime) -> pd.DataFrame:
        """Samples of `metrics` between start and end (METRIC_COLUMNS)."""
        names = list(metrics)
        marks = ",".join("?" * len(names))
        with self._db() as db:
            rows = db.execute(
                f"SELECT at, metric, value FROM samples WHERE metric IN ({marks}) "
                "AND at BETWEEN ? AND ? ORDER BY at",
                (*names, start.timestamp(), end.timestamp()),
            ).fetchall()
        return metric_frame((datetime.fromtimestamp(at, UTC), m, v) for at, m, v in rows)

    def state(self, name: str) -> StoredState | None:
        with self._db() as db:
            row = db.execute(
                "SELECT state, changed_at, reason FROM alarm_states WHERE name = ?", (name,)
            ).fetchone()
        return StoredState(row[0], datetime.fromtimestamp(row[1], UTC), row[2]) if row else None

    def set_state(self, name: str, state: StoredState) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO alarm_states VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET state = excluded.state, changed_at = excluded.changed_at, "
                "reason = excluded.reason",
                (name, state.state, state.changed_at.timestamp(), state.reason),
            )
