"""Every database sage_ops creates is marked as its own from the moment it exists; a killed run's
is dropped by the next run (or `sage-ops backups cleanup --yes`) once no session uses it, and a
database a live run still claims is never touched."""

import json
import os
import subprocess
import sys
import time

import pytest
from psycopg import sql

from sage_ops import postgres
from sage_ops.leftover_databases import UNMARKED, drop_leftovers, own_databases
from tests.test_cli import _run

_KILLED_CREATOR = """
import os, sys
from sage_ops import postgres
server = postgres.PgTarget.from_url(sys.argv[1])
with postgres.scratch_database(server, prefix="sage_ops_verify", run_id="run-42") as db:
    print(db.dbname, flush=True)
    os.kill(os.getpid(), 9)
"""


def _own(server, name):
    return next((db for db in own_databases(server) if db.name == name), None)


def _exists(server, name):
    with postgres.connect(server) as conn:
        return bool(
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        )


def _killed_scratch(server) -> str:
    """The name of a scratch database whose creating process was SIGKILLed."""
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_CREATOR, server.redacted],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    name = proc.stdout.strip()
    deadline = time.monotonic() + 10  # the server notices the closed connection
    while _own(server, name).claimed:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return name


def test_a_scratch_database_is_marked_claimed_and_dropped(pg_server):
    with postgres.scratch_database(pg_server, run_id="run-7") as scratch:
        db = _own(pg_server, scratch.dbname)
        assert db is not None and db.kind == postgres.SCRATCH and db.run_id == "run-7"
        assert db.claimed and not db.leftover
        assert scratch.dbname not in [db.name for db in drop_leftovers(pg_server)]
        assert _exists(pg_server, scratch.dbname)
        with postgres.connect(pg_server) as conn:
            comment = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (scratch.dbname,),
            ).fetchone()[0]
        assert json.loads(comment.removeprefix(postgres.OWN_MARK))["run_id"] == "run-7"
    assert not _exists(pg_server, scratch.dbname)


def test_a_killed_runs_scratch_database_is_dropped_by_the_next_run(pg_server):
    name = _killed_scratch(pg_server)
    assert _own(pg_server, name).leftover
    dropped = drop_leftovers(pg_server, (postgres.SCRATCH,))
    assert name in [db.name for db in dropped]
    assert not _exists(pg_server, name)


def test_a_leftover_someone_is_connected_to_is_left_alone(pg_server):
    name = _killed_scratch(pg_server)
    with postgres.connect(pg_server.with_database(name)):
        assert name not in [db.name for db in drop_leftovers(pg_server)]
        assert _exists(pg_server, name)
    assert name in [db.name for db in drop_leftovers(pg_server)]


def test_killed_before_its_comment_the_name_marks_it(pg_server):
    name = f"sage_ops_new_{postgres.own_tag()}"
    untagged = f"sage_ops_new_{'0' * 12}"  # the same shape, not made by sage_ops
    with postgres.connect(pg_server) as conn:
        for db in (name, untagged):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        assert _own(pg_server, name).kind == UNMARKED
        assert _own(pg_server, untagged) is None
        assert name in [db.name for db in drop_leftovers(pg_server, (postgres.RESTORE,))]
        assert _exists(pg_server, untagged)
    finally:
        postgres.drop_database(pg_server, untagged)


@pytest.fixture
def env(pg_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DAGSTER"))}
    env["DATABASE_URL"] = pg_server.with_database("postgres").redacted
    return env


def test_cleanup_lists_by_default_and_drops_with_yes(pg_server, env):
    name = _killed_scratch(pg_server)
    with postgres.scratch_database(pg_server) as live:
        listed = _run(["backups", "cleanup"], env)
        assert listed.returncode == 0, listed.stderr
        line = next(li for li in listed.stdout.splitlines() if name in li)
        assert "scratch" in line and "leftover" in line and "run run-42" in line
        assert "in use by a live run" in next(
            li for li in listed.stdout.splitlines() if live.dbname in li
        )
        assert "sage-ops backups cleanup --yes" in listed.stdout
        assert _exists(pg_server, name)

        dropped = _run(["backups", "cleanup", "--yes"], env)
        assert dropped.returncode == 0, dropped.stderr
        assert f"dropped {name}" in dropped.stdout
        assert not _exists(pg_server, name) and _exists(pg_server, live.dbname)
