"""The corpus's PostgreSQL texts checked against real servers: every error provoked on the
machine's PostgreSQL 15 (client side) and on a PostgreSQL 16 of our own that logs in the RDS
prefix format, csvlog and jsonlog at once (server side), classified as the corpus says."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from sage_ops.incidents.classification import categories as c
from sage_ops.incidents.classification.categories import classify_text
from sage_ops.incidents.classification.entries import group
from tests.incidents import pg_provoke
from tests.incidents.corpus import labelled
from tests.incidents.small_pg import small_server
from tests.pg import MACHINE_SERVER

EXPECTED = {
    "55P03": c.LOCK_TIMEOUT,
    "40P01": c.DEADLOCK,
    "53300": c.PG_CONNECTION_EXHAUSTION,
    "25P03": c.UNKNOWN,  # idle-in-transaction session timeout
    "57P01": c.UNKNOWN,  # pg_terminate_backend
}
LOGGING = (
    "-c logging_collector=on -c log_destination=stderr,csvlog,jsonlog -c log_directory=log "
    "-c log_filename=pg -c log_lock_waits=on -c deadlock_timeout=100ms "
    "-c log_line_prefix='%t:%r:%u@%d:[%p]:'"
)


def expected(sqlstate: str, message: str) -> str:
    if sqlstate == "57014":  # the same code for a timeout and a cancel
        return c.STATEMENT_TIMEOUT if "statement timeout" in message else c.UNKNOWN
    return EXPECTED.get(sqlstate, c.PG_CONNECTION_EXHAUSTION if "too many" in message else "")


def provoke_all(target) -> list[tuple[str, str]]:
    return [found for provoke in pg_provoke.ALL for found in provoke(target)]


def test_postgresql_15_messages_are_in_the_corpus_with_their_category():
    corpus = {text: label for label, text in labelled()}
    for sqlstate, message in provoke_all(MACHINE_SERVER):
        want = expected(sqlstate, message)
        assert classify_text(message) == want, message
        primary = message.split("FATAL:  ")[-1].split(' "')[0].split(" for role")[0]
        assert any(primary in text and label == want for text, label in corpus.items()), primary


def test_postgresql_16_server_log_in_every_format():
    with small_server(LOGGING) as server:
        provoked = provoke_all(server.admin)
        time.sleep(0.5)  # the collector writes asynchronously
        logs = Path(server.log_file).parent / "data" / "log"
        found = {
            name: Counter(
                classify_text(e.text)
                for e in group((logs / name).read_text(errors="replace").splitlines())
            )
            for name in ("pg", "pg.csv", "pg.json")
        }
    assert Counter(expected(s, m) for s, m in provoked) == Counter(
        {c.LOCK_TIMEOUT: 2, c.STATEMENT_TIMEOUT: 1, c.UNKNOWN: 3, c.DEADLOCK: 1}
        | {c.PG_CONNECTION_EXHAUSTION: 1}
    )
    for name, counts in found.items():
        named = {k: v for k, v in counts.items() if k != c.UNKNOWN}
        # the deadlock detector's own LOG line counts as deadlock evidence too;
        # the lock-wait LOG lines ("still waiting", "acquired") are not lock timeouts.
        assert named == {
            c.LOCK_TIMEOUT: 2,
            c.STATEMENT_TIMEOUT: 1,
            c.DEADLOCK: 2,
            c.PG_CONNECTION_EXHAUSTION: 1,
        }, name
