"""Triage on real logs nobody here wrote (tests/incidents/real_logs, cited in SOURCES.md): on
whole files, no false cause on any line, the expected findings with their evidence in words, and
the same lines' categories when the files arrive cut, mixed and with a malformed record between
them; on single lines pasted in public threads and documented in event tables, accuracy on the
held-out sources (never tuned on) above a floor and near misses left alone."""

import io

import pytest

from sage_ops.incidents.classification.categories import NAMES, UNKNOWN
from sage_ops.incidents.log_triage import analyze, report
from tests.incidents.real_corpus import (
    HERE,
    files,
    held_out,
    labels,
    pasted,
    predicted,
    read,
    score,
    score_lines,
)

JSON_SKELETON = "{<str>"


@pytest.mark.parametrize("name", files())
def test_no_line_of_a_real_log_is_given_a_wrong_cause(name):
    s = score([name])
    assert sum(s.false_positives.values()) == 0
    assert s.accuracy("unknown") == 1.0


def test_the_split_holds_out_half_the_files():
    assert sum(map(held_out, files())) == len(files()) // 2


def test_the_pasted_lines_cover_every_category_in_both_parts():
    rows = pasted()
    assert len(rows) >= 500
    for part in (True, False):
        assert {r.category for r in rows if held_out(r.source) == part} == set(NAMES), part


def test_sources_md_cites_every_pasted_lines_source():
    cited = (HERE / "SOURCES.md").read_text()
    for source in {r.source for r in pasted()}:
        # documentation rows are cited by their table (`aws-rds-events/*`), threads one by one
        cite = f"[{source}](https://github.com/" if "#" in source else f"`{source.split('/')[0]}"
        assert cite in cited, source


# Measured when this test was written (tests.incidents.real_corpus prints it): 87.6 % of the
# held-out cause lines and 95.5 % of all held-out lines (the first 500 lines: 83.0 % and 94.4 %
# before any rule was tuned on the other part); 1 of 223 held-out near misses given a cause.
# The floors sit below what was measured.
HELD_OUT_CAUSE_FLOOR = 0.80
HELD_OUT_LINE_FLOOR = 0.92


def test_held_out_pasted_lines_are_classified_above_the_floor():
    s = score_lines([r for r in pasted() if held_out(r.source)])
    assert s.overall(causes_only=True) >= HELD_OUT_CAUSE_FLOOR, s.lines()
    assert s.overall() >= HELD_OUT_LINE_FLOOR, s.lines()
    assert s.near_miss_false_positives <= 0.01 * s.total[UNKNOWN], s.lines()


def test_no_tuning_near_miss_is_given_a_cause():
    s = score_lines([r for r in pasted() if not held_out(r.source)])
    assert s.near_miss_false_positives == 0, s.lines()


def top(name):
    r = report(analyze(io.BufferedReader(io.BytesIO(read(name)))), [], [])
    return r.findings[0]


def test_cloud_sql_json_log_names_a_restart_with_low_confidence_and_readable_evidence():
    finding = top("pgbadger_cloudsql.log.gz")
    assert (finding.key, finding.confidence, finding.lines) == ("db_unreachable", "low", 1)
    forms = [e for e in finding.evidence if e.startswith("form:")]
    assert forms and all(JSON_SKELETON not in f for f in forms)
    assert "the database system is starting up" in forms[0]


def test_cloudnativepg_json_log_shows_the_messages_not_the_wrapper():
    finding = top("pgbadger_cnpg.log.gz")
    assert finding.key == "db_unreachable" and finding.lines == 3
    forms = " ".join(e for e in finding.evidence if e.startswith("form:"))
    assert JSON_SKELETON not in forms and "failed to connect to" in forms


def test_heroku_logplex_deadlock_is_found():
    assert top("pgbadger_logplex.gz").key == "deadlock"


def test_a_busy_rds_log_without_errors_has_no_root_cause_but_its_pg_hba_refusal():
    finding = top("pgbadger_rds.log.bz2")
    assert finding.key in ("unknown", "db_unreachable")
    assert finding.confidence in ("none", "low", "medium")


def test_cut_mixed_and_malformed_files_keep_every_lines_category():
    """Cloud SQL's JSON, logplex cut inside its deadlock record (rotation), a binary blob, a
    CloudNativePG JSON line cut in half (a shipper's limit), then the rest of that log."""
    marks = labels()

    def piece(name, first, last):
        text = read(name).decode().split("\n")[first - 1 : last]
        want = [marks.get(name, {}).get(n, "unknown") for n in range(first, last + 1)]
        return text, want

    parts = [
        piece("pgbadger_cloudsql.log.gz", 660, 700),
        piece("pgbadger_logplex.gz", 1, 12),
        (['\x00\x01\x02 binary \ufffd\ufffd "' * 40], [None]),
        ([read("pgbadger_cnpg.log.gz").decode().split("\n")[1960][:700]], [None]),
        piece("pgbadger_cnpg.log.gz", 1962, 2000),
    ]
    text = "\n".join(line for lines, _ in parts for line in lines) + "\n"
    got = predicted(text.encode())
    want = [w for _, wants in parts for w in wants]
    checked = [(g, w) for g, w in zip(got, want, strict=True) if w is not None]
    # logplex lines cut off from their record keep their own reading (scored in the corpus);
    # here what matters is that every line after the cut and the blob reads as it does alone.
    alone = predicted("\n".join(piece("pgbadger_cnpg.log.gz", 1962, 2000)[0]).encode() + b"\n")
    assert got[-len(alone) :] == alone
    assert [g for g, w in checked if w == "db_unreachable"] == ["db_unreachable"] * 4
    assert all(g == "unknown" for g, w in checked if w == "unknown")
