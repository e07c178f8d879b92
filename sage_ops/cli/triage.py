"""`sage-ops triage`: root causes of log lines, or a whole triage of a log."""

import argparse
import os
import sys
from datetime import datetime, timedelta
from typing import BinaryIO

from sage_ops.errors import ConfigError


def classify_log(args: argparse.Namespace) -> int:
    from sage_ops.incidents.log_triage import classify_lines, summary

    try:
        with _log_stream(args.file) as stream:
            counts = classify_lines(stream, sys.stdout, args.json)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(summary(counts), file=sys.stderr)  # stdout stays one line per input line
    return 0


def analyze_log(args: argparse.Namespace) -> int:
    from sage_ops.incidents.log_triage import analyze, render, report

    with _log_stream(args.file) as stream:
        analysis = analyze(stream)
    changes, notes = _deploy_runs(args.environment, analysis.first_error)
    print(render(report(analysis, changes, notes)))
    return 0


def _deploy_runs(environment: str, first_error: datetime | None) -> tuple[list, list[str]]:
    """sage_ops' own deploy runs around the first error, when a Dagster instance is at hand."""
    if not os.environ.get("DAGSTER_HOME") or first_error is None:
        return [], ["set DAGSTER_HOME to include this instance's deploy runs as suspects"]
    from sage_ops.lineage.changes import recent_changes
    from sage_ops.lineage.instance import open_instance

    since = first_error - timedelta(hours=2)
    return recent_changes(open_instance(), since, environment), []


def _log_stream(name: str) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror}") from None
