"""Stream pg_dump through gzip and SHA-256 into a store; publish only a complete dump.

pg_dump runs on a snapshot exported by our own REPEATABLE READ transaction, so the row counts
taken in that transaction are exactly what the dump contains, even under concurrent writes.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Protocol

import psycopg

from sage_ops import postgres
from sage_ops.backups.compress import DEFAULT_LEVEL, gzip_chunks
from sage_ops.backups.manifest import (
    CUSTOM,
    FORMATS,
    NIGHTLY,
    PLAIN,
    Manifest,
    backup_key,
    manifest_key,
)
from sage_ops.backups.store import BackupStore, pending_key
from sage_ops.errors import BackupLocked, ConfigError, DumpError
from sage_ops.pgtools import PgTools, tools_for_server
from sage_ops.postgres import PgTarget

CHUNK = 4 * 1024 * 1024
PROGRESS_EVERY_S = 10.0
# Session advisory lock key held for the whole backup: "sageBKUP" folded into a bigint.
BACKUP_LOCK_KEY = 0x73616765424B5550
_PLAIN_FOOTER = b"-- PostgreSQL database dump complete"

Progress = Callable[[int, int, float], None]  # (raw bytes read, bytes stored, seconds)


class StoredSink(Protocol):
    """Also receives each block as it is stored, the same bytes in the same order (the restore
    of restore-while-dumping)."""

    def start(self, pg_dump_version: str) -> None: ...

    def feed(self, chunk: bytes) -> None: ...

    def finish(self, row_counts: dict[str, int]) -> None:
        """The dump (with these row counts) is complete and not yet committed to the store:
        raising refuses it."""


@dataclass(frozen=True)
class DumpOptions:
    fmt: str = PLAIN
    level: int = DEFAULT_LEVEL
    purpose: str = NIGHTLY

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ConfigError(
                f"backup format must be one of {', '.join(FORMATS)} (got {self.fmt!r})"
            )


def backup_database(
    target: PgTarget,
    store: BackupStore,
    options: DumpOptions = DumpOptions(),
    run_id: str | None = None,
    on_progress: Progress | None = None,
    sink: StoredSink | None = None,
) -> Manifest:
    """Dump `target` into `store`; return the published manifest (verification pending).

    With a `sink`, the dump is committed to the store only after `sink.finish()` returned."""
    with postgres.connect(target) as conn:
        _take_backup_lock(conn, target)
        major, version = postgres.server_version(conn)
        tools = tools_for_server(major, version)
        with conn.transaction(), ThreadPoolExecutor(1, thread_name_prefix="counts") as counter:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = _scalar(conn, "SELECT pg_export_snapshot()")
            started, key = _unused_key(store, options.fmt)
            # Counted in the dump's snapshot while pg_dump reads it (the connection is idle).
            counting = counter.submit(postgres.table_row_counts, conn)
            if sink:
                sink.start(tools.version)
            size, sha256, raw = _stream_dump(
                target, tools, snapshot, store, key, options, on_progress, sink, counting.result
            )
            row_counts = counting.result()
        finished = datetime.now(UTC)
    manifest = Manifest(
        key=key,
        format=options.fmt,
        size=size,
        sha256=sha256,
        database=target.redacted,
        pg_dump_version=tools.version,
        server_version=version,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        duration_s=round((finished - started).total_seconds(), 3),
        raw_bytes=raw,
        row_counts=row_counts,
        run_id=run_id,
        tool_choice=tools.reason,
        purpose=options.purpose,
    )
    store.put_bytes(manifest_key(key), manifest.to_json())
    store.delete([pending_key(key)])  # the manifest records it now (store.writing put the marker)
    return manifest


def _unused_key(store: BackupStore, fmt: str) -> tuple[datetime, str]:
    """A start time whose second-resolution key is free (waits out a same-second collision)."""
    for _ in range(3):
        started = datetime.now(UTC)
        key = backup_key(started, fmt)
        if not any(o.key.startswith(key) for o in store.objects()):
            return started, key
        time.sleep(1.0 - started.microsecond / 1e6)
    raise DumpError(f"{store.location(key)} already exists; refusing to overwrite it")


def _scalar(conn: psycopg.Connection, query: str) -> str:
    row = conn.execute(query).fetchone()
    return str(row[0]) if row else ""


def _take_backup_lock(conn: psycopg.Connection, target: PgTarget) -> None:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,)).fetchone()
    if not (row and row[0]):
        raise BackupLocked(
            f"another backup of {target.redacted} is running (advisory lock held); "
            "wait for it to finish"
        )


def _stream_dump(
    target: PgTarget,
    tools: PgTools,
    snapshot: str,
    store: BackupStore,
    key: str,
    options: DumpOptions,
    on_progress: Progress | None,
    sink: StoredSink | None,
    row_counts: Callable[[], dict[str, int]],
) -> tuple[int, str, int]:
    """Run pg_dump into the store; return (stored size, sha256, raw dump bytes)."""
    args = [tools.path("pg_dump"), "--no-password", f"--snapshot={snapshot}"]
    if options.fmt == CUSTOM:
        args += ["--format=custom", f"--compress={options.level}"]
    digest = hashlib.sha256()
    stored = 0
    counter = _RawCounter()
    with postgres.libpq_env(target) as env, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, env=env)
        assert proc.stdout is not None
        try:
            with store.writing(key) as writer:
                chunks = counter.wrap(_read_chunks(proc.stdout))
                output = chunks if options.fmt == CUSTOM else gzip_chunks(chunks, options.level)
                last_report = time.monotonic()
                for block in output:
                    digest.update(block)
                    writer.write(block)
                    if sink:
                        sink.feed(block)
                    stored += len(block)
                    if on_progress and time.monotonic() - last_report >= PROGRESS_EVERY_S:
                        last_report = time.monotonic()
                        on_progress(counter.total, stored, counter.elapsed)
                _check_exit(proc, stderr, target, options, counter)
                if sink:
                    sink.finish(row_counts())
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    if on_progress:
        on_progress(counter.total, stored, counter.elapsed)
    return stored, digest.hexdigest(), counter.total


def _read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


class _RawCounter:
    """Counts bytes as they come out of pg_dump and keeps the tail to check the footer."""

    def __init__(self) -> None:
        self.total = 0
        self.tail = b""
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def wrap(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.total += len(chunk)
            self.tail = (self.tail + chunk[-256:])[-256:]
            yield chunk


def _check_exit(
    proc: subprocess.Popen[bytes],
    stderr: IO[bytes],
    target: PgTarget,
    options: DumpOptions,
    counter: _RawCounter,
) -> None:
    """Raise (so the writer aborts) unless pg_dump exited 0 with a complete dump."""
    code = proc.wait()
    stderr.seek(0)
    text = target.scrub(stderr.read().decode(errors="replace")).strip()
    last = text.splitlines()[-1] if text else "no error output"
    if code < 0:
        name = signal.Signals(-code).name
        raise DumpError(f"pg_dump was killed by {name} after {counter.total} bytes: {last}")
    if code != 0:
        raise DumpError(f"pg_dump exited with code {code} after {counter.total} bytes: {last}")
    if counter.total == 0:
        raise DumpError("pg_dump exited 0 but wrote nothing")
    if options.fmt == PLAIN and _PLAIN_FOOTER not in counter.tail:
        raise DumpError("pg_dump output ends without its completion footer (truncated dump)")
