"""Errors of the incident pipeline, each naming the system that failed and what to check."""

from sage_ops.errors import SageOpsError


class AlarmSourceError(SageOpsError):
    """Alarms could not be read (CloudWatch unreachable, denied, or local probes misconfigured)."""


class EvidenceError(SageOpsError):
    """Metrics or logs for an incident could not be read."""


class NotificationError(SageOpsError):
    """The incident report could not be delivered (SNS topic missing, denied, unreachable)."""


class UnknownAlarm(SageOpsError):
    """An incident names an alarm the configured source does not have."""
