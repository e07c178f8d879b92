"""The triage CLI's work, streamed: classify every line of a log (`sage-ops triage classify`),
or run the whole triage on it (`sage-ops triage analyze`): root cause, first error time, counts
per cause, deploy suspects (ECS service events in the log, and this Dagster instance's deploy
runs when DAGSTER_HOME is set), fixes.

Memory does not grow with the input: lines are grouped into capped entries (entries.py), and
per cause only a count, the first time and a few examples are kept (root_causes.Hits).
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import BinaryIO, TextIO

from sage_ops.incidents.alarms.alarm import ALARM, Alarm
from sage_ops.incidents.classification import categories as c
from sage_ops.incidents.classification.categories import classify_text
from sage_ops.incidents.classification.entries import Entry, group
from sage_ops.incidents.classification.root_causes import Evidence, Finding, Hits, findings
from sage_ops.incidents.classification.timestamps import find_time
from sage_ops.incidents.evidence.changes import Correlated, correlate, rollouts
from sage_ops.incidents.evidence.log_input import export_events, is_export, lines
from sage_ops.lineage.changes import Change
from sage_ops.platforms.deployer import ServiceEvent
from sage_ops.platforms.ecs.events import parse_event

SUSPECT_WINDOW = timedelta(minutes=30)


def classify_lines(stream: BinaryIO, out: TextIO, as_json: bool) -> Counter[str]:
    """One output line per input line (every line of an entry gets the entry's category);
    returns the number of entries per category."""
    counts: Counter[str] = Counter()
    for entry in group(lines(stream)):
        category = classify_text(entry.text)
        counts[category] += 1
        texts = entry.text.split("\n")
        for offset in range(entry.lines):
            number = entry.line + offset
            if as_json:
                out.write(json.dumps({"line": number, "category": category}) + "\n")
            else:
                out.write(f"{number}\t{category}\t{texts[offset][:200]}\n")
    return counts


def summary(counts: Counter[str]) -> str:
    total = sum(counts.values())
    rows = [f"{n:>9}  {name}" for name, n in counts.most_common()]
    return "\n".join([f"{total} entries:", *rows])


@dataclass
class LogAnalysis:
    lines: int = 0
    entries: int = 0
    hits: dict[str, Hits] = field(default_factory=dict)
    events: list[ServiceEvent] = field(default_factory=list)

    @property
    def first_error(self) -> datetime | None:
        return min((h.first_seen for h in self.hits.values() if h.first_seen), default=None)

    def add(self, entry: Entry, when: Callable[[], datetime | None]) -> None:
        """Count one entry; `when` gives its time, asked only for a cause or a rollout."""
        self.lines += entry.lines
        self.entries += 1
        category = classify_text(entry.text)
        if category != c.UNKNOWN:
            self.hits.setdefault(category, Hits()).add(when(), entry.text)
        elif "service" in entry.text or "SERVICE_DEPLOYMENT" in entry.text:
            at = when()
            event = parse_event(at, entry.text) if at else None
            if event is not None:
                self.events.append(event)


def analyze(stream: BinaryIO, year: int | None = None) -> LogAnalysis:
    """Read a plain log or a CloudWatch Logs export; times missing on a line are the previous
    entry's (a continuation of the same moment)."""
    analysis = LogAnalysis()
    if is_export(stream.peek(4096)[:4096]):  # type: ignore[attr-defined]
        for entry, at in _export_entries(stream):
            analysis.add(entry, partial(_given, at))
        return analysis
    clock = _Clock(year or datetime.now(UTC).year)
    for entry in group(lines(stream)):
        clock.passed(entry.text)
        analysis.add(entry, clock.now)
    return analysis


def _given(at: datetime | None) -> datetime | None:
    return at


class _Clock:
    """Plain-log times, read only when an entry needs one (a few in a whole log): from the
    entry itself, else from the nearest entry before it that states a time."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.last: datetime | None = None
        self.unread: deque[str] = deque(maxlen=64)

    def passed(self, text: str) -> None:
        self.unread.append(text)

    def now(self) -> datetime | None:
        while self.unread:
            if at := find_time(self.unread.pop(), self.year):
                self.last = at
                break
        self.unread.clear()
        return self.last


def _export_entries(stream: BinaryIO) -> Iterator[tuple[Entry, datetime | None]]:
    times: dict[int, datetime] = {}
    for entry in group(_export_lines(export_events(stream), times)):
        stamps = [times.pop(n) for n in range(entry.line, entry.line + entry.lines) if n in times]
        yield entry, stamps[0] if stamps else None


def _export_lines(
    events: Iterable[tuple[datetime | None, str]], times: dict[int, datetime]
) -> Iterator[str]:
    number = 0
    for at, message in events:
        for index, line in enumerate(message.split("\n")):
            number += 1
            if index == 0 and at is not None:
                times[number] = at
            yield line


@dataclass(frozen=True)
class Report:
    analysis: LogAnalysis
    findings: list[Finding]
    suspects: list[Correlated]
    notes: list[str]


def report(analysis: LogAnalysis, changes: list[Change], notes: list[str]) -> Report:
    started = analysis.first_error or datetime.now(UTC)
    alarm = Alarm("log analysis", ALARM, started, "log file", "", 0.0, "", 60, 1, 1)
    changes = [*changes, *rollouts(analysis.events)]
    suspects = correlate(changes, started, SUSPECT_WINDOW, analysis.first_error)
    ev = Evidence(alarm, started, None, None, suspects)
    return Report(analysis, findings(ev, analysis.hits), suspects, notes)


def render(r: Report) -> str:
    a, top = r.analysis, r.findings[0]
    out = [
        f"{a.lines} lines, {a.entries} entries, "
        f"{sum(h.count for h in a.hits.values())} with a known cause",
        "",
        f"Root cause: {top.title} (confidence {top.confidence})",
        f"  {top.cause}",
        f"First error: {_when(a.first_error)}",
        "",
        "Counts (entries per cause, first seen):",
    ]
    out += [
        f"  {h.count:>8}  {name:<26} {_when(h.first_seen)}"
        for name, h in sorted(a.hits.items(), key=lambda kv: -kv[1].count)
    ] or ["  none"]
    flagged = [s for s in r.suspects if s.flagged]
    out += ["", "Suspects (changes just before or during the incident):"]
    out += [f"  - {s.describe()}" for s in flagged] or ["  none found"]
    out += ["", "Evidence:"] + [f"  - {e}" for e in top.evidence[:6]]
    for stage, fixes in (
        ("Immediate fix", top.immediate),
        ("Long-term fix", top.long_term),
        ("Prevention", top.prevention),
    ):
        out += ["", f"{stage}:"] + [f"  - {f}" for f in fixes]
    if len(r.findings) > 1:
        out += ["", "Other candidates:"]
        out += [f"  - {f.title} ({f.lines} entries)" for f in r.findings[1:]]
    out += [f"\nNote: {n}" for n in r.notes]
    return "\n".join(out)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "unknown (no timestamps)"
