"""The real jobs, launched with `dagster job execute` in process groups of their own, and killed
with SIGKILL at points tied to their progress (polled state, never a sleep)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance

from sage_ops import postgres
from sage_ops.backups.catalog import load_manifests, status
from sage_ops.backups.store import LocalStore
from sage_ops.postgres import PgTarget
from tests import pg

KEEP = 2
ROWS = 150_000  # a dump and a restore long enough to be caught at 10 % of their bytes
HOOK = Path(__file__).with_name("paused_dagster.py")


@dataclass
class World:
    """One source database, its backup store and Dagster instance, shared by the kills in order."""

    server: PgTarget
    source: PgTarget
    store: LocalStore
    home: Path
    env: dict[str, str]
    runs: list[str] = field(default_factory=list)

    def launch(self, job: str, config: dict | None = None, pause: str = "") -> subprocess.Popen:
        """The job in a process group of its own (what the kill takes down entirely)."""
        args = [sys.executable, str(HOOK)] if pause else [_bin("dagster")]
        args += ["job", "execute", "-m", "sage_ops.definitions", "-j", job]
        if config:
            path = self.home / f"config_{secrets.token_hex(3)}.json"
            path.write_text(json.dumps(config))
            args += ["-c", str(path)]
        env = dict(self.env, SAGE_OPS_FAULT_PAUSE=pause, SAGE_OPS_FAULT_DIR=str(self.home))
        return subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def run(self, job: str, config: dict | None = None) -> str:
        """Run to the end; fails the test (with the run's output) unless it succeeded. Returns
        the run's log messages (steps log to the instance, not to the console)."""
        proc = self.launch(job, config)
        proc.communicate(timeout=300)
        assert proc.returncode == 0, self.last_run_log()[-4000:]
        return self.last_run_log()

    def last_run_log(self) -> str:
        with DagsterInstance.from_config(str(self.home)) as instance:
            [run] = instance.get_runs(limit=1)
            return "\n".join(e.user_message for e in instance.all_logs(run.run_id))

    def kill_when(self, proc: subprocess.Popen, reached: Callable[[], bool], what: str) -> None:
        """SIGKILL the job's whole process group as soon as `reached()`; fail if it ends first."""
        deadline = time.monotonic() + 240
        while not reached():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before {what}: {self.last_run_log()[-3000:]}")
            assert time.monotonic() < deadline, f"never reached {what}"
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

    def sage_ops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_bin("sage-ops"), *args], env=self.env, capture_output=True, text=True, timeout=120
        )


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = pg.MACHINE_SERVER if pg.machine_server_up() else pytest.fail("needs PostgreSQL")
    home = tmp_path_factory.mktemp("faults")
    store = LocalStore(f"file://{home / 'backups'}")
    with postgres.scratch_database(server, prefix="sage_fault_src") as source:
        with postgres.connect(source) as conn:
            conn.execute(
                "CREATE TABLE events (id bigint PRIMARY KEY, body text NOT NULL);"
                f"INSERT INTO events SELECT g, md5(g::text) || md5((g * 7)::text) "
                f"FROM generate_series(1, {ROWS}) g;"
                "CREATE INDEX events_body ON events (body);"
                "CREATE TABLE small (id int); INSERT INTO small VALUES (1), (2);"
            )
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SAGE_OPS"))
        }
        env.update(
            DAGSTER_HOME=str(home),
            DATABASE_URL=source.redacted,
            SAGE_OPS_BACKUP_URL=store.url,
            SAGE_OPS_BACKUP_KEEP=str(KEEP),
            SAGE_OPS_VERIFY_LEVEL="full",
            SAGE_OPS_STATE_DIR=str(home / "state"),
        )
        yield World(server, source, store, home, env)


def verified_kept(world: World) -> list[str]:
    """The verified backups whose objects are in the store."""
    manifests, keys = load_manifests(world.store)
    return [m.key for m in manifests if status(m, keys) == "passed"]


def own_leftovers(server: PgTarget, names: set[str]) -> set[str]:
    with postgres.connect(server) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (list(names),)
        ).fetchall()
    return {name for (name,) in rows}


def server_query(server: PgTarget, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(**server.conninfo(), autocommit=True) as conn:  # type: ignore[arg-type]
        return conn.execute(query, params or None).fetchall()
