"""Reading PostgreSQL's own log: prefixes, time zones, continuation lines, missing files."""

from datetime import UTC, datetime, timedelta

import pytest

from sage_ops.incidents.errors import EvidenceError
from sage_ops.incidents.evidence.postgres_log import PostgresLogFile, parse

LOG = """\
2026-11-25 10:00:00.100 UTC [4242] LOG:  database system is ready to accept connections
2026-11-25 10:00:01.250 UTC [4243] FATAL:  sorry, too many clients already
2026-11-25 11:00:02 CET [4244] ERROR:  relation "x" does not exist at character 15
2026-11-25 10:00:03 +0200 [4245] ERROR:  syntax error
\tcontinued detail without a prefix
2026-11-25 10:00:04 UTC:10.0.1.17(50312):app@sage:[4246]:FATAL:  too many connections for role "app"
"""


def test_entries_times_and_continuations():
    entries = parse(LOG)
    assert len(entries) == 5
    assert entries[1] == (
        datetime(2026, 11, 25, 10, 0, 1, 250000, tzinfo=UTC),
        "2026-11-25 10:00:01.250 UTC [4243] FATAL:  sorry, too many clients already",
    )
    assert entries[3][0] == datetime(2026, 11, 25, 8, 0, 3, tzinfo=UTC)  # +0200 converted
    assert entries[3][1].endswith("syntax error continued detail without a prefix")
    assert "too many connections for role" in entries[4][1]  # RDS's prefix


def test_file_source_filters_by_window(tmp_path):
    path = tmp_path / "postgresql.log"
    path.write_text(LOG)
    start = datetime(2026, 11, 25, 10, 0, 1, tzinfo=UTC)
    frame = PostgresLogFile(path).lines(start, start + timedelta(seconds=5))
    # CET is not an offset Python can resolve: taken as UTC (11:00:02), outside the window.
    assert len(frame) == 2
    assert frame["source"].iloc[0] == f"PostgreSQL log {path}"


def test_missing_file_is_an_operator_error(tmp_path):
    with pytest.raises(
        EvidenceError, match="cannot read the PostgreSQL log .*SAGE_OPS_PG_LOG_FILE"
    ):
        PostgresLogFile(tmp_path / "nope.log").lines(datetime.now(UTC), datetime.now(UTC))
