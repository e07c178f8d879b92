"""Applying migrations against the real server; the database state is checked after each fault."""

import hashlib
import threading
import time

import pytest

from sage_ops import postgres
from sage_ops.errors import ConfigError, DatabaseError
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.preflight import MigrationRefused, plan
from sage_ops.migrations.runner import MigrationFailed, RunOptions, apply_pending
from tests.migrations.conftest import ADD_NAME, ADD_POSTS, INIT, migration_rows, schema_snapshot

FAST = RunOptions(
    lock_timeout="200ms", statement_timeout="30s", lock_retries=2, retry_backoff_s=0.1
)


def test_applies_pending_with_prisma_bookkeeping(write_migrations, empty_db):
    files = load_migrations(write_migrations(("init", INIT), ("posts", ADD_POSTS)))
    applied = apply_pending(empty_db, files)
    assert [a.name for a in applied] == [f.name for f in files]
    with postgres.connect(empty_db) as conn:
        rows = conn.execute(
            "SELECT migration_name, checksum, applied_steps_count, finished_at IS NOT NULL, "
            "rolled_back_at FROM _prisma_migrations ORDER BY migration_name"
        ).fetchall()
    expected = [hashlib.sha256(f.path.read_bytes()).hexdigest() for f in files]
    assert rows == [(f.name, c, 1, True, None) for f, c in zip(files, expected, strict=True)]
    assert plan(empty_db, files).pending == []
    assert apply_pending(empty_db, files) == []  # idempotent


def test_sql_error_in_second_of_three(write_migrations, empty_db, tmp_path):
    broken = ADD_POSTS + 'INSERT INTO "Post" ("authorId", "title") VALUES (999, \'orphan\');\n'
    directory = write_migrations(("init", INIT), ("posts", broken), ("name", ADD_NAME))
    files = load_migrations(directory)
    apply_pending(empty_db, files[:1])
    after_first = schema_snapshot(empty_db)

    with pytest.raises(MigrationFailed) as err:
        apply_pending(empty_db, files)

    assert err.value.migration == files[1].name
    assert err.value.error.startswith("23503")  # foreign_key_violation
    assert 'INSERT INTO "Post"' in err.value.statement
    assert schema_snapshot(empty_db) == after_first  # no "Post" table, no "name" column
    assert migration_rows(empty_db) == [
        (files[0].name, True, False, 1),
        (files[1].name, False, True, 0),
    ]

    # Once the file is fixed, the next run proceeds (the failed row was marked rolled back).
    (files[1].path).write_text(ADD_POSTS)
    applied = apply_pending(empty_db, load_migrations(directory))
    assert [a.name for a in applied] == [files[1].name, files[2].name]


def test_edited_applied_migration_is_drift(write_migrations, empty_db):
    directory = write_migrations(("init", INIT), ("posts", ADD_POSTS))
    apply_pending(empty_db, load_migrations(directory)[:1])
    before, rows = schema_snapshot(empty_db), migration_rows(empty_db)
    (directory / "20261101000001_init" / "migration.sql").write_text(INIT + "-- edited\n")
    with pytest.raises(MigrationRefused, match="edited after it was applied"):
        plan(empty_db, load_migrations(directory))
    with pytest.raises(MigrationRefused, match="edited after it was applied"):
        apply_pending(empty_db, load_migrations(directory))
    assert schema_snapshot(empty_db) == before and migration_rows(empty_db) == rows


def test_line_ending_swap_is_not_drift(write_migrations, empty_db):
    directory = write_migrations(("init", INIT))
    apply_pending(empty_db, load_migrations(directory))
    path = directory / "20261101000001_init" / "migration.sql"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert plan(empty_db, load_migrations(directory)).pending == []


@pytest.mark.parametrize(
    ("logs", "said"),
    [
        (None, "was interrupted .* left nothing applied; run `sage-ops migrations resolve"),
        ("42P01 relation missing", r"failed earlier \(42P01 relation missing\) .* `sage-ops"),
    ],
)
def test_unresolved_row_blocks_naming_the_sage_ops_command(write_migrations, empty_db, logs, said):
    directory = write_migrations(("init", INIT), ("posts", ADD_POSTS))
    files = load_migrations(directory)
    apply_pending(empty_db, files[:1])
    with postgres.connect(empty_db) as conn:  # a killed run leaves no log, a failed one its error
        conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) "
            "VALUES ('x', %s, %s, %s)",
            (files[1].checksum, files[1].name, logs),
        )
    before = schema_snapshot(empty_db)
    with pytest.raises(MigrationRefused, match=f"{files[1].name} {said}.*--rolled-back"):
        apply_pending(empty_db, files)
    assert schema_snapshot(empty_db) == before


