"""What changed before an incident: deployments and migrations, and which ones are suspects.

The changes come from Dagster's own records (deploy runs, read in lineage/changes.py) and from
the deploy target's own service events (its platform reads them: Deployer.service_events), for
deploys sage_ops did not make; here they are plain values, so the correlation is testable
without an instance. A rollout starts with the first event after a steady state and ends at the
next steady state; until then it is in progress. A change is a suspect when it
finished within the window before the episode, or started within the window before the first
error (still in progress, failed or rolled back included): the classic "it broke during the
deploy".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sage_ops.lineage.changes import (
    DEPLOYMENT,
    FAILURE,
    IN_PROGRESS,
    RECORDED,
    ROLLED_BACK,
    STATE_WORDS,
    SUCCESS,
    Change,
)
from sage_ops.platforms import deployer as platform

# What a platform's event means for the rollout's status.
_STATUS = {
    platform.STARTED: IN_PROGRESS,
    platform.FAILED: FAILURE,
    platform.ROLLED_BACK: ROLLED_BACK,
    platform.SETTLED: SUCCESS,
}


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
        via = f" ({c.source.upper()} service event)" if c.source != RECORDED else ""
        state = f" ({STATE_WORDS[c.status]})" if c.status in STATE_WORDS else ""
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


def rollouts(events: Iterable[platform.ServiceEvent], environment: str = "") -> list[Change]:
    """The rollouts the platform's events describe, oldest first, per service."""
    open_: dict[str, Change] = {}
    done: list[Change] = []
    for event in sorted(events, key=lambda e: e.at):
        current = open_.get(event.service)
        status = _STATUS[event.meaning]
        if status == SUCCESS:
            if current is not None:
                ended = current.status if current.status != IN_PROGRESS else SUCCESS
                done.append(replace(current, finished_at=event.at, status=ended))
                del open_[event.service]
            continue
        if current is None:
            current = Change(
                DEPLOYMENT,
                event.service or f"{event.platform.upper()} service",
                None,
                event.deployment or f"{event.service}@{event.at:%Y-%m-%dT%H:%M:%SZ}",
                IN_PROGRESS,
                environment,
                started_at=event.at,
                source=event.platform,
            )
        if status != IN_PROGRESS and current.status != ROLLED_BACK:
            current = replace(current, status=status)
        open_[event.service] = current
    return done + list(open_.values())


def not_made_by_sage_ops(seen: list[Change], ours: list[Change], now: datetime) -> list[Change]:
    """Rollouts the platform saw that overlap none of sage_ops' own deployments (those are
    listed already)."""
    spans = [
        (c.started_at or c.at, c.finished_at or now)
        for c in ours
        if c.kind == DEPLOYMENT and c.source == RECORDED
    ]
    return [
        change
        for change in seen
        if not any(
            (change.started_at or change.at) <= end and start <= (change.finished_at or now)
            for start, end in spans
        )
    ]


def _span(seconds: float) -> str:
    seconds = abs(round(seconds))
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
