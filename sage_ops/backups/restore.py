"""Restore a stored backup into a database, all or nothing: psql for plain dumps, pg_restore for
custom ones.

Nothing is committed unless every stored byte was read and matched the manifest. A database
that is not empty is never restored into: the backup goes into a new database, which takes the
target's name in one transaction, so a failure or a kill at any point leaves the target as it was,
under its own name and accepting connections.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from sage_ops import postgres
from sage_ops.backups.compress import gunzip_chunks
from sage_ops.backups.manifest import PLAIN, Manifest
from sage_ops.backups.store import BackupStore
from sage_ops.errors import ConfigError, DatabaseError, SageOpsError, VerificationError
from sage_ops.leftover_databases import drop_leftovers
from sage_ops.pgtools import BIN_DIR_ENV, PgTools, tools_for_server
from sage_ops.postgres import PgTarget

NAME_MAX_BYTES = 63  # PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1)
SWAP_ATTEMPTS = 3
_STAMP = "%Y%m%d%H%M%S"  # UTC, in the names of replacement and kept databases
Log = Callable[[str], None]


def same_database(url: str, target: PgTarget) -> bool:
    """Whether a manifest's (redacted) database URL names `target`'s database: same host, port
    and database name, whichever user took the backup."""
    try:
        other = PgTarget.from_url(url)
    except ConfigError:
        return False
    return (other.host.lower(), other.port, other.dbname) == (
        target.host.lower(),
        target.port,
        target.dbname,
    )


def restore_backup(store: BackupStore, manifest: Manifest, target: PgTarget) -> None:
    """Load the backup into `target` in one transaction, committed only after the whole stored
    object was read and matched its manifest; raises VerificationError otherwise."""
    tools = restore_tools(target, manifest.pg_dump_version)
    chunks = CheckedChunks(store, manifest)
    args, begin, commit = restore_command(manifest.format, tools, target.dbname)
    # pg_restore commits only after the archive's last bytes, which CheckedChunks holds
    # back until the checksum matched; an archive that ends early is an error, rolled back.
    raw = gunzip_chunks(iter(chunks)) if manifest.format == PLAIN else iter(chunks)
    stream: Iterator[bytes] = itertools.chain([begin], raw, [commit])
    with postgres.libpq_env(target) as env, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
        try:
            _feed(proc, stream)
        except ValueError as exc:
            chunks.check_rest()  # an object changed since its manifest is named as such
            raise VerificationError(f"{manifest.key} is not a valid gzip stream: {exc}") from None
        finally:
            proc.wait()
        if proc.returncode != 0:
            chunks.check_rest()  # a changed object, not the tool, is then what failed
            stderr.seek(0)
            text = target.scrub(stderr.read().decode(errors="replace")).strip()
            raise VerificationError(
                f"restoring {manifest.key} into {target.redacted} failed "
                f"(exit {proc.returncode}): "
                + (" ".join(text.splitlines()[-2:]) or "no output")
                + _older_client_hint(text, tools.version, manifest.pg_dump_version)
            )


def restore_tools(target: PgTarget, pg_dump_version: str) -> PgTools:
    """Client tools that read what that pg_dump wrote and speak to `target`'s server."""
    with postgres.connect(target) as conn:
        major, version = postgres.server_version(conn)
    dump_major = int(pg_dump_version.split(".")[0])
    return tools_for_server(max(major, dump_major), version, pg_dump_version)


