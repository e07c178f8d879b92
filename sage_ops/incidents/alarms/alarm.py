"""What an alarm is, whatever watches it (CloudWatch or local probes), and its episodes.

An episode is one stay in ALARM: it starts when the alarm transitions into ALARM. Its key
(alarm name + transition time) is the idempotency key of everything done about it: the sensor's
run key and the `incident_report` partition.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ALARM = "ALARM"
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"

_KEY_TIME = "%Y-%m-%dT%H:%M:%S.%f"


@dataclass(frozen=True)
class Alarm:
    """One alarm as a source reports it now. `changed_at` is its last state transition (UTC)."""

    name: str
    state: str
    changed_at: datetime
    reason: str
    metric: str  # what it watches, in the operator's words: "AWS/ECS CPUUtilization (Average)"
    threshold: float
    comparison: str  # CloudWatch's ComparisonOperator names
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    spec: Mapping[str, Any] = field(default_factory=dict)  # the source's own definition

    @property
    def episode_key(self) -> str:
        return episode_key(self.name, self.changed_at)

    @property
    def window_s(self) -> int:
        """How far back the evaluation that fired looked: period x evaluation periods."""
        return self.period_s * self.evaluation_periods


class AlarmSource(abc.ABC):
    """Where alarms and their states come from: CloudWatch, or local probes evaluated here."""

    kind: str

    @abc.abstractmethod
    def alarms(self) -> list[Alarm]:
        """Every alarm this source watches, with its current state."""

    def alarm(self, name: str) -> Alarm | None:
        return next((a for a in self.alarms() if a.name == name), None)


def episode_key(name: str, changed_at: datetime) -> str:
    """`<alarm>@<UTC transition time, ms>`: unique per episode, valid as a Dagster partition key."""
    stamp = changed_at.astimezone(UTC).strftime(_KEY_TIME)[:-3] + "Z"
    return f"{name.replace('...', '..')}@{stamp}"


def parse_episode_key(key: str) -> tuple[str, datetime]:
    """(alarm name, transition time) of an episode key."""
    name, _, stamp = key.rpartition("@")
    if not name or not stamp.endswith("Z"):
        raise ValueError(f"not an incident key (expected <alarm>@<UTC time>): {key!r}")
    return name, datetime.strptime(stamp[:-1] + "000", _KEY_TIME).replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC, as CloudWatch and PostgreSQL mean)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
