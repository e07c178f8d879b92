"""Local alarms evaluate like CloudWatch: periods, M of N, statistics, missing data."""

from datetime import timedelta

import pandas as pd
import pytest

from sage_ops.incidents.alarms.alarm import ALARM, INSUFFICIENT_DATA, OK
from sage_ops.incidents.alarms.evaluation import AlarmRule, evaluate, period_values
from tests.incidents.factories import T0

NOW = T0 + timedelta(minutes=10)


def samples(*points: tuple[float, float]) -> pd.DataFrame:
    """(seconds before NOW, value) pairs."""
    return pd.DataFrame(
        {
            "timestamp": [pd.Timestamp(NOW - timedelta(seconds=s)) for s, _ in points],
            "value": [v for _, v in points],
        }
    )


def rule(**fields) -> AlarmRule:
    values = dict(name="r", metric="m", statistic="Average", threshold=80, period_s=60)
    values.update(fields)
    return AlarmRule(**values)


def test_statistic_is_taken_per_period_oldest_first():
    data = samples((150, 10), (130, 30), (70, 90), (10, 50), (5, 70))
    assert period_values(rule(evaluation_periods=3), data, NOW) == [20.0, 90.0, 60.0]
    assert period_values(rule(evaluation_periods=3, statistic="Maximum"), data, NOW) == [
        30.0,
        90.0,
        70.0,
    ]


def test_two_of_two_periods_must_breach_like_the_ecs_cpu_alarm():
    cpu = rule(evaluation_periods=2, period_s=300)
    one_high = samples((400, 50), (100, 95))
    both_high = samples((400, 85), (100, 95))
    assert evaluate(cpu, one_high, NOW).state == OK
    outcome = evaluate(cpu, both_high, NOW)
    assert outcome.state == ALARM
    assert "2 of the last 2 datapoints [85, 95] greater than the threshold (80)" in outcome.reason


def test_datapoints_to_alarm_m_of_n():
    three = rule(evaluation_periods=3, datapoints_to_alarm=2)
    assert evaluate(three, samples((150, 90), (90, 10), (30, 85)), NOW).state == ALARM
    assert evaluate(three, samples((150, 90), (90, 10), (30, 15)), NOW).state == OK


def test_percentile_statistic_for_the_p95_latency_alarm():
    latency = rule(statistic="p95", threshold=2)
    fast = samples(*[(i, 0.1) for i in range(1, 40)])
    tail = samples(*[(i, 0.1) for i in range(1, 38)], (38, 3.0), (39, 3.0), (40, 3.0))
    assert evaluate(latency, fast, NOW).state == OK
    assert evaluate(latency, tail, NOW).state == ALARM


@pytest.mark.parametrize(
    ("treatment", "expected"),
    [
        ("missing", INSUFFICIENT_DATA),
        ("notBreaching", OK),
        ("breaching", ALARM),
        ("ignore", None),
    ],
)
def test_missing_data_treatments(treatment, expected):
    stale = samples((3600, 99))  # only data far outside the evaluation range
    assert evaluate(rule(treat_missing=treatment), stale, NOW).state == expected


def test_comparison_operators_and_future_samples_ignored():
    low = rule(comparison="LessThanThreshold", threshold=1)
    assert evaluate(low, samples((10, 0.5)), NOW).state == ALARM
    future = pd.DataFrame({"timestamp": [pd.Timestamp(NOW + timedelta(seconds=5))], "value": [99]})
    assert evaluate(rule(), future, NOW).state == INSUFFICIENT_DATA


def test_bad_rules_fail_at_definition():
    with pytest.raises(ValueError, match="statistic"):
        rule(statistic="p950")
    with pytest.raises(ValueError, match="comparison"):
        rule(comparison="Above")
