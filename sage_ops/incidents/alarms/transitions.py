"""Which alarms entered ALARM since the sensor last looked: one incident per episode.

The cursor maps each alarm to the transition time of the last episode an incident was opened
for. An alarm that stays in ALARM keeps its transition time, so it fires once; after a recovery
and a new transition into ALARM the time differs, so it fires again - even when the OK spell
fell between two ticks. Alarms that disappear from the source are dropped from the cursor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sage_ops.incidents.alarms.alarm import ALARM, Alarm


@dataclass(frozen=True)
class Tick:
    fired: list[Alarm]
    cursor: str
    watched: int
    in_alarm: int


def evaluate_tick(alarms: list[Alarm], cursor: str | None) -> Tick:
    seen = load_cursor(cursor)
    fired: list[Alarm] = []
    kept: dict[str, str] = {}
    for alarm in alarms:
        last = seen.get(alarm.name)
        if alarm.state == ALARM and last != alarm.episode_key:
            fired.append(alarm)
            last = alarm.episode_key
        if last:
            kept[alarm.name] = last
    in_alarm = sum(a.state == ALARM for a in alarms)
    return Tick(fired, json.dumps(kept, sort_keys=True), len(alarms), in_alarm)


def load_cursor(cursor: str | None) -> dict[str, str]:
    """The cursor's map; an unreadable one (hand-edited, older format) counts as empty."""
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
