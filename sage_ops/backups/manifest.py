"""Backup naming and the JSON manifest that publishes each backup.

The manifest is written after the dump object is complete, so a dump without a manifest is an
unpublished (failed or in-flight) backup and nothing else counts it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

PLAIN = "plain"
CUSTOM = "custom"
FORMATS = (PLAIN, CUSTOM)
_SUFFIX = {PLAIN: ".sql.gz", CUSTOM: ".dump"}
MANIFEST_SUFFIX = ".manifest.json"
_MANIFEST = re.compile(r"^backup_\d{8}_\d{6}(\.sql\.gz|\.dump)\.manifest\.json$")

PENDING, PASSED, FAILED = "pending", "passed", "failed"
NIGHTLY, PRE_MIGRATION = "nightly", "pre-migration"


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
        return datetime.fromisoformat(self.started_at)

    @property
    def verified(self) -> bool:
        return self.verification.status == PASSED

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw: dict[str, Any] = json.loads(data)
        raw["verification"] = Verification(**raw.get("verification") or {})
        return cls(**raw)
