"""Prove a stored backup is what its manifest says, and (at the full level) that it restores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sage_ops import postgres
from sage_ops.backups.compress import gunzip_chunks
from sage_ops.backups.manifest import FAILED, PASSED, PLAIN, Manifest, Verification, manifest_key
from sage_ops.backups.restore import CheckedChunks, restore_backup
from sage_ops.backups.store import BackupStore
from sage_ops.errors import ConfigError, SageOpsError, VerificationError
from sage_ops.postgres import PgTarget

CHECKSUM, FULL = "checksum", "full"
LEVELS = (CHECKSUM, FULL)


@dataclass
class VerificationReport:
    key: str
    level: str
    passed: bool
    detail: str
    restored_row_counts: dict[str, int] = field(default_factory=dict)


def check_integrity(store: BackupStore, manifest: Manifest, test_gzip: bool = True) -> None:
    """The stored object has its manifest's SHA-256 and size and (plain dumps, `test_gzip`) is
    an intact gzip stream; a changed object is reported as such, before any gzip error."""
    chunks = CheckedChunks(store, manifest)
    if not (test_gzip and manifest.format == PLAIN):
        chunks.check_rest()
        return
    try:
        for _ in gunzip_chunks(iter(chunks)):  # decompressing everything: the `gunzip -t` test
            pass
    except ValueError as exc:
        chunks.check_rest()
        raise VerificationError(f"{manifest.key}: {exc}") from None


def check_restore(
    store: BackupStore, manifest: Manifest, scratch_server: PgTarget
) -> dict[str, int]:
    """Restore into a throwaway database; return its row counts, raising on any mismatch."""
    with postgres.scratch_database(scratch_server) as scratch:
        restore_backup(store, manifest, scratch)
        with postgres.connect(scratch) as conn:
            by_table = postgres.row_counts_by_table(conn)
    merged = bool(merged_keys(manifest))
    return compare_row_counts(manifest.key, manifest.row_counts, by_table, merged)


def compare_row_counts(
    key: str, expected: dict[str, int], by_table: dict[tuple[str, str], int], merged: bool = False
) -> dict[str, int]:
    """The restored counts by table_key, raising VerificationError unless they are the dump's
    (`merged`: `expected` is keyed as older versions wrote it)."""
    restored = {postgres.table_key(*table): n for table, n in by_table.items()}
    compared = _merged_counts(by_table) if merged else restored
    diffs = [
        f"{t}: dumped {expected.get(t)} restored {compared.get(t)}"
        for t in sorted(set(expected) | set(compared))
        if expected.get(t) != compared.get(t)
    ]
    if diffs:
        raise VerificationError(f"{key}: row counts differ after restore: " + "; ".join(diffs[:10]))
    return restored


def merged_keys(manifest: Manifest) -> list[str]:
    """Keys of a manifest written before table_key: `a.b.c` may be `a."b.c"` or `"a.b".c`."""
    return sorted(k for k in manifest.row_counts if not postgres.is_table_key(k))


def _merged_counts(by_table: dict[tuple[str, str], int]) -> dict[str, int]:
    """Counts keyed as earlier versions wrote them: `schema.table`, the later of two tables
    (in the catalog query's name order) overwriting the earlier one's count."""
    return {f"{schema}.{table}": n for (schema, table), n in sorted(by_table.items())}


def verify_backup(
    store: BackupStore,
    manifest: Manifest,
    level: str,
    scratch_server: PgTarget | None,
    run_id: str | None = None,
) -> VerificationReport:
    """Verify a stored backup and record the outcome in the manifest."""
    if level not in LEVELS:
        raise ConfigError(f"verification level must be one of {', '.join(LEVELS)} (got {level!r})")
    report = VerificationReport(manifest.key, level, passed=False, detail="")
    try:
        if level == FULL:  # the restore reads the object once, checking its SHA-256 and size
            if scratch_server is None:
                raise ConfigError("full verification needs a scratch server")
            report.restored_row_counts = check_restore(store, manifest, scratch_server)
            tables = len(report.restored_row_counts)
            report.detail = f"sha256 matches; restored {tables} tables with equal row counts"
            if merged := merged_keys(manifest):
                report.detail += (
                    f" (manifest from an older sage_ops: {', '.join(merged)} compared as "
                    "written, one count for the tables sharing each key)"
                )
        else:
            check_integrity(store, manifest)
            report.detail = (
                "sha256 matches; gzip stream intact"
                if manifest.format == PLAIN
                else "sha256 matches"
            )
        report.passed = True
    except SageOpsError as exc:
        report.detail = str(exc)
    return record(store, manifest, report, run_id)


def verify_streamed(
    store: BackupStore,
    manifest: Manifest,
    restored_row_counts: dict[str, int],
    run_id: str | None = None,
) -> VerificationReport:
    """The full verification of a backup restored while it was dumped, from the blocks as they
    were stored (the restore decoded the whole gzip stream; its row counts already compared):
    the stored object, read once, must have the stream's SHA-256 and size."""
    report = VerificationReport(manifest.key, FULL, passed=False, detail="")
    try:
        check_integrity(store, manifest, test_gzip=False)
        report.restored_row_counts = restored_row_counts
        report.detail = (
            f"sha256 matches; restored while dumping: {len(restored_row_counts)} tables with "
            "equal row counts, from the bytes stored"
        )
        report.passed = True
    except SageOpsError as exc:
        report.detail = str(exc)
    return record(store, manifest, report, run_id)


def record(
    store: BackupStore, manifest: Manifest, report: VerificationReport, run_id: str | None
) -> VerificationReport:
    """Write the outcome into the manifest (so retention can trust it)."""
    manifest.verification = Verification(
        status=PASSED if report.passed else FAILED,
        level=report.level,
        checked_at=datetime.now(UTC).isoformat(),
        detail=report.detail,
        run_id=run_id,
    )
    store.put_bytes(manifest_key(manifest.key), manifest.to_json())
    return report
