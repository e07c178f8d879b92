"""Multi-line entries: stack traces, PostgreSQL's secondary lines, pretty-printed error objects
and csvlog records with newlines are grouped with the line that started them."""

import io

from sage_ops.incidents.classification.categories import classify_text
from sage_ops.incidents.classification.entries import (
    MAX_CHARS,
    MAX_LINES,
    MAX_QUOTED_LINES,
    Entry,
    group,
)
from sage_ops.incidents.evidence.log_input import MAX_LINE_BYTES
from sage_ops.incidents.evidence.log_input import lines as log_lines

STACK = """\
[Nest] 1  - 12/01/2026, 3:00:00 AM   ERROR [ExceptionsHandler] Connection terminated unexpectedly
Error: Connection terminated unexpectedly
    at Connection.<anonymous> (/app/node_modules/pg/lib/client.js:132:73)
    at Object.onceWrapper (node:events:632:28)
[Nest] 1  - 12/01/2026, 3:00:01 AM     LOG [RoutesResolver] ChatController {/api/chat}:"""

PRISMA_OBJECT = """\
PrismaClientKnownRequestError:
Invalid `prisma.user.findMany()` invocation:
{
  code: 'P2024',
  clientVersion: '5.22.0',
  meta: { modelName: 'User', connection_limit: 5, timeout: 10 }
}
next line"""

PG_STDERR = """\
2026-12-01 14:46:26 UTC:127.0.0.1(33270):app@sage:[28307]:ERROR:  deadlock detected
2026-12-01 14:46:26 UTC:127.0.0.1(33270):app@sage:[28307]:DETAIL:  Process 28307 waits for ShareLock on transaction 740; blocked by process 28308.
\tProcess 28308 waits for ShareLock on transaction 739; blocked by process 28307.
2026-12-01 14:46:26 UTC:127.0.0.1(33270):app@sage:[28307]:HINT:  See server log for query details.
2026-12-01 14:46:26 UTC:127.0.0.1(33270):app@sage:[28307]:STATEMENT:  UPDATE t SET n = 2 WHERE id = 2
2026-12-01 14:46:26 UTC:127.0.0.1(33276):app@sage:[28308]:LOG:  process 28308 acquired ShareLock on transaction 739 after 301.241 ms"""

CSVLOG = (
    '2026-12-01 14:46:26.702 UTC,"app","sage",28307,"127.0.0.1:33270",6b0eddc2.6e93,2,"UPDATE",'
    '2026-12-01 14:46:26 UTC,3/20,740,ERROR,40P01,"deadlock detected","Process 28307 waits.\n'
    'Process 28308 waits.",,,,,"UPDATE t SET n = 2",,,"","client backend",,0\n'
    '2026-12-01 14:46:27.001 UTC,,,1,,6b0eddc1.1,5,,2026-12-01 14:46:25 UTC,,0,LOG,00000,"checkpoint starting: time",,,,,,,,,"","checkpointer",,0'
)


def entries(text: str) -> list[Entry]:
    return list(group(text.splitlines()))


def test_stack_trace_joins_its_error():
    found = entries(STACK)
    assert [(e.line, e.lines) for e in found] == [(1, 1), (2, 3), (5, 1)]
    assert classify_text(found[1].text) == "db_unreachable"


def test_pretty_printed_object_joins_its_header_and_closing_brace():
    found = entries(PRISMA_OBJECT)
    assert [(e.line, e.lines) for e in found] == [(1, 1), (2, 1), (3, 5), (8, 1)]
    assert classify_text(found[2].text) == "prisma_pool_timeout"


def test_postgresql_secondary_lines_belong_to_their_entry():
    found = entries(PG_STDERR)
    assert [(e.line, e.lines) for e in found] == [(1, 5), (6, 1)]
    assert [classify_text(e.text) for e in found] == ["deadlock", "unknown"]


def test_csvlog_record_with_a_newline_in_a_quoted_field():
    found = entries(CSVLOG)
    assert [(e.line, e.lines) for e in found] == [(1, 2), (3, 1)]
    assert [classify_text(e.text) for e in found] == ["deadlock", "unknown"]


def test_entries_are_capped():
    found = entries("Error: x\n" + "    at f (a.js:1:1)\n" * (MAX_LINES + 5))
    assert [e.lines for e in found] == [MAX_LINES, 6]
    assert sum(e.lines for e in found) == MAX_LINES + 6


