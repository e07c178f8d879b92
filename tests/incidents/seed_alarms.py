"""The production alarms as infra/terraform/modules/alarms defines them, created in moto, plus filler alarms to make describe_alarms paginate."""

from __future__ import annotations

from typing import Any

PREFIX = "sage-production-"
ECS_CPU = f"{PREFIX}ecs-cpu-high"
RDS_CPU = f"{PREFIX}rds-cpu-high"
ERROR_RATE = f"{PREFIX}api-error-rate-high"
P95 = f"{PREFIX}api-latency-p95-high"
RDS_CONNECTIONS = f"{PREFIX}rds-connections-high"
LB = "app/sage-production/0123456789abcdef"
DB = "sage-production-postgres"


def _alb(metric: str, id_: str) -> dict[str, Any]:
    return {
        "Id": id_,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": metric,
                "Dimensions": [{"Name": "LoadBalancer", "Value": LB}],
            },
            "Period": 60,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


ERROR_RATE_METRICS = [
    {
        "Id": "e1",
        "Expression": "IF(m3 > 0, 100*(FILL(m1,0)+FILL(m2,0))/m3, 0)",
        "Label": "5xx rate %",
        "ReturnData": True,
    },
    _alb("HTTPCode_Target_5XX_Count", "m1"),
    _alb("HTTPCode_ELB_5XX_Count", "m2"),
    _alb("RequestCount", "m3"),
]


def create_seed_alarms(cw: Any) -> None:
    common = {"ComparisonOperator": "GreaterThanThreshold", "ActionsEnabled": True}
    cw.put_metric_alarm(
        AlarmName=ECS_CPU,
        Namespace="AWS/ECS",
        MetricName="CPUUtilization",
        Statistic="Average",
        Dimensions=[
            {"Name": "ClusterName", "Value": "sage-production"},
            {"Name": "ServiceName", "Value": "sage-production-backend"},
        ],
        Period=300,
        EvaluationPeriods=2,
        Threshold=80,
        **common,
    )
    cw.put_metric_alarm(
        AlarmName=RDS_CPU,
        Namespace="AWS/RDS",
        MetricName="CPUUtilization",
        Statistic="Average",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": DB}],
        Period=300,
        EvaluationPeriods=1,
        Threshold=80,
        **common,
    )
    cw.put_metric_alarm(
        AlarmName=ERROR_RATE,
        Metrics=ERROR_RATE_METRICS,
        EvaluationPeriods=1,
        Threshold=5,
        TreatMissingData="notBreaching",
        **common,
    )
    cw.put_metric_alarm(
        AlarmName=P95,
        Namespace="AWS/ApplicationELB",
        MetricName="TargetResponseTime",
        ExtendedStatistic="p95",
        Dimensions=[{"Name": "LoadBalancer", "Value": LB}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=2,
        TreatMissingData="notBreaching",
        **common,
    )
    cw.put_metric_alarm(
        AlarmName=RDS_CONNECTIONS,
        Namespace="AWS/RDS",
        MetricName="DatabaseConnections",
        Statistic="Maximum",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": DB}],
        Period=60,
        EvaluationPeriods=2,
        Threshold=85,
        **common,
    )
    # Not ours: another team's alarm in the same account.
    cw.put_metric_alarm(
        AlarmName="billing-estimated-charges",
        Namespace="AWS/Billing",
        MetricName="EstimatedCharges",
        Statistic="Maximum",
        Period=21600,
        EvaluationPeriods=1,
        Threshold=1000,
        **common,
    )


def create_fillers(cw: Any, count: int, start: int = 0) -> list[str]:
    """`count` more alarms with the prefix (queue depth), for pagination and scale."""
    names = []
    for i in range(start, start + count):
        names.append(f"{PREFIX}queue-{i:03d}-depth-high")
        cw.put_metric_alarm(
            AlarmName=f"{PREFIX}queue-{i:03d}-depth-high",
            Namespace="Sage/Queues",
            MetricName="Depth",
            Statistic="Maximum",
            Dimensions=[{"Name": "Queue", "Value": f"q{i}"}],
            Period=60,
            EvaluationPeriods=1,
            Threshold=1000,
            ComparisonOperator="GreaterThanThreshold",
        )
    return names
