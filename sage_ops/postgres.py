"""PostgreSQL connection targets: DSN parsing, redaction, libpq environment, server facts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import sql

from sage_ops.child_env import child_env
from sage_ops.errors import ConfigError, DatabaseError

CONNECT_TIMEOUT_S = 10
_SCHEMES = ("postgresql", "postgres")
# Databases are created and dropped from this one; it exists on every server, RDS included.
MAINTENANCE_DB = "postgres"


@dataclass(frozen=True)
class PgTarget:
    """One database on one server. `password` never leaves this object except into a 0600 file."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, variable: str, env: Mapping[str, str] = os.environ) -> PgTarget | None:
        """The database whose URL the variable `variable` holds, or None when it is unset: the
        one place a variable becomes a target (resources' loaders and the CLI call it)."""
        url = env.get(variable)
        return cls.from_url(url, variable) if url else None

    @classmethod
    def from_url(cls, url: str, name: str = "DATABASE_URL") -> PgTarget:
        """Parse a libpq URL. The password may hold any character, percent-encoded or pasted as
        it is, so the userinfo ends at the last `@` (a raw `/`, `?` or `#` in a password ends
        RFC 3986's authority early), and no message quotes any part of the URL."""
        user, password, location = _split_userinfo(url, name)
        try:
            parts = urlsplit("//" + location)
            port = parts.port or 5432
        except ValueError:  # urllib's message would quote the port or host: maybe the password
            raise ConfigError(
                f"{name} is malformed (invalid host or port); expected {_EXAMPLE}"
            ) from None
        params = dict(_query_params(parts.query))
        socket_dir, query_password = params.pop("host", ""), params.pop("password", "")
        host = unquote(parts.hostname or "") or socket_dir
        dbname = unquote(parts.path.lstrip("/"))
        if not host:
            raise ConfigError(f"{name} has no host; expected {_EXAMPLE}")
        if not dbname or "/" in dbname:
            raise ConfigError(f"{name} names no database; expected {_EXAMPLE}")
        return cls(
            host=host,
            port=port,
            user=unquote(user) or "postgres",
            dbname=dbname,
            password=unquote(password) or query_password or None,
            params=tuple(params.items()),
        )

    def with_database(self, dbname: str) -> PgTarget:
        return replace(self, dbname=dbname)

    @property
    def redacted(self) -> str:
        """The URL as it may be shown: password replaced by ***."""
        auth = quote(self.user, safe="") + (":***" if self.password else "")
        if self.host.startswith("/"):
            return f"postgresql://{auth}@/{self.dbname}?host={self.host}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}"

    def secret_url(self) -> str:
        """The full URL, password included: only for a child process's environment."""
        auth = quote(self.user, safe="") + (
            f":{quote(self.password, safe='')}" if self.password else ""
        )
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in self.params)
        if self.host.startswith("/"):
            return f"postgresql://{auth}@/{self.dbname}?host={self.host}" + (
                f"&{query}" if query else ""
            )
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}" + (
            f"?{query}" if query else ""
        )

    def conninfo(self) -> dict[str, str | int]:
        info: dict[str, str | int] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "sage_ops",
        }
        if self.password:
            info["password"] = self.password
        info.update(dict(self.params))
        return info

    def scrub(self, text: str) -> str:
        """Remove the password from text that may echo it (tool stderr, driver messages)."""
        if self.password:
            for form in (self.password, quote(self.password, safe=""), quote(self.password)):
                text = text.replace(form, "***")
        return text


_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DBNAME"


