"""The audit trail: one JSON line per mutation (who, what, on which job / assets / partition,
the run config's digest and the keys it sets (never their values), allowed or refused, why),
appended before the mutation is forwarded, so a crash never leaves an action without its line.
In ECS the lines go to stdout, which the task ships to CloudWatch Logs; `"sage_ops_audit": 1`
finds them there."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sage_ops.gate.identity import Identity
from sage_ops.gate.policy import Decision
from sage_ops.gate.targets import Target


@dataclass(frozen=True)
class AuditEvent:
    identity: Identity | None
    action: str  # mutation field, or "POST <path>" for the REST endpoints
    targets: tuple[Target, ...]
    decision: Decision
    client: str | None = None

    def record(self, now: datetime | None = None) -> dict[str, object]:
        who = self.identity
        return {
            "sage_ops_audit": 1,
            "time": (now or datetime.now(UTC)).isoformat(timespec="milliseconds"),
            "who": who.email if who else None,
            "via": who.via if who else None,
            "groups": sorted(who.groups) if who else [],
            "action": self.action,
            "jobs": _unique(t.job for t in self.targets),
            "partitions": _unique(t.partition for t in self.targets),
            "assets": _unique(
                [*(a for t in self.targets for a in t.assets), *self.decision.assets]
            ),
            "names": _unique(t.name for t in self.targets),
            "config_digests": _unique(t.config_digest() for t in self.targets),
            "config_keys": _unique(
                k for t in self.targets for k in _or_unreadable(t.config_keys())
            ),
            "decision": "allowed" if self.decision.allowed else "refused",
            "destructive": self.decision.destructive,
            "reason": self.decision.reason or None,
            "client": self.client,
        }


class AuditLog:
    """Appends lines to a file (opened in append mode: existing lines are never rewritten) or to
    stdout. One write and flush per line, under a lock: lines never interleave."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if destination != "-":
            Path(destination).parent.mkdir(parents=True, exist_ok=True)
            self._file = Path(destination).open("a", encoding="utf-8")  # noqa: SIM115

    def write(self, event: AuditEvent) -> None:
        line = json.dumps(event.record(), separators=(",", ":")) + "\n"
        out = self._file or sys.stdout
        with self._lock:
            out.write(line)
            out.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _or_unreadable(keys: list[str] | None) -> list[str]:
    return ["(unreadable run config)"] if keys is None else keys


def _unique(values: Iterable[object]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and str(value) not in seen:
            seen.append(str(value))
    return seen
