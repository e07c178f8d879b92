"""Telling people: the SNS topic in production, the run log locally.

The message is plain text (the summary, cause, fixes, suspects and where the full report is),
never the report's markdown with its embedded image, and fits SNS's limits.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from sage_ops.incidents.errors import NotificationError
from sage_ops.platforms import aws

SUBJECT_MAX = 100  # SNS: ASCII, no line breaks, at most 100 characters
MESSAGE_MAX_BYTES = 256 * 1024


class Notifier(abc.ABC):
    @abc.abstractmethod
    def send(self, subject: str, body: str) -> str:
        """Deliver; return where it went (for the report's metadata)."""


class SnsNotifier(Notifier):
    def __init__(self, topic_arn: str, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self.client = client or aws.client("sns", config=aws.WITHIN_A_TICK)

    def send(self, subject: str, body: str) -> str:
        try:
            result = self.client.publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(subject),
                Message=_fit(body, MESSAGE_MAX_BYTES),
            )
        except aws.ERRORS as exc:
            raise NotificationError(
                f"cannot publish the incident report to {self.topic_arn}: {aws.error_text(exc)} "
                "(check SAGE_OPS_SNS_TOPIC_ARN and sns:Publish)"
            ) from None
        return f"SNS {self.topic_arn} (message {result['MessageId']})"


class RunLogNotifier(Notifier):
    """Local: the report goes to the run's log, where the UI shows it."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log

    def send(self, subject: str, body: str) -> str:
        self.log(f"{subject}\n{body}")
        return "run log"


def sns_subject(text: str) -> str:
    ascii_only = text.encode("ascii", "ignore").decode()
    line = " ".join(ascii_only.split())
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 3] + "..."


def _fit(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 64].decode(errors="ignore") + "\n... (truncated; see the report)"
