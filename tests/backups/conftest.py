from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sage_ops import postgres
from sage_ops.backups.manifest import (
    PASSED,
    PLAIN,
    Manifest,
    Verification,
    backup_key,
    manifest_key,
)
from sage_ops.backups.store import BackupStore
from sage_ops.pgtools import tools_for_server

DATABASE = "postgresql://app:***@db.example.com:5432/sage"
Publish = Callable[..., Manifest]


@pytest.fixture
def publish() -> Publish:
    """Put a backup object and its manifest in a store, as a finished sage_ops run would."""

    def _publish(store: BackupStore, days_ago: float, verified: bool = True, **fields) -> Manifest:
        started = datetime(2026, 11, 20, 3, 0, tzinfo=UTC) - timedelta(days=days_ago)
        body = gzip.compress(f"-- dump taken {started}\n".encode())
        manifest = Manifest(
            key=fields.pop("key", backup_key(started, PLAIN)),
            format=PLAIN,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            database=fields.pop("database", DATABASE),
            pg_dump_version="16.2",
            server_version="16.2",
            started_at=fields.pop("started_at", started.isoformat()),
            finished_at=started.isoformat(),
            duration_s=1.0,
            raw_bytes=100,
            row_counts={},
            run_id=None,
            tool_choice="test",
            verification=Verification(status=PASSED if verified else "failed"),
        )
        store.put_bytes(manifest.key, body)
        store.put_bytes(manifest_key(manifest.key), manifest.to_json())
        return manifest

    return _publish


@pytest.fixture
def real_bin_dir(pg_server) -> Path:
    with postgres.connect(pg_server) as conn:
        return tools_for_server(*postgres.server_version(conn)).bin_dir


@pytest.fixture
def fake_pg_dump(tmp_path: Path, real_bin_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a pg_dump wrapper whose body (bash) misbehaves around the real pg_dump ($REAL)."""

    def _install(body: str) -> None:
        bin_dir = tmp_path / "fakebin"
        bin_dir.mkdir()
        script = bin_dir / "pg_dump"
        script.write_text(
            "#!/bin/bash\n"
            f'REAL="{real_bin_dir}/pg_dump"\n'
            'if [ "$1" = "--version" ]; then exec "$REAL" --version; fi\n'
            f"{body}\n"
        )
        script.chmod(0o755)
        monkeypatch.setenv("SAGE_OPS_PG_BIN_DIR", str(bin_dir))

    return _install
