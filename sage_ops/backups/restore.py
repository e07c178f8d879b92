"""Restore a stored backup into a database: psql for plain dumps, pg_restore for custom ones."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from psycopg import sql

from sage_ops import postgres
from sage_ops.backups.compress import gunzip_chunks
from sage_ops.backups.manifest import PLAIN, Manifest
from sage_ops.backups.store import BackupStore
from sage_ops.errors import ConfigError, VerificationError
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


@dataclass(frozen=True)
class RestoreOutcome:
    database: str
    replaced: bool
    previous_kept_as: str | None  # the replaced database, renamed and kept for rollback


def restore_into(
    store: BackupStore, manifest: Manifest, target: PgTarget, confirm: str
) -> RestoreOutcome:
    """Restore into `target`: directly if it is new or empty; over a live database only when
    `confirm` equals its name, by restoring into a new database and swapping the names, so the
    live one is kept (renamed) rather than overwritten."""
    server = target.with_database(postgres.MAINTENANCE_DB)
    if not _exists(server, target.dbname):
        _create(server, target.dbname)
    with postgres.connect(target) as conn:
        tables = postgres.table_row_counts(conn)
    if not tables:
        restore_backup(store, manifest, target)
        return RestoreOutcome(target.dbname, replaced=False, previous_kept_as=None)
    if confirm != target.dbname:
        raise ConfigError(
            f"{target.redacted} has {len(tables)} tables; restoring over a live database "
            f"replaces it: set confirm to {target.dbname!r} to proceed"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    staging = target.with_database(f"{target.dbname[:40]}_restore_{stamp}")
    kept = f"{target.dbname[:40]}_before_restore_{stamp}"
    _create(server, staging.dbname)
    try:
        restore_backup(store, manifest, staging)
    except BaseException:
        _drop(server, staging.dbname)
        raise
    _swap(server, live=target.dbname, replacement=staging.dbname, kept=kept)
    return RestoreOutcome(target.dbname, replaced=True, previous_kept_as=kept)


def _exists(server: PgTarget, name: str) -> bool:
    with postgres.connect(server) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def _create(server: PgTarget, name: str) -> None:
    with postgres.connect(server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop(server: PgTarget, name: str) -> None:
    with postgres.connect(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _swap(server: PgTarget, live: str, replacement: str, kept: str) -> None:
    """Rename live -> kept and replacement -> live; connections to live are ended first."""
    with postgres.connect(server) as conn:
        allow = sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}")
        conn.execute(allow.format(sql.Identifier(live), sql.SQL("false")))  # no reconnects
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (live,),
        )
        rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
        conn.execute(rename.format(sql.Identifier(live), sql.Identifier(kept)))
        conn.execute(rename.format(sql.Identifier(replacement), sql.Identifier(live)))
        conn.execute(allow.format(sql.Identifier(kept), sql.SQL("true")))