def test_migrations_run_in_a_session_that_ends_with_its_client(write_migrations, empty_db):
    """The server checks the client is there while a statement runs, so a killed run's statement
    (and its locks) end within a second (tests/faults kills one), not at statement_timeout."""
    probe = "CREATE TABLE probe AS SELECT current_setting('client_connection_check_interval') v;"
    apply_pending(empty_db, load_migrations(write_migrations(("probe", probe))))
    with postgres.connect(empty_db) as conn:
        assert conn.execute("SELECT v FROM probe").fetchone() == ("1s",)


def test_lock_held_longer_than_lock_timeout(write_migrations, empty_db):
    directory = write_migrations(("init", INIT), ("name", ADD_NAME))
    files = load_migrations(directory)
    apply_pending(empty_db, files[:1])
    before = schema_snapshot(empty_db)
    with postgres.connect(empty_db, autocommit=False) as blocker:
        blocker.execute('LOCK TABLE "User" IN ACCESS SHARE MODE')  # a long-running reader
        started = time.monotonic()
        with pytest.raises(MigrationFailed) as err:
            apply_pending(empty_db, files, FAST)
        elapsed = time.monotonic() - started
    assert err.value.error.startswith("55P03")
    assert elapsed >= 0.2 * 3  # first try + 2 retries, each waiting for the lock timeout
    assert schema_snapshot(empty_db) == before
    assert migration_rows(empty_db)[-1] == (files[1].name, False, True, 0)


def test_lock_released_during_retries_succeeds(write_migrations, empty_db):
    files = load_migrations(write_migrations(("init", INIT), ("name", ADD_NAME)))
    apply_pending(empty_db, files[:1])
    blocker = postgres.connect(empty_db, autocommit=False)
    blocker.execute('LOCK TABLE "User" IN ACCESS SHARE MODE')
    threading.Timer(0.3, blocker.close).start()
    applied = apply_pending(empty_db, files, FAST)
    assert applied[0].name == files[1].name and applied[0].attempts >= 2


def test_concurrent_runs_never_both_apply(write_migrations, empty_db):
    slow = "SELECT pg_sleep(1.5);\n" + ADD_POSTS
    files = load_migrations(write_migrations(("init", INIT), ("posts", slow)))
    results: list[object] = []

    def run():
        try:
            results.append([a.name for a in apply_pending(empty_db, files)])
        except Exception as exc:  # the outcome is what the test inspects
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied_lists = [r for r in results if isinstance(r, list)]
    # One run applied both; the other waited for the lock, then found nothing pending.
    assert sorted(len(r) for r in applied_lists) == [0, 2]
    assert [r[0] for r in migration_rows(empty_db)] == [f.name for f in files]


def test_concurrent_index_runs_outside_a_transaction(write_migrations, empty_db):
    concurrent = 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n'
    files = load_migrations(write_migrations(("init", INIT), ("idx", concurrent)))
    applied = apply_pending(empty_db, files)
    assert [a.transactional for a in applied] == [True, False]
    with postgres.connect(empty_db) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = '\"User_email_idx\"'::regclass"
        ).fetchone()
    assert valid == (True,)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "holds no migrations"),
        ({"not_a_migration": None}, "not a <14-digit timestamp>_<name> folder"),
        ({"20261101000001_init/": ""}, "has no migration.sql"),
        ({"20261101000001_init/migration.sql": "  \n"}, "migration.sql is empty"),
    ],
)
def test_empty_or_malformed_directory(tmp_path, layout, message):
    root = tmp_path / "migrations"
    root.mkdir()
    for name, content in layout.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir()
        elif content is None:
            path.write_text("stray file")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_migrations(root)


def test_missing_directory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_migrations(tmp_path / "nope")


def test_database_unreachable(write_migrations):
    from sage_ops.postgres import PgTarget

    files = load_migrations(write_migrations(("init", INIT)))
    dead = PgTarget(host="127.0.0.1", port=1, user="app", dbname="sage", password="hunter2")
    with pytest.raises(DatabaseError, match="cannot connect") as err:
        plan(dead, files)
    assert "hunter2" not in str(err.value)


def test_invalid_timeout_setting(write_migrations, empty_db):
    files = load_migrations(write_migrations(("init", INIT)))
    with pytest.raises(ConfigError, match="not a valid PostgreSQL duration"):
        apply_pending(empty_db, files, RunOptions(lock_timeout="soon"))
    assert schema_snapshot(empty_db) == []


def test_lock_held_by_another_migration_is_refused(write_migrations, empty_db):
    from sage_ops.migrations.bookkeeping import PRISMA_LOCK_KEY

    files = load_migrations(write_migrations(("init", INIT)))
    with postgres.connect(empty_db) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (PRISMA_LOCK_KEY,))
        with pytest.raises(MigrationRefused, match=r"another migration is running.*pid \d+"):
            plan(empty_db, files)
    assert schema_snapshot(empty_db) == []
