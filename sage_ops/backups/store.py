"""Where backups live: a small interface and its two backends, picked by URL.

`file:///dir` writes `<key>.partial` (0600, locked while written) and renames it into place only
on commit; `s3://bucket/prefix/` streams a manual multipart upload that is completed only on
commit and aborted otherwise. Either way a failed backup never becomes visible under its final
key; what a killed backup leaves behind is removed later by `remove_stale_partials` (local) or
the bucket's lifecycle rule (S3, which aborts incomplete multipart uploads).

Before a large object is started, `writing` puts a small `<key>.pending.json` marker beside it,
so no instant exists where an object of ours is in place without a record: until its manifest
is written the marker names it as sage_ops' own (backups/unrecorded.py sweeps what a kill left).
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sage_ops.errors import ConfigError, StoreError

READ_CHUNK = 1024 * 1024
# A partial file untouched this long, and not locked by a live writer, is a killed backup's.
STALE_PARTIAL_AFTER = timedelta(hours=6)
PENDING_SUFFIX = ".pending.json"


def pending_key(key: str) -> str:
    """The marker that records `key` as sage_ops' own while it has no manifest yet."""
    return key + PENDING_SUFFIX


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store's prefix
    size: int
    modified: datetime


class ObjectWriter(abc.ABC):
    """A write in progress: invisible until `commit`, gone after `abort`."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def abort(self) -> None: ...


class BackupStore(abc.ABC):
    url: str

    @abc.abstractmethod
    def open_writer(self, key: str) -> ObjectWriter: ...

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object atomically (manifests)."""

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def iter_chunks(self, key: str) -> Iterator[bytes]: ...

    @abc.abstractmethod
    def objects(self) -> Iterator[StoredObject]:
        """Every object under the prefix, all pages."""

    @abc.abstractmethod
    def delete(self, keys: list[str]) -> None:
        """Delete keys; raises StoreError naming every key that could not be deleted."""

    @abc.abstractmethod
    def location(self, key: str) -> str:
        """URL of an object, for people and metadata."""

    def remove_stale_partials(self) -> list[str]:
        """Remove what killed writers left behind; the names removed. Nothing to do by default."""
        return []

    def check_writable(self) -> None:
        """Write, read back and delete a probe object."""
        key = ".sage_ops_write_probe"
        self.put_bytes(key, b"probe")
        if self.get_bytes(key) != b"probe":
            raise StoreError(f"{self.url}: probe object read back differently")
        self.delete([key])

    def exists(self, key: str) -> bool:
        return any(obj.key == key for obj in self.objects())

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[ObjectWriter]:
        """Commit on success, abort on any exception (including KeyboardInterrupt).

        A pending marker is put first and stays after the commit: whoever publishes the
        object's record (its manifest) clears it; on failure both go."""
        self.put_bytes(pending_key(key), _pending_marker(key))
        writer = self.open_writer(key)
        try:
            yield writer
            writer.commit()
        except BaseException:
            writer.abort()  # idempotent: also cleans up after a failed commit
            with contextlib.suppress(StoreError):
                self.delete([pending_key(key)])
            raise


def _pending_marker(key: str) -> bytes:
    record = {
        "created_by": "sage_ops",
        "key": key,
        "started_at": datetime.now(UTC).isoformat(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    return json.dumps(record, sort_keys=True).encode()


class LocalStore(BackupStore):
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(f"file store URL must be file:///absolute/dir (got {url!r})")
        self.root = Path(unquote(parts.path))
        self.url = f"file://{self.root}/"

    def _path(self, key: str) -> Path:
        return self.root / key

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(
                f"cannot create backup directory {self.root}: {exc.strerror}"
            ) from None

    def open_writer(self, key: str) -> ObjectWriter:
        self._ensure_root()
        return _LocalWriter(self._path(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        writer = self.open_writer(key)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_chunks(key))

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        try:
            with open(self._path(key), "rb") as f:
                while chunk := f.read(READ_CHUNK):
                    yield chunk
        except OSError as exc:
            raise StoreError(f"cannot read {self.location(key)}: {exc.strerror}") from None

    def objects(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_file() and not entry.name.endswith(_PARTIAL):
                st = entry.stat()
                yield StoredObject(entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime))

    def delete(self, keys: list[str]) -> None:
        failed = []
        for key in keys:
            try:
                self._path(key).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed.append(f"{key} ({exc.strerror})")
        if failed:
            raise StoreError(f"could not delete from {self.url}: {', '.join(failed)}")

    def location(self, key: str) -> str:
        return f"file://{self._path(key)}"

    def remove_stale_partials(self) -> list[str]:
        """`.partial` files not written for STALE_PARTIAL_AFTER and not locked by a writer."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - STALE_PARTIAL_AFTER.total_seconds()
        removed = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            stale = entry.is_file() and entry.stat().st_mtime < cutoff
            if entry.name.endswith(_PARTIAL) and stale and _remove_unlocked(Path(entry.path)):
                removed.append(entry.name)
        return removed


_PARTIAL = ".partial"


def _remove_unlocked(path: Path) -> bool:
    """Unlink `path` unless a live writer holds its lock (a writer's lock dies with it)."""
    try:
        with open(path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()  # while locked: a writer cannot start on it in between
        return True
    except OSError:  # locked (BlockingIOError), already gone, or not ours to remove
        return False


class _LocalWriter(ObjectWriter):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + _PARTIAL)
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot write {self.tmp}: {exc.strerror}") from None
        try:  # the lock tells remove_stale_partials (and a second writer) this file is live
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.tmp} is being written by another backup") from None
        os.ftruncate(fd, 0)  # only now: never truncate another writer's file
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            raise StoreError(f"cannot write {self.tmp}: {exc.strerror}") from None

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            self.abort()
            raise StoreError(f"cannot publish {self.path}: {exc.strerror}") from None

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
