"""Doctor checks of incidents: the alarms alarm_sensor watches, and the SNS topic reports go to."""

from __future__ import annotations

from sage_ops.checks import Needs, Probe
from sage_ops.errors import ConfigError
from sage_ops.incidents.evidence.cloudwatch import CloudWatchAlarms
from sage_ops.incidents.resources import CLOUDWATCH, IncidentConfig
from sage_ops.platforms import aws


def doctor_checks(needs: Needs) -> list[tuple[str, Probe]]:
    return [("alarms", lambda: _alarms(needs)), ("sns topic", lambda: _sns(needs))]


def _alarms(needs: Needs) -> str:
    config = IncidentConfig.from_env()
    if config.source != CLOUDWATCH:
        needs.setting("SAGE_OPS_ALARM_SOURCE", "local probes instead of the stack's alarms")
        return f"local probes, named {config.alarm_prefix}*"
    needs.setting("SAGE_OPS_ALARM_PREFIX", f"every alarm named {config.alarm_prefix}* is watched")
    names = sorted(alarm.name for alarm in CloudWatchAlarms(config.alarm_prefix).alarms())
    if not names:
        raise ConfigError(
            f"no CloudWatch alarm is named {config.alarm_prefix}* (SAGE_OPS_ALARM_PREFIX)"
        )
    return f"cloudwatch, {len(names)} alarms: {', '.join(names)}"


def _sns(needs: Needs) -> str:
    needs.capability("SAGE_OPS_SNS_TOPIC_ARN", "incident reports would reach the run log only")
    arn = str(IncidentConfig.from_env().sns_topic_arn)
    aws.client("sns").get_topic_attributes(TopicArn=arn)
    return f"{arn} exists"