def restore_command(fmt: str, tools: PgTools, dbname: str) -> tuple[list[str], bytes, bytes]:
    """The tool reading a dump of `fmt` on stdin into `dbname`, in one transaction, and the
    bytes to send before and after the dump (plain: BEGIN and COMMIT)."""
    if fmt == PLAIN:
        # Not --single-transaction: psql commits that when its input ends, and input also ends
        # when this process dies. A transaction left open without our COMMIT is rolled back.
        psql = [tools.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        return psql, b"BEGIN;\n", b"\nCOMMIT;\n"
    args = [tools.path("pg_restore"), "--exit-on-error", "--single-transaction"]
    return [*args, "--dbname", _conninfo_dbname(dbname)], b"", b""


def _older_client_hint(stderr: str, client: str, dump: str) -> str:
    if "invalid command \\restrict" not in stderr:
        return ""
    return (
        f"; the backup was written by pg_dump {dump} and psql {client} is older: install "
        f"client tools {dump} or newer (or point {BIN_DIR_ENV} at them)"
    )


def _conninfo_dbname(dbname: str) -> str:
    """`dbname='...'` quoted for libpq: a bare name containing "=" would be read as a conninfo.
    Host, port, user and password still come from the environment libpq_env made."""
    return "dbname='" + dbname.replace("\\", "\\\\").replace("'", "\\'") + "'"


class CheckedChunks:
    """The stored object's chunks, the last one only once the whole object matched the
    manifest's size and SHA-256 (a stream cut short can still be a valid gzip or SQL)."""

    def __init__(self, store: BackupStore, manifest: Manifest) -> None:
        self.manifest = manifest
        self._chunks = store.iter_chunks(manifest.key)
        self._digest, self._size = hashlib.sha256(), 0

    def __iter__(self) -> Iterator[bytes]:
        held = None
        for chunk in self._read():
            if held is not None:
                yield held
            held = chunk
        self._check()
        if held is not None:
            yield held

    def check_rest(self) -> None:
        """Read what the consumer left and raise if the object is not the manifest's."""
        for _ in self._read():
            pass
        self._check()

    def _read(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._digest.update(chunk)
            self._size += len(chunk)
            yield chunk

    def _check(self) -> None:
        self.manifest.check_object(self._size, self._digest.hexdigest())


def _feed(proc: subprocess.Popen[bytes], stream: Iterator[bytes]) -> None:
    """Write the stream into the tool. On any failure the tool is killed before its input is
    closed: to the tool, an input that just ends looks complete."""
    assert proc.stdin is not None
    try:
        for chunk in stream:
            proc.stdin.write(chunk)
    except BrokenPipeError:
        pass  # the tool exited early; its exit code and stderr say why
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()


@dataclass(frozen=True)
class RestoreOutcome:
    database: str
    replaced: bool
    previous_kept_as: str | None  # the replaced database, renamed and kept for rollback


def restore_into(
    store: BackupStore,
    manifest: Manifest,
    target: PgTarget,
    confirm: str,
    log: Log,
    run_id: str | None = None,
) -> RestoreOutcome:
    """Restore into `target`, leaving it as it was if anything fails.

    An existing empty database is restored into directly. Otherwise the backup is restored into
    a new database that then takes the target's name; a live target (one with tables) is
    replaced only when `confirm` equals its name, and is kept under a new name."""
    server = target.with_database(postgres.MAINTENANCE_DB)
    tables = _table_count(target) if _exists(server, target.dbname) else None
    if tables == 0:
        log(f"{target.dbname} is empty: restoring into it in one transaction")
        restore_backup(store, manifest, target)
        return RestoreOutcome(target.dbname, replaced=False, previous_kept_as=None)
    if tables and confirm != target.dbname:
        raise ConfigError(
            f"{target.redacted} has {tables} tables; restoring over a live database "
            f"replaces it: set confirm to {target.dbname!r} to proceed"
        )
    _drop_leftovers(server, log)
    stamp = _stamp()
    replacement = _free_name(server, target.dbname, f"_restore_{stamp}")
    kept = _free_name(server, target.dbname, f"_before_restore_{stamp}") if tables else None
    log(
        f"restoring into new database {replacement} first; {target.dbname} stays as it is until, "
        "in one transaction, "
        + (f"its sessions are ended, it is renamed to {kept} and " if kept else "")
        + f"{replacement} takes its name (if this run is killed before, the next restore or "
        "`sage-ops backups cleanup --yes` drops it)"
    )
    with postgres.own_database(server, replacement, postgres.RESTORE, run_id):
        try:
            restore_backup(store, manifest, target.with_database(replacement))
            _swap_in(server, target.dbname, replacement, kept)
        except BaseException:
            _discard(server, replacement, log)
            raise
    return RestoreOutcome(target.dbname, replaced=kept is not None, previous_kept_as=kept)


def _stamp() -> str:
    return datetime.now(UTC).strftime(_STAMP)


def _fit(base: str, suffix: str) -> str:
    """`base` + `suffix` within 63 bytes: a long base is shortened (to whole characters) and
    tagged with its hash, so that long names sharing a beginning stay distinct."""
    if len((base + suffix).encode()) <= NAME_MAX_BYTES:
        return base + suffix
    tag = "_" + hashlib.sha256(base.encode()).hexdigest()[:8]
    room = NAME_MAX_BYTES - len((tag + suffix).encode())
    return base.encode()[:room].decode(errors="ignore") + tag + suffix


def _free_name(server: PgTarget, base: str, suffix: str) -> str:
    """`_fit(base, suffix)`, refused when a database has that name already."""
    name = _fit(base, suffix)
    if _exists(server, name):
        raise ConfigError(
            f"database {name} already exists (from an earlier restore?); nothing was changed: "
            "drop or rename it, or retry in a second"
        )
    return name


def _drop_leftovers(server: PgTarget, log: Log) -> None:
    """Drop the databases killed restores on this server left behind (a restore still running
    in another process claims its own, and is left alone)."""
    for db in drop_leftovers(server, (postgres.RESTORE,)):
        log(f"dropped {db.name} ({db.size / 1e6:,.1f} MB), left by an interrupted restore")


def _swap_in(server: PgTarget, live: str, replacement: str, kept: str | None) -> None:
    """Give `replacement` the name `live`; the current `live` (if `kept`) is renamed to `kept` in
    the same transaction, after its sessions were ended. Both renames happen or neither, and
    connections are never disabled, so any failure or kill leaves `live` as it was."""
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            with postgres.connect(server) as conn, conn.transaction():
                if kept:
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (live,),
                    )
                    conn.execute(_rename(live, kept))
                conn.execute(_rename(replacement, live))
                # It is the live database now: no longer a leftover for anyone to drop.
                conn.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(live)))
            return
        except psycopg.errors.ObjectInUse as exc:
            # A client reconnected between the end of its session and the rename's lock.
            if attempt == SWAP_ATTEMPTS:
                raise DatabaseError(
                    f"{live} still had sessions after {attempt} attempts "
                    f"({exc.diag.message_detail or exc}); nothing was renamed"
                ) from None
        except psycopg.Error as exc:
            raise DatabaseError(
                f"renaming {replacement} to {live} failed: {server.scrub(str(exc))}; "
                "nothing was renamed"
            ) from None


def _rename(old: str, new: str) -> sql.Composed:
    return sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
        sql.Identifier(old), sql.Identifier(new)
    )


def _table_count(target: PgTarget) -> int:
    with postgres.connect(target) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
            "'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
        ).fetchone()
    return int(row[0]) if row else 0


def _exists(server: PgTarget, name: str) -> bool:
    with postgres.connect(server) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def _discard(server: PgTarget, name: str, log: Log) -> None:
    """Drop the half-restored database; if even that fails, say what is left."""
    try:
        postgres.drop_database(server, name)
    except (SageOpsError, psycopg.Error):
        log(f"could not drop {name} after the failed restore: drop it by hand")
