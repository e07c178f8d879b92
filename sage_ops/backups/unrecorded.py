"""Backups sage_ops wrote but never recorded: found by name and pending marker, removed after grace.

A run killed between starting an object and writing its manifest leaves the object (or, in S3,
an upload that never completes) with its `.pending.json` marker and no manifest. Nothing counts
such an object: the sweep removes it (object first, marker last, so a kill mid-sweep leaves it
findable) once its marker is older than the grace period, which outlasts any backup still being
written. A marker whose manifest exists is just cleared. An object named like a backup with
neither manifest nor marker (written by an older sage_ops, or by hand) is only reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sage_ops.backups.manifest import manifest_key
from sage_ops.backups.store import PENDING_SUFFIX, BackupStore, pending_key
from sage_ops.errors import StoreError

# Longer than a backup of the largest database takes, shorter than the nightly interval.
UNRECORDED_GRACE = timedelta(hours=12)
_BACKUP_OBJECT = re.compile(r"^backup_\d{8}_\d{6}(\.sql\.gz|\.dump)$")


@dataclass
class Sweep:
    removed: list[str] = field(default_factory=list)  # unrecorded backups deleted
    waiting: list[str] = field(default_factory=list)  # unrecorded, still within the grace period
    unmarked: list[str] = field(default_factory=list)  # backup-named, no manifest, no marker
    cleared: list[str] = field(default_factory=list)  # markers of backups whose manifest exists

    def warnings(self, grace: timedelta = UNRECORDED_GRACE) -> list[str]:
        hours = f"{grace.total_seconds() / 3600:g} h"
        return (
            [
                f"removed {k}: written by a sage_ops run that died before its manifest"
                for k in self.removed
            ]
            + [
                f"{k} has no manifest yet: being written, or left by a killed run (removed when "
                f"its pending marker is {hours} old)"
                for k in self.waiting
            ]
            + [
                f"{k} looks like a backup but has no manifest and no sage_ops pending marker: not "
                "counted, not deleted; delete it by hand if nobody needs it"
                for k in self.unmarked
            ]
        )


def pending_keys(keys: set[str]) -> set[str]:
    """The backups that have a pending marker among `keys`."""
    return {k.removesuffix(PENDING_SUFFIX) for k in keys if k.endswith(PENDING_SUFFIX)}


def unrecorded(keys: set[str]) -> list[str]:
    """Backups in the store without a manifest: pending ones and backup-named unmarked ones."""
    objects = pending_keys(keys) | {k for k in keys if _BACKUP_OBJECT.match(k)}
    return sorted(k for k in objects if manifest_key(k) not in keys)


def sweep_unrecorded(
    store: BackupStore, grace: timedelta = UNRECORDED_GRACE, now: datetime | None = None
) -> Sweep:
    now = now or datetime.now(UTC)
    keys = {obj.key for obj in store.objects()}
    sweep = Sweep()
    for key in sorted(pending_keys(keys)):
        if manifest_key(key) in keys:
            sweep.cleared.append(key)
        elif (marked := _marked_at(store, key)) is None or now - marked < grace:
            sweep.waiting.append(key)
        else:
            store.delete([key])
            sweep.removed.append(key)
    store.delete([pending_key(k) for k in sweep.cleared + sweep.removed])
    sweep.unmarked = [k for k in unrecorded(keys) if k not in pending_keys(keys)]
    return sweep


def _marked_at(store: BackupStore, key: str) -> datetime | None:
    """When the marker says the write started; None (never removed) when sage_ops did not
    write it or it cannot be read."""
    try:
        record = json.loads(store.get_bytes(pending_key(key)))
        if record.get("created_by") != "sage_ops" or record.get("key") != key:
            return None
        started = datetime.fromisoformat(record["started_at"])
    except (StoreError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return started if started.tzinfo else None
