"""Benchmark the triage classifier's throughput (lines per second) against a baseline.

    .venv/bin/python -m benchmarks.triage_classify [--lines 200000] [--error-share 0.1] [--repeat 5]

The input is a log of --lines lines in which --error-share of the lines are the labelled
corpus's lines (every category and every near miss, tests/incidents/corpus) and the rest are
ordinary lines of the same systems (Nest route logs, pino request logs, PostgreSQL checkpoints,
ALB 200s, ECS steady states). Three rows, each the best of --repeat runs over the same lines:

- `categories.classify_text`: the classifier alone, one call per line;
- `triage classify` path: entries.group + classify_text + the --json output line, as the CLI does
  (written to an in-memory sink);
- baseline, the seed's rules: the four patterns incident_triage had before (53300, P2024, OOM,
  5xx), searched one after the other on every line - fewer causes, so less work per line.

It also prints each one's accuracy on the labelled corpus (lines whose label it gives), which is
what the extra time buys. No target: the numbers are for comparing changes to the classifier.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import platform
import re
import time
from collections.abc import Callable

from sage_ops.incidents.classification.categories import UNKNOWN, classify_text
from sage_ops.incidents.log_triage import classify_lines
from tests.incidents.corpus import labelled

ORDINARY = (
    "[Nest] 1  - 12/01/2026, 3:00:00 AM     LOG [RouterExplorer] Mapped {/api/chat, POST} route",
    '{"level":30,"time":1795600800000,"pid":1,"hostname":"ip-10-0-1-17","req":{"id":42,'
    '"method":"GET","url":"/api/conversations?limit=50"},"res":{"statusCode":200},'
    '"responseTime":12,"msg":"request completed"}',
    "2026-11-25 10:00:01.000 UTC [4242] LOG:  checkpoint starting: time",
    "https 2026-12-01T03:00:11.123456Z app/sage-production-alb/50dc6c495c0c9188 "
    "203.0.113.7:53412 10.0.1.17:3000 0.000 0.012 0.000 200 200 512 1024 "
    '"GET https://api.sage.ai:443/api/chat HTTP/1.1" "Mozilla/5.0" ECDHE-RSA-AES128-GCM-SHA256 '
    'TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/sage/73e2 "Root=1-1" '
    '"api.sage.ai" "-" 0 2026-12-01T03:00:11.000000Z "forward" "-" "-" "10.0.1.17:3000" '
    '"200" "-" "-"',
    "(service sage-production-backend) has reached a steady state.",
    "POST /api/messages 201 512 - 23.456 ms",
    "2026-11-25 10:00:01.000 UTC:10.0.1.17(50312):app@sage:[4243]:LOG:  connection authorized: "
    "user=app database=sage application_name=prisma",
)

# The patterns incident_triage used before issue 13, as they were (the baseline).
SEED_RULES = (
    (
        "pg_connection_exhaustion",
        re.compile(
            r"sorry, too many clients already"
            r"|remaining connection slots are reserved for"
            r"|too many connections for (?:role|database) \""
            r"|\bP2037\b|Too many database connections opened|\bTooManyConnections\b"
            r"|(?:SQLSTATE|sqlstate|error code|code)[\s:=\[\('\"]*53300\b"
        ),
    ),
    (
        "prisma_pool_timeout",
        re.compile(r"\bP2024\b|Timed out fetching a new connection from the connection pool"),
    ),
    (
        "oom_kill",
        re.compile(
            r"OutOfMemoryError: Container killed due to memory usage"
            r"|Out of memory: Kill(?:ed)? process|Memory cgroup out of memory|\boom-kill(?:er)?\b"
            r"|JavaScript heap out of memory|\bOOMKilled\b\W{0,3}\s*true"
            r"|terminated by signal 9: Killed|exit(?:ed)?(?: with)? code:? 137\b"
        ),
    ),
    (
        "http_5xx",
        re.compile(
            r"(?:HTTP/\d(?:\.\d)?\"?|status(?:Code)?\"?\s*[=:]|code\"?\s*[=:])\s*\"?5\d\d\b"
            r"|\" 5\d\d \d"
        ),
    ),
)


def seed_classify(text: str) -> str:
    return next((name for name, rule in SEED_RULES if rule.search(text)), UNKNOWN)


def build(lines: int, error_share: float) -> list[str]:
    corpus = [text for _, text in labelled()]
    every = max(1, round(1 / error_share)) if error_share > 0 else lines + 1
    errors, ordinary = itertools.cycle(corpus), itertools.cycle(ORDINARY)
    return [next(errors) if i % every == 0 else next(ordinary) for i in range(lines)]


def best_rate(run: Callable[[], None], lines: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return lines / min(times)


def accuracy(classify: Callable[[str], str]) -> float:
    rows = labelled()
    return sum(classify(text) == label for label, text in rows) / len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--error-share", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    log = build(args.lines, args.error_share)
    data = ("\n".join(log) + "\n").encode()

    def cli_path() -> None:
        classify_lines(io.BytesIO(data), io.StringIO(), as_json=True)

    rows = [
        ("categories.classify_text", lambda: [classify_text(t) for t in log], classify_text),
        ("triage classify path (group + json)", cli_path, classify_text),
        ("baseline: the seed's 4 rules", lambda: [seed_classify(t) for t in log], seed_classify),
    ]
    print(
        f"{args.lines} lines, {args.error_share:.0%} from the labelled corpus, "
        f"{len(data) / 1e6:.1f} MB; best of {args.repeat}; Python {platform.python_version()}"
    )
    print(f"{'classifier':<38} {'lines/s':>12} {'MB/s':>7} {'corpus accuracy':>16}")
    results = {}
    for name, run, classify in rows:
        rate = best_rate(run, args.lines, args.repeat)
        share = accuracy(classify)
        results[name] = {"lines_per_s": round(rate), "corpus_accuracy": round(share, 4)}
        mb_s = rate * len(data) / args.lines / 1e6
        print(f"{name:<38} {rate:>12,.0f} {mb_s:>7.1f} {share:>15.1%}")
    ours, seed = results[rows[0][0]], results[rows[2][0]]
    print(f"classify_text vs baseline: {ours['lines_per_s'] / seed['lines_per_s']:.2f}x the speed")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
