"""Restore a dump into a scratch database while pg_dump is still writing it.

`backup_database` hands each block it stores to `StreamedRestore.feed`: the very bytes it hashes
and writes to the store. The block goes into a small queue; a thread takes it out, decompresses
it (plain: gzip members) and writes it into psql's (plain) or pg_restore's (custom) stdin. A full
queue blocks `feed`, and so the dump: a slow restore slows pg_dump instead of growing memory (at
most QUEUE_CHUNKS blocks wait). The restore thus reads the stored bytes themselves, decoded as a
later restore would decode them.

The restore is one transaction (plain: BEGIN ... COMMIT around the dump, the COMMIT sent only
once pg_dump exited 0 with a complete dump; custom: pg_restore --single-transaction), so on a
wal_level=minimal server the tables it creates are loaded without WAL. Its session also sets
synchronous_commit off and maintenance_work_mem (session level: a scratch server an operator
configured is never reconfigured). On any failure the tool is killed before its input ends, and
the scratch database is dropped either way.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from types import TracebackType

from sage_ops import postgres
from sage_ops.backups.compress import gunzip_chunks
from sage_ops.backups.manifest import PLAIN
from sage_ops.backups.restore import restore_command, restore_tools
from sage_ops.errors import VerificationError
from sage_ops.postgres import PgTarget

QUEUE_CHUNKS = 4  # stored blocks (from 4 MiB of raw dump each) waiting for the restore
_POLL_S = 0.2
_STOP = b""  # queued last: the input ends (with the COMMIT only after `finish`)


def session_options(maintenance_mem_mb: int) -> str:
    """PGOPTIONS for the restore session: settings any user may SET, on any server."""
    return f"-c synchronous_commit=off -c maintenance_work_mem={maintenance_mem_mb}MB"


class StreamedRestore:
    """The restore side of restore-while-dumping; use as a context manager around the dump."""

    def __init__(self, server: PgTarget, fmt: str, maintenance_mem_mb: int) -> None:
        self.server, self.fmt, self.maintenance_mem_mb = server, fmt, maintenance_mem_mb
        self.restored_counts: dict[tuple[str, str], int] = {}
        self._stack = contextlib.ExitStack()
        self._queue: queue.Queue[bytes] = queue.Queue(QUEUE_CHUNKS)
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._pipe_closed = threading.Event()
        self._begin = self._commit = b""
        self._complete = False  # the dump is whole: end the input with the COMMIT
        self._error: str | None = None  # why the pump stopped early (a corrupt gzip stream)

    def __enter__(self) -> StreamedRestore:
        self._stderr = self._stack.enter_context(tempfile.TemporaryFile())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._stop_tool()
        finally:
            self._stack.close()  # drops the scratch database

    def start(self, pg_dump_version: str) -> None:
        """Create the scratch database and start the restore tool in it (called once the source
        is locked); `pg_dump_version` is what wrote the stream it will read."""
        self.database = self._stack.enter_context(postgres.scratch_database(self.server))
        tools = restore_tools(self.database, pg_dump_version)
        args, self._begin, self._commit = restore_command(self.fmt, tools, self.database.dbname)
        env = self._stack.enter_context(postgres.libpq_env(self.database))
        env["PGOPTIONS"] = session_options(self.maintenance_mem_mb)
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr, env=env
        )
        self._thread = threading.Thread(target=self._pump, name="scratch-restore", daemon=True)
        self._thread.start()

    def feed(self, block: bytes) -> None:
        """Queue one stored block (blocks while the queue is full); raises if the restore
        failed."""
        self._put(block)

    def finish(self) -> None:
        """The dump is complete: commit, wait for the tool, count the restored rows."""
        self._complete = True
        self._put(_STOP)
        assert self._thread is not None and self._proc is not None
        self._thread.join()
        self._check_exit(self._proc.wait())
        if self._error:
            raise VerificationError(f"the scratch restore could not read the stream: {self._error}")
        with postgres.connect(self.database) as conn:
            self.restored_counts = postgres.row_counts_by_table(conn)

    def _put(self, item: bytes) -> None:
        while True:
            if self._pipe_closed.is_set():
                if not item:
                    return  # _STOP: the pump is already gone (finish then says why)
                assert self._proc is not None
                code = self._proc.wait()
                if self._error:
                    raise VerificationError(f"the scratch restore stopped: {self._error}")
                self._check_exit(code)  # the tool stopped reading: say why
                raise VerificationError("the scratch restore stopped reading its input")
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _blocks(self) -> Iterator[bytes]:
        while block := self._queue.get():
            yield block

    def _pump(self) -> None:
        """Thread: write the decoded blocks into the tool's stdin until _STOP or a failure. On
        a corrupt stream the tool is killed first: to it, an input that ends looks complete."""
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        decoded = gunzip_chunks(self._blocks()) if self.fmt == PLAIN else self._blocks()
        try:
            stdin.write(self._begin)
            for data in decoded:
                stdin.write(data)
            if self._complete:
                stdin.write(self._commit)
        except ValueError as exc:  # corrupt gzip (or stdin closed by _stop_tool)
            self._error = str(exc)
            self._proc.kill()
        except BrokenPipeError:  # the tool exited; its exit code says why
            pass
        finally:
            self._pipe_closed.set()
            with contextlib.suppress(BrokenPipeError, ValueError):
                stdin.close()

    def _check_exit(self, code: int) -> None:
        if code == 0:
            return
        self._stderr.seek(0)
        text = self.database.scrub(self._stderr.read().decode(errors="replace")).strip()
        raise VerificationError(
            f"the scratch restore into {self.database.redacted} failed (exit {code}): "
            + (" ".join(text.splitlines()[-2:]) or "no output")
        )

    def _stop_tool(self) -> None:
        """Kill the tool unless it exited (before its input ends: to it, an input that just
        ends may look complete), then let the pump thread finish."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)  # a pump waiting on an empty queue
        assert self._thread is not None
        self._thread.join()
