"""What changed before an incident: deployments and migrations, and which ones are suspects.

The changes come from Dagster's own records (deploy runs, read in lineage/changes.py) and from
ECS service events (ecs_events.py, for deploys sage_ops did not make); here they are plain
values, so the correlation is testable without an instance. A change is a suspect when it
finished within the window before the episode, or started within the window before the first
error (still in progress, failed or rolled back included): the classic "it broke during the
deploy".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sage_ops.lineage.changes import _STATES, Change


@dataclass(frozen=True)
class Correlated:
    change: Change
    minutes_before: float  # how long before the episode started it took effect
    flagged: bool  # a suspect
    gap_to_first_error_s: float | None = None  # first error - start, when the start is known

    def describe(self) -> str:
        c = self.change
        what = c.commit[:12] or c.image or c.name
        env = f" to {c.environment}" if c.environment else ""
        via = " (ECS service event)" if c.source == "ecs" else ""
        state = f" ({_STATES[c.status]})" if c.status in _STATES else ""
        timing = []
        if c.started_at is not None and self.gap_to_first_error_s is not None:
            gap = self.gap_to_first_error_s
            timing.append(f"started {c.started_at:%Y-%m-%d %H:%M:%S} UTC")
            timing.append(f"{_span(gap)} {'before' if gap >= 0 else 'after'} the first error")
        if c.finished_at is not None or not timing:
            timing.append(f"{self.minutes_before:.0f} min before the episode started")
        return f"{c.kind} of {what}{env}{via}{state} {', '.join(timing)}"


def correlate(
    changes: list[Change],
    started: datetime,
    window: timedelta,
    first_error: datetime | None = None,
) -> list[Correlated]:
    """Changes that took effect before the episode started, newest first, suspects flagged.

    `first_error` (default: the episode start) anchors the window for deploys with a known start.
    """
    anchor = min(first_error or started, started)
    seen: set[tuple[str, str]] = set()
    found = []
    for change in sorted(changes, key=lambda c: c.at, reverse=True):
        begun = change.started_at or change.at
        if begun > started or (change.kind, change.run_id) in seen:
            continue
        seen.add((change.kind, change.run_id))
        effect = min(change.at, started)
        recent = started - effect <= window
        started_near = change.started_at is not None and anchor - change.started_at <= window
        running = change.finished_at is None
        gap = (anchor - change.started_at).total_seconds() if change.started_at else None
        found.append(
            Correlated(
                change,
                (started - effect).total_seconds() / 60,
                recent or started_near or running,
                gap,
            )
        )
    return found


def _span(seconds: float) -> str:
    seconds = abs(round(seconds))
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
