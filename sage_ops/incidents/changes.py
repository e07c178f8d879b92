"""What changed before an incident: deployments and migrations, and which ones are suspects.

The changes come from Dagster's own records (see defs.py); here they are plain values, so the
correlation is testable without an instance. A change is flagged when the episode started
within the window after it finished: the classic "it broke right after the deploy".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEPLOYMENT = "deployment"
MIGRATION = "migration"


@dataclass(frozen=True)
class Change:
    kind: str  # deployment | migration
    name: str  # asset or job that recorded it
    finished_at: datetime
    run_id: str
    status: str = "SUCCESS"
    environment: str = ""
    commit: str = ""
    image: str = ""


@dataclass(frozen=True)
class Correlated:
    change: Change
    minutes_before: float  # how long before the episode started it finished
    flagged: bool  # within the suspect window

    def describe(self) -> str:
        what = self.change.commit[:12] or self.change.image or self.change.name
        env = f" to {self.change.environment}" if self.change.environment else ""
        return f"{self.change.kind} of {what}{env} {self.minutes_before:.0f} min before"


def correlate(changes: list[Change], started: datetime, window: timedelta) -> list[Correlated]:
    """Changes finished before the episode, newest first, flagged when within `window` of it."""
    seen: set[tuple[str, str]] = set()
    found = []
    for change in sorted(changes, key=lambda c: c.finished_at, reverse=True):
        if change.finished_at > started or (change.kind, change.run_id) in seen:
            continue
        seen.add((change.kind, change.run_id))
        gap = started - change.finished_at
        found.append(Correlated(change, gap.total_seconds() / 60, gap <= window))
    return found
