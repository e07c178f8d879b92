"""`sage-ops triage classify` and `sage-ops triage analyze` as an on-call engineer uses them:
a file or stdin, one output line per input line, the whole triage of a log or a CloudWatch
export, and 100 MB of logs in flat memory."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from sage_ops.cli import main
from tests.incidents.corpus import labelled

INCIDENT = """\
Nov 25 09:58:00 ip-10-0-1-9 ecs: (service sage-production-backend) has reached a steady state.
2026-11-25T10:01:00.000Z (service sage-production-backend) has started 2 tasks: (task 7b1c0e2f).
[Nest] 1  - 11/25/2026, 10:03:15 AM     LOG [NestApplication] Nest application successfully started
[Nest] 1  - 11/25/2026, 10:04:30 AM   ERROR [ExceptionsHandler] Error querying the database: db error: FATAL: sorry, too many clients already
PrismaClientKnownRequestError: Too many database connections opened
    at Ln.handleRequestError (/app/node_modules/@prisma/client/runtime/library.js:121:7753)
    at async ChatService.send (/app/dist/src/chat/chat.service.js:42:9)
2026-11-25 10:04:31 UTC:10.0.1.17(50312):app@sage:[4243]:FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute
10.0.1.5 - - [25/Nov/2026:10:04:32 +0000] "POST /api/chat HTTP/1.1" 502 157 "-" "curl/8.4.0"
"""


def run(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from sage_ops.cli import main; sys.exit(main())",
            *args,
        ],
        input=stdin,
        capture_output=True,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_classify_json_is_one_object_per_input_line(tmp_path):
    log = tmp_path / "incident.log"
    log.write_text(INCIDENT)
    code, out, err = run("triage", "classify", str(log), "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == list(range(1, INCIDENT.count("\n") + 1))
    assert [r["category"] for r in rows] == [
        "unknown",
        "unknown",
        "unknown",
        "pg_connection_exhaustion",
        "pg_connection_exhaustion",  # the stack trace's lines carry their entry's category
        "pg_connection_exhaustion",
        "pg_connection_exhaustion",
        "pg_connection_exhaustion",
        "http_5xx",
    ]
    assert "7 entries:" in err and "3  pg_connection_exhaustion" in err  # summary: stderr


def test_classify_reads_stdin_and_prints_text(monkeypatch, capsys):
    corpus = "\n".join(text for _, text in labelled()) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(corpus.encode())))
    assert main(["triage", "classify", "-"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == corpus.count("\n")
    first = lines[0].split("\t")
    assert first[0] == "1" and first[1] == labelled()[0][0]


def test_analyze_names_the_cause_the_first_error_and_the_rollout_before_it(tmp_path):
    log = tmp_path / "incident.log"
    log.write_text(INCIDENT)
    code, out, _ = run("triage", "analyze", str(log))
    assert code == 0, out
    assert "Root cause: PostgreSQL connection pool exhaustion (53300) (confidence high)" in out
    assert "First error: 2026-11-25 10:04:30 UTC" in out
    assert "        3  pg_connection_exhaustion   2026-11-25 10:04:30 UTC" in out
    assert "        1  http_5xx" in out
    assert (
        "- deployment of sage-production-backend (ECS service event) (in progress) started "
        "2026-11-25 10:01:00 UTC, 3 min 30 s before the first error" in out
    )
    assert "Immediate fix:\n  - Set an explicit `connection_limit`" in out
    assert "Long-term fix:" in out and "Prevention:" in out


def test_analyze_a_cloudwatch_export_with_multi_line_events(tmp_path):
    base = 1795600800000  # 2026-11-25T10:00:00Z
    events = [
        {"timestamp": base, "message": "[Nest] 1  - 11/25/2026, 10:00:00 AM     LOG [App] up\n"},
        {
            "timestamp": base + 61_000,
            "message": "Error: connect ECONNREFUSED 10.0.3.12:6379\n    at TCPConnectWrap.afterConnect",
            "logStreamName": "backend/backend/7b1c0e2f",
        },
        {
            "timestamp": base + 62_000,
            "message": "ReplyError: READONLY You can't write against a read only replica.",
        },
    ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"events": events, "searchedLogStreams": []}, indent=2))
    code, out, _ = run("triage", "analyze", str(export))
    assert code == 0, out
    assert "4 lines, 3 entries, 2 with a known cause" in out
    assert "Root cause: Redis unavailable" in out
    assert "First error: 2026-11-25 10:01:01 UTC" in out


def test_a_missing_file_is_an_operator_error():
    code, _, err = run("triage", "analyze", "/nonexistent/x.log")
    assert code == 1 and "cannot read /nonexistent/x.log" in err


MEASURE = """
import resource, sys
from sage_ops.cli import main
main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_rss_kb(*args: str) -> int:
    done = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, check=True)
    return int(done.stderr.decode().strip().splitlines()[-1])


@pytest.mark.slow
def test_100_mb_of_logs_in_flat_memory(tmp_path):
    """Peak RSS of classify and analyze on 100 MB is that of a small file, give or take 25 MB
    (no timing is asserted: the machine is shared)."""
    block = (INCIDENT + "\n".join(t for _, t in labelled()) + "\n").encode()
    small, large = tmp_path / "small.log", tmp_path / "large.log"
    small.write_bytes(block)
    with open(large, "wb") as f:
        for _ in range(100_000_000 // len(block) + 1):
            f.write(block)
    assert large.stat().st_size >= 100_000_000
    for command in (["triage", "classify", "--json"], ["triage", "analyze"]):
        baseline = peak_rss_kb(*command[:2], str(small), *command[2:])
        peak = peak_rss_kb(*command[:2], str(large), *command[2:])
        assert peak - baseline < 25_000, (command, baseline, peak)
