"""A finding's confidence follows its evidence: one line is a hint, and a database that is only
starting up or failing over (a planned restart) is never a high-confidence outage."""

from datetime import timedelta

from sage_ops.incidents.classification.categories import classify_text
from sage_ops.incidents.classification.root_causes import Evidence, Hits, findings
from tests.incidents.factories import T0, alarm

STARTING = "2026-11-25 10:00:10.265 UTC [4200] FATAL:  the database system is starting up"
REFUSED = 'psql: error: connection to server at "10.0.1.5", port 5432 failed: Connection refused'
TOO_MANY = "2026-11-25 10:00:10.265 UTC [4200] FATAL:  sorry, too many clients already"


def top(*lines: str) -> tuple[str, str]:
    hits: dict[str, Hits] = {}
    for n, line in enumerate(lines):
        hits.setdefault(classify_text(line), Hits()).add(T0 + timedelta(seconds=n), line)
    found = findings(Evidence(alarm(), T0, None, None), hits)
    return found[0].key, found[0].confidence


def test_one_startup_line_is_low_confidence():
    assert top(STARTING) == ("db_unreachable", "low")


def test_a_long_restart_is_medium_never_high():
    assert top(*[STARTING] * 12) == ("db_unreachable", "medium")


def test_refusals_beside_the_restart_are_an_outage():
    assert top(STARTING, REFUSED, REFUSED) == ("db_unreachable", "high")


def test_a_single_line_is_at_most_medium():
    assert top(TOO_MANY) == ("pg_connection_exhaustion", "medium")
    assert top(TOO_MANY, TOO_MANY) == ("pg_connection_exhaustion", "high")


def test_a_weakened_finding_ranks_below_a_proven_one():
    key, _ = top(STARTING, TOO_MANY, TOO_MANY, TOO_MANY)
    assert key == "pg_connection_exhaustion"
