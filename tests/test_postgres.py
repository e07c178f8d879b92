import os
import stat

import pytest

from sage_ops import postgres
from sage_ops.errors import ConfigError, DatabaseError
from sage_ops.postgres import PgTarget


def test_url_parsing_and_redaction():
    t = PgTarget.from_url("postgresql://app:p%40ss@db.example.com:6543/sage?sslmode=require")
    assert (t.host, t.port, t.user, t.dbname, t.password) == (
        "db.example.com",
        6543,
        "app",
        "sage",
        "p@ss",
    )
    assert t.redacted == "postgresql://app:***@db.example.com:6543/sage"
    assert "p@ss" not in repr(t.redacted)


def test_socket_url():
    t = PgTarget.from_url("postgresql://postgres@/sage?host=/tmp/pg")
    assert t.host == "/tmp/pg" and t.redacted == "postgresql://postgres@/sage?host=/tmp/pg"


@pytest.mark.parametrize(
    "url, reason",
    [
        ("mysql://u:hunter2@h/db", "must start with postgresql://"),
        ("postgresql://u:hunter2@h:notaport/db", "malformed"),
        ("postgresql://u:hunter2@/db", "no host"),
        ("postgresql://u:hunter2@h/", "names no database"),
        ("hunter2", "must start with postgresql://"),
    ],
)
def test_malformed_urls_are_refused_without_echoing_the_password(url, reason):
    with pytest.raises(ConfigError) as err:
        PgTarget.from_url(url)
    assert reason in str(err.value)
    assert "hunter2" not in str(err.value)


def test_libpq_env_keeps_the_password_in_a_private_file():
    t = PgTarget.from_url("postgresql://app:s3cr:et@h/db")
    with postgres.libpq_env(t) as env:
        assert "s3cr:et" not in "".join(env.values())
        path = env["PGPASSFILE"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert open(path).read() == "*:*:*:*:s3cr\\:et\n"
    assert not os.path.exists(path)


def test_wrong_password_is_reported_without_the_password(password_server):
    wrong = PgTarget.from_url(
        f"postgresql://postgres:not-{password_server.password}@127.0.0.1:{password_server.port}/postgres"
    )
    with pytest.raises(DatabaseError) as err:
        postgres.connect(wrong)
    assert "password authentication failed" in str(err.value)
    assert "check the user and password" in str(err.value)
    assert password_server.password not in str(err.value)


def test_missing_database_and_unreachable_server(pg_server):
    with pytest.raises(DatabaseError, match="does not exist.*check the database name"):
        postgres.connect(pg_server.with_database("no_such_db_sage_ops"))
    dead = PgTarget(host="127.0.0.1", port=1, user="u", dbname="d", password="hunter2")
    with pytest.raises(DatabaseError, match="is the server running") as err:
        postgres.connect(dead)
    assert "hunter2" not in str(err.value)


def test_scratch_database_is_dropped_even_on_failure(pg_server):
    with pytest.raises(RuntimeError), postgres.scratch_database(pg_server) as scratch:
        name = scratch.dbname
        raise RuntimeError("boom")
    with postgres.connect(pg_server) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is None


def test_secret_url_round_trips():
    for url in (
        "postgresql://app:p%40ss%3Aw@db.example.com:6543/sage?sslmode=require",
        "postgresql://postgres@/sage?host=/tmp/pg",
    ):
        target = PgTarget.from_url(url)
        assert PgTarget.from_url(target.secret_url()) == target