# Lines of other causes that must keep their own category after a malformed record.
AFTER = [
    "2026-12-01 14:47:00 UTC:10.0.1.17(50312):app@sage:[4243]:ERROR:  deadlock detected",
    "2026-12-01 14:47:01 UTC:10.0.1.17(50313):app@sage:[4244]:PANIC:  could not write to file "
    '"pg_wal/xlogtemp.4244": No space left on device',
    "Error: connect ECONNREFUSED 10.0.2.40:6379",
    "[Nest] 1  - 12/01/2026, 3:00:02 AM   ERROR [ExceptionsHandler] Connection terminated "
    "unexpectedly",
    '{"level":50,"time":1795600800000,"msg":"request errored","res":{"statusCode":502}}',
    "Dec  1 14:47:03 ip-10-0-1-9 kernel: Out of memory: Killed process 3130 (node) "
    "total-vm:1634000kB",
]
AFTER_CATEGORIES = [
    "deadlock",
    "disk_full",
    "redis_unavailable",
    "db_unreachable",
    "http_5xx",
    "oom_kill",
]


def tail_categories(text: str) -> list[str]:
    found = entries(text + "\n" + "\n".join(AFTER))
    return [classify_text(e.text) for e in found][-len(AFTER) :]


def test_truncated_csvlog_record_does_not_swallow_the_lines_after_it():
    # A reporter's terminal cut the record inside its quoted message: the quote never closes.
    truncated = CSVLOG.split("\n")[0][:150]
    assert truncated.count('"') % 2 == 1
    assert tail_categories(truncated) == AFTER_CATEGORIES


def test_open_quote_joins_a_bounded_number_of_lines():
    opened = '2026-12-01 14:46:26.702 UTC,"app","sage",1,,,1,,,,0,ERROR,40P01,"deadlock'
    found = entries(opened + "\n" + "unprefixed line\n" * (MAX_QUOTED_LINES + 10))
    assert found[0].lines == MAX_QUOTED_LINES
    assert sum(e.lines for e in found) == MAX_QUOTED_LINES + 11


def test_record_cut_by_rotation_neither_joins_nor_blinds():
    # The old file ends inside a csvlog record and a stack trace; the new one starts mid-record.
    old_end = CSVLOG.split("\n")[0] + "\n" + STACK.split("\n")[1]
    new_start = 'Process 28308 waits.",,,,,"UPDATE t",,,"","client backend",,0\n' + (
        "    at Connection.<anonymous> (/app/node_modules/pg/lib/client.js:132:73)"
    )
    assert tail_categories(old_end + "\n" + new_start) == AFTER_CATEGORIES
    found = entries(new_start)
    assert [(e.line, e.lines) for e in found] == [(1, 2)]


def test_long_line_split_by_a_shipper_keeps_the_next_records_apart():
    # A 256 KB csvlog line (a huge statement) cut into 16 KB pieces, as docker's json-file driver
    # and CloudWatch's agent do: pieces after the first start mid-field, quotes unbalanced.
    line = (
        '2026-12-01 14:46:26.702 UTC,"app","sage",28307,"127.0.0.1:33270",6b0eddc2.6e93,2,"SELECT",'
        "2026-12-01 14:46:26 UTC,3/20,0,ERROR,22P02,\"invalid input syntax\",,,,,,\"SELECT ''''\""
        + "x" * 256 * 1024
        + '\'",,,"","client backend",,0'
    )
    pieces = [line[i : i + 16 * 1024] for i in range(0, len(line), 16 * 1024)]
    assert len(pieces) > 16
    found = entries("\n".join(pieces) + "\n" + "\n".join(AFTER))
    assert [classify_text(e.text) for e in found][-len(AFTER) :] == AFTER_CATEGORIES
    assert all(len(e.text) <= MAX_CHARS + 16 * 1024 for e in found)


def test_binary_blob_in_the_middle_of_a_log():
    blob = bytes(range(256)).decode("latin-1") * 40 + '\x00"\ufffd'
    lines = ["    " + blob[:500], blob[500:3000], "  " + blob[3000:]]
    assert tail_categories(PG_STDERR + "\n" + "\n".join(lines)) == AFTER_CATEGORIES


def test_binary_blob_read_from_a_stream_is_capped_and_counted_as_one_line():
    blob = bytes(b for b in range(256) if b != ord("\n")) * 5000  # 1.3 MB, no line end
    data = b"first\n" + blob + b"\nlast\n"
    got = list(log_lines(io.BytesIO(data)))
    assert len(got) == 3 and got[0] == "first" and got[2] == "last"
    assert len(got[1].encode("utf-8", "replace")) <= MAX_LINE_BYTES * 3


def test_a_new_record_in_any_format_ends_an_open_stack_trace():
    trace = "Error: boom\n    at f (a.js:1:1)\n"
    assert tail_categories(trace.rstrip("\n")) == AFTER_CATEGORIES