def _split_userinfo(url: str, name: str) -> tuple[str, str, str]:
    """(user, password, the rest after `@`), still percent-encoded."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ConfigError(f"{name} must start with postgresql://; expected {_EXAMPLE}")
    userinfo, _, location = rest.rpartition("@")
    user, _, password = userinfo.partition(":")
    return user, password, location


def _query_params(query: str) -> list[tuple[str, str]]:
    """`k=v&...` percent-decoded as libpq does (a `+` stays a plus, unlike parse_qsl)."""
    pairs = (item.partition("=") for item in query.split("&") if item)
    return [(unquote(key), unquote(value)) for key, _, value in pairs]


@contextlib.contextmanager
def libpq_env(target: PgTarget) -> Iterator[dict[str, str]]:
    """Environment for libpq tools: connection in PG* variables, password in a 0600 passfile.

    Keeps the password out of argv (visible in `ps`) and out of the environment (`ps e`), and
    starts from the child allowlist, so no other secret of ours reaches the tool either.
    """
    env = child_env()
    env.update(
        PGHOST=target.host,
        PGPORT=str(target.port),
        PGUSER=target.user,
        PGDATABASE=target.dbname,
        PGCONNECT_TIMEOUT=str(CONNECT_TIMEOUT_S),
        PGAPPNAME="sage_ops",
    )
    for key, value in target.params:
        if key == "sslmode":
            env["PGSSLMODE"] = value
    if not target.password:
        yield env
        return
    with tempfile.NamedTemporaryFile("w", prefix="sage_ops_pgpass_", delete=True) as passfile:
        os.chmod(passfile.name, 0o600)
        passfile.write(f"*:*:*:*:{_pgpass_escape(target.password)}\n")
        passfile.flush()
        env["PGPASSFILE"] = passfile.name
        yield env


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def connect(target: PgTarget, autocommit: bool = True) -> psycopg.Connection:
    """Open a connection, turning driver errors into one operator-readable line."""
    try:
        return psycopg.connect(**target.conninfo(), autocommit=autocommit)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        raise DatabaseError(explain_connect_error(target, str(exc))) from None


def explain_connect_error(target: PgTarget, message: str) -> str:
    message = " ".join(line.strip() for line in target.scrub(message).splitlines() if line.strip())
    message = message or "unknown error"
    where = target.redacted
    if "password authentication failed" in message or "no password supplied" in message:
        hint = "check the user and password"
    elif re.search(r'database ".*" does not exist', message):
        hint = "check the database name"
    elif "Connection refused" in message or "No such file or directory" in message:
        hint = "is the server running and the host/port right?"
    elif "timeout" in message or "could not translate host name" in message:
        hint = "check the host name, network and security groups"
    else:
        hint = "see the server log"
    return f"cannot connect to {where}: {message} ({hint})"


def server_version(conn: psycopg.Connection) -> tuple[int, str]:
    """(major, full version string) of the connected server."""
    num = conn.info.server_version
    row = conn.execute("SHOW server_version").fetchone()
    return num // 10000, str(row[0]) if row else str(num)


def table_key(schema: str, table: str) -> str:
    """`schema.table`, a part double-quoted as in SQL when it holds `.` or `"`, so that
    `a."b.c"` and `"a.b".c` stay two keys; plain names read (and compare) as they always did."""
    return f"{_key_part(schema)}.{_key_part(table)}"


def _key_part(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if "." in name or '"' in name else name


_KEY_PART = r'(?:"(?:[^"]|"")*"|[^."]+)'
_TABLE_KEY = re.compile(rf"{_KEY_PART}\.{_KEY_PART}")


def is_table_key(key: str) -> bool:
    """Whether `key` is a table_key; earlier sage_ops versions wrote `a.b.c`, which is not."""
    return _TABLE_KEY.fullmatch(key) is not None


def table_row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row count of every user table, keyed by table_key, in the connection's snapshot."""
    return {table_key(*table): n for table, n in row_counts_by_table(conn).items()}


def row_counts_by_table(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """Exact row count of every user table by (schema, table), in the connection's snapshot."""
    tables = conn.execute(
        """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition
        ORDER BY 1, 2
        """
    ).fetchall()
    counts: dict[tuple[str, str], int] = {}
    for schema, table in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[(schema, table)] = int(row[0]) if row else 0
    return counts


@contextlib.contextmanager
def scratch_database(
    server: PgTarget, prefix: str = "sage_ops_verify", run_id: str | None = None
) -> Iterator[PgTarget]:
    """A new empty database on `server`, marked as sage_ops' own and dropped afterwards (even on
    failure); if this process is killed, the next run's leftovers.drop_leftovers drops it."""
    name = f"{prefix}_{own_tag()}"
    with own_database(server, name, SCRATCH, run_id) as scratch:
        try:
            yield scratch
        finally:
            drop_database(server, name)


SCRATCH, RESTORE = "scratch", "restore"  # the kinds of database sage_ops creates
OWN_MARK = "sage_ops:"  # how the comment of a database sage_ops created begins


@contextlib.contextmanager
def own_database(
    server: PgTarget, name: str, kind: str, run_id: str | None = None
) -> Iterator[PgTarget]:
    """Create `name` commented as sage_ops' own (kind, run, time, host) and claim it while the
    block runs: a session-level advisory lock that the server releases when this process dies,
    so a later run can tell a leftover (unclaimed, no sessions) from a database in use.

    Until the comment is written the name alone marks it: a name not ending in own_tag() is
    created under a tagged one and renamed once commented."""
    mark = {
        "kind": kind,
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    with connect(server.with_database(MAINTENANCE_DB)) as admin:
        first = name if has_own_tag(name) else f"sage_ops_new_{own_tag()}"
        for claimed in {name, first}:
            admin.execute("SELECT pg_advisory_lock(%s)", (claim_key(claimed),))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(first)))
        comment = OWN_MARK + json.dumps(mark, sort_keys=True)
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(first), sql.Literal(comment)
            )
        )
        if first != name:
            admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(first), sql.Identifier(name)
                )
            )
        yield server.with_database(name)


def own_tag() -> str:
    """12 hex digits: 6 random and 6 that only sage_ops' hash of them gives, so a name ending in
    it is recognised as sage_ops' own (a random name matches one time in 16 million)."""
    nonce = secrets.token_hex(3)
    return nonce + _tag_check(nonce)


def has_own_tag(name: str) -> bool:
    tag = name.rpartition("_")[2]
    return bool(re.fullmatch(r"[0-9a-f]{12}", tag)) and _tag_check(tag[:6]) == tag[6:]


def _tag_check(nonce: str) -> str:
    return hashlib.sha256(f"sage_ops own database {nonce}".encode()).hexdigest()[:6]


def claim_key(name: str) -> int:
    """The advisory lock key (signed 64-bit) that claims database `name`."""
    digest = hashlib.sha256(f"sage_ops database {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def drop_database(server: PgTarget, name: str) -> None:
    with connect(server.with_database(MAINTENANCE_DB)) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
