"""How far around an alarm episode the triage looks: a module of its own, without pandas, so the
settings that carry it load without the triage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Window:
    lookback: timedelta = timedelta(hours=2)  # evidence gathered before the episode started
    after: timedelta = timedelta(minutes=30)  # and after it (at most until now)
    deploy: timedelta = timedelta(minutes=30)  # a change this close before is a suspect
