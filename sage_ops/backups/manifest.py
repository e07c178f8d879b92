"""Backup naming and the JSON manifest that publishes each backup.

The manifest is written after the dump object is complete, so a dump without a manifest is an
unpublished (failed, killed or in-flight) backup and nothing counts it; its pending marker
(store.py) names it until then, and backups/unrecorded.py sweeps what a killed run left.
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from sage_ops.errors import VerificationError

PLAIN = "plain"
CUSTOM = "custom"
FORMATS = (PLAIN, CUSTOM)
_SUFFIX = {PLAIN: ".sql.gz", CUSTOM: ".dump"}
MANIFEST_SUFFIX = ".manifest.json"
_MANIFEST = re.compile(r"^backup_\d{8}_\d{6}(\.sql\.gz|\.dump)\.manifest\.json$")

PENDING, PASSED, FAILED = "pending", "passed", "failed"
NIGHTLY, PRE_MIGRATION = "nightly", "pre-migration"
# Hosts' clocks differ by seconds; a manifest further ahead than this has an untrustworthy date.
CLOCK_TOLERANCE = timedelta(minutes=5)


def backup_key(started: datetime, fmt: str) -> str:
    """`backup_YYYYMMDD_HHMMSS.sql.gz` in UTC, as the seed's scripts named them."""
    return f"backup_{started.astimezone(UTC):%Y%m%d_%H%M%S}{_SUFFIX[fmt]}"


def manifest_key(key: str) -> str:
    return key + MANIFEST_SUFFIX


def is_manifest_key(name: str) -> bool:
    return bool(_MANIFEST.match(name))


@dataclass
class Verification:
    status: str = PENDING
    level: str | None = None
    checked_at: str | None = None
    detail: str | None = None
    run_id: str | None = None


@dataclass
class Manifest:
    key: str
    format: str
    size: int
    sha256: str
    database: str  # redacted URL
    pg_dump_version: str
    server_version: str
    started_at: str  # ISO 8601 UTC
    finished_at: str
    duration_s: float
    raw_bytes: int
    row_counts: dict[str, int]
    run_id: str | None
    tool_choice: str
    purpose: str = NIGHTLY  # or PRE_MIGRATION: taken by migrate_database before it applied anything
    created_by: str = "sage_ops"
    verification: Verification = field(default_factory=Verification)

    @property
    def started(self) -> datetime:
        """Timezone-aware: from_json refuses anything else, and dump.py writes UTC."""
        return datetime.fromisoformat(self.started_at)

    def dated_in_future(self) -> bool:
        """Started later than now (plus clock tolerance): a skewed clock wrote it."""
        return self.started > datetime.now(UTC) + CLOCK_TOLERANCE

    def check_object(self, size: int, sha256: str) -> None:
        """Raise VerificationError unless a stored object of this size and SHA-256 is this
        manifest's backup."""
        if size != self.size or sha256 != self.sha256:
            raise VerificationError(
                f"{self.key}: stored object (size {size}, sha256 {sha256[:12]}) does not match "
                f"its manifest (size {self.size}, sha256 {self.sha256[:12]})"
            )

    @property
    def verified(self) -> bool:
        return self.verification.status == PASSED

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a stored manifest; raises ManifestError saying what is wrong (never a value)."""
        try:
            raw = json.loads(data)
        except ValueError:  # also UnicodeDecodeError
            raise ManifestError("not valid JSON") from None
        if isinstance(raw, dict):
            verification = _build(Verification, raw.get("verification") or {}, "verification.")
            raw = {**raw, "verification": verification}
        manifest = _build(cls, raw)
        if manifest.format not in FORMATS:
            raise ManifestError(f"format is not one of {', '.join(FORMATS)}")
        try:
            started = datetime.fromisoformat(manifest.started_at)
        except ValueError:
            raise ManifestError("started_at is not an ISO 8601 timestamp") from None
        if started.tzinfo is None:
            raise ManifestError("started_at has no time zone")
        return manifest


class ManifestError(ValueError):
    """A stored manifest is not one sage_ops could have written."""


_T = TypeVar("_T")


def _build(cls: type[_T], raw: object, where: str = "") -> _T:
    """`cls(**raw)` once every field of the JSON object has its declared type."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where[:-1] or 'the manifest'} is {_json_kind(raw)}, not an object")
    hints = get_type_hints(cls)
    required = {f.name for f in fields(cls) if _required(f)}  # type: ignore[arg-type]
    problems = [f"{where}{name} is missing" for name in sorted(required - raw.keys())]
    problems += [f"unknown field {where}{name}" for name in sorted(raw.keys() - hints.keys())]
    problems += [
        f"{where}{name} is {_json_kind(value)}, not {_type_name(hints[name])}"
        for name, value in raw.items()
        if name in hints and not _conforms(value, hints[name])
    ]
    if problems:
        raise ManifestError("; ".join(problems))
    return cls(**raw)


def _required(f: Field[Any]) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _conforms(value: object, hint: Any) -> bool:
    origin, args = get_origin(hint), get_args(hint)
    if origin is types.UnionType:
        return any(_conforms(value, arg) for arg in args)
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()
        )
    if isinstance(value, bool):  # JSON true/false is never a number here
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number"}
    return names.get(hint) or str(hint)


def _json_kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
