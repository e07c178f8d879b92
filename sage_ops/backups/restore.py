"""Restore a stored backup into a database: psql for plain dumps, pg_restore for custom ones."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from typing import IO

from sage_ops import postgres
from sage_ops.backups.compress import gunzip_chunks
from sage_ops.backups.manifest import PLAIN, Manifest
from sage_ops.backups.store import BackupStore
from sage_ops.errors import VerificationError
from sage_ops.pgtools import tools_for_server
from sage_ops.postgres import PgTarget


def restore_backup(store: BackupStore, manifest: Manifest, target: PgTarget) -> None:
    """Load the backup into `target` in one transaction; raises VerificationError on failure."""
    with postgres.connect(target) as conn:
        major, version = postgres.server_version(conn)
    dump_major = int(manifest.pg_dump_version.split(".")[0])
    # The client must read what that pg_dump wrote and speak to this server.
    tools = tools_for_server(max(major, dump_major), version)
    if manifest.format == PLAIN:
        args = [tools.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]
        stream: Iterator[bytes] = gunzip_chunks(store.iter_chunks(manifest.key))
    else:
        args = [tools.path("pg_restore"), "--exit-on-error", "--single-transaction"]
        args += ["--dbname", target.dbname]
        stream = store.iter_chunks(manifest.key)
    with postgres.libpq_env(target) as env, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
        assert proc.stdin is not None
        try:
            _feed(proc.stdin, stream)
        except ValueError as exc:
            proc.kill()
            raise VerificationError(f"{manifest.key} is not a valid gzip stream: {exc}") from None
        finally:
            proc.wait()
        if proc.returncode != 0:
            stderr.seek(0)
            text = target.scrub(stderr.read().decode(errors="replace")).strip()
            raise VerificationError(
                f"restoring {manifest.key} into {target.redacted} failed "
                f"(exit {proc.returncode}): " + (" ".join(text.splitlines()[-2:]) or "no output")
            )


def _feed(pipe: IO[bytes], stream: Iterator[bytes]) -> None:
    try:
        for chunk in stream:
            pipe.write(chunk)
    except BrokenPipeError:
        pass  # the tool exited early; its exit code and stderr say why
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()
