"""CloudWatch Logs as evidence: the error lines of the service's and the database's log groups.

The filter pattern keeps the transfer small on AWS; the analysis still filters client-side
(templates.is_error), because a pattern is a coarse net and moto ignores `?` patterns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from sage_ops.incidents.errors import EvidenceError
from sage_ops.incidents.evidence.base import LogSource, log_frame
from sage_ops.platforms import aws

# Filter-pattern terms are case-sensitive; `?` ORs them; quotes keep phrases and digits whole.
ERROR_FILTER_PATTERN = " ".join(
    f"?{term}"
    for term in (
        "ERROR",
        "FATAL",
        "PANIC",
        "Error",
        "error",
        "Exception",
        "Killed",
        "OutOfMemory",
        '"out of memory"',
        '"too many"',
        "P2024",
        "P2037",
        "timeout",
        "Timeout",
        '" 500 "',
        '" 502 "',
        '" 503 "',
        '" 504 "',
    )
)
MAX_EVENTS = 10_000


class CloudWatchLogs(LogSource):
    def __init__(
        self, log_group: str, client: Any = None, pattern: str = ERROR_FILTER_PATTERN
    ) -> None:
        self.log_group = log_group
        self.client = client or aws.client("logs", config=aws.WITHIN_A_TICK)
        self.pattern = pattern
        self.name = f"CloudWatch Logs {log_group}"

    def lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        rows: list[tuple[datetime, str, str]] = []
        try:
            pages = self.client.get_paginator("filter_log_events").paginate(
                logGroupName=self.log_group,
                startTime=_ms(start),
                endTime=_ms(end),
                filterPattern=self.pattern,
            )
            for page in pages:
                rows += [_row(self.log_group, e) for e in page.get("events", [])]
                if len(rows) >= MAX_EVENTS:
                    break
        except aws.ERRORS as exc:
            raise EvidenceError(
                f"cannot read log group {self.log_group}: {aws.error_text(exc)} "
                "(check the group name in SAGE_OPS_LOG_GROUPS and logs:FilterLogEvents)"
            ) from None
        return log_frame(rows[:MAX_EVENTS])


def _row(group: str, event: dict[str, Any]) -> tuple[datetime, str, str]:
    at = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    return at, f"{group}/{event.get('logStreamName', '')}", event["message"].rstrip("\n")


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)
