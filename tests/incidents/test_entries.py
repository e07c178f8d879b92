"""Multi-line entries: stack traces, PostgreSQL's secondary lines, pretty-printed error objects
and csvlog records with newlines are grouped with the line that started them."""

from sage_ops.incidents.categories import classify_text
from sage_ops.incidents.entries import MAX_LINES, Entry, group

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
