"""Log templates: variable parts masked, ranked by count, dated against the alarm."""

from datetime import timedelta

from sage_ops.incidents.classification.templates import summarize, template_of
from tests.incidents.factories import T0, logs


def test_variable_parts_are_masked():
    line = (
        "2026-11-25 10:00:01.123 UTC [4242] ERROR: request 3f2b8c1e-1a2b-4c3d-9e8f-0a1b2c3d4e5f "
        'from 10.0.1.7:5432 user "alice@example.com" container 9f86d081884c took 1503 ms'
    )
    assert template_of(line) == (
        "<time> [<num>] ERROR: request <uuid> from <ip> user <str> container <hex> took <num> ms"
    )
    # Codes inside words stay: they are what the rules and the humans look for.
    assert template_of("Error: P2024 timed out") == "Error: P2024 timed out"


def test_summary_ranks_templates_and_dates_them_against_the_alarm():
    lines = logs(
        "GET /health 200 in 3 ms",  # not an error: ignored
        "FATAL: sorry, too many clients already",
        'ERROR: duplicate key value violates unique constraint "users_email_key"',
        "FATAL: sorry, too many clients already",
        "FATAL: sorry, too many clients already",
        start=T0 - timedelta(seconds=30),
        step_s=10,
    )
    table = summarize(lines, T0)
    assert table["count"].tolist() == [3, 1]
    top = table.iloc[0]
    assert top["template"] == "FATAL: sorry, too many clients already"
    assert top["starts_vs_alarm_s"] == -20.0
    assert top["example"] == "FATAL: sorry, too many clients already"


def test_no_error_lines_gives_an_empty_table():
    assert summarize(logs("all good"), T0).empty
    assert summarize(logs(), T0).empty
