"""The triage function on its own: p95 metrics moto cannot serve (through the fake), 5xx lines
after a deploy, partial evidence, unknown patterns."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from sage_ops.incidents.alarms import Alarm
from sage_ops.incidents.budget import ConnectionBudget
from sage_ops.incidents.errors import EvidenceError
from sage_ops.incidents.evidence import LogSource
from sage_ops.incidents.report import Links, llm_facts, markdown, subject, text
from sage_ops.incidents.triage import triage
from sage_ops.incidents.window import Window
from sage_ops.lineage.changes import DEPLOYMENT, Change
from tests.incidents.factories import T0, alarm, logs, metrics
from tests.incidents.fakes import FakeCloudWatchMetrics

P95 = alarm(
    "sage-production-api-latency-p95-high",
    metric="AWS/ApplicationELB TargetResponseTime (p95)",
    threshold=2.0,
)
NOW = T0 + timedelta(minutes=10)


class Lines(LogSource):
    def __init__(self, frame: pd.DataFrame, name: str = "test lines") -> None:
        self.frame, self.name = frame, name

    def lines(self, start, end):
        return self.frame[(self.frame["timestamp"] >= start) & (self.frame["timestamp"] <= end)]


class Broken(LogSource):
    name = "CloudWatch Logs /gone"

    def lines(self, start, end):
        raise EvidenceError("cannot read log group /gone: ResourceNotFoundException")


def run(a: Alarm, lines: pd.DataFrame, series: pd.DataFrame, changes=(), sources=()):
    fake = FakeCloudWatchMetrics(series)
    return triage(
        a, T0, fake, [Lines(lines), *sources], list(changes), ConnectionBudget(), NOW, Window()
    ), fake


def test_5xx_burst_after_deploy_with_p95_from_the_fake():
    series = metrics(P95.metric, [0.3, 0.4, 2.8, 3.5], start=T0 - timedelta(minutes=2))
    deploy = Change(
        DEPLOYMENT,
        "production_deployment",
        T0 - timedelta(minutes=6),
        "run-1",
        environment="production",
        commit="deadbeefcafe0123",
    )
    lines = logs(
        *[f'10.0.0.{i} - - "POST /api/chat HTTP/1.1" 502 17' for i in range(8)],
        start=T0 - timedelta(seconds=30),
    )
    result, fake = run(P95, lines, series, [deploy], [Broken()])
    assert fake.asked == [(P95.name, T0 - timedelta(hours=2), T0 + timedelta(minutes=10))]
    assert result.primary.key == "http_5xx"
    assert result.templates.iloc[0]["count"] == 8
    assert result.gaps == [
        "logs unavailable from CloudWatch Logs /gone: cannot read log group "
        "/gone: ResourceNotFoundException"
    ]
    assert result.plot_png and result.plot_png.startswith(b"\x89PNG")
    links = Links(
        run="http://ui/runs/1", rollback="http://ui/locations/x/jobs/rollback_deployment/playground"
    )
    md = markdown(result, links)
    assert "## Root cause: 5xx burst after a deploy" in md and "**Roll back:**" in md
    assert "| AWS/ApplicationELB TargetResponseTime (p95) | 4 | 0.3 |" in md
    assert "## Gaps" in md and "ResourceNotFoundException" in md
    assert "Roll back: http://ui/locations/x/jobs/rollback_deployment/playground" in text(
        result, links
    )
    assert subject(result).startswith("ALARM 5xx burst after a deploy: ")


def test_unknown_pattern_is_reported_with_top_templates():
    lines = logs(
        "TypeError: Cannot read properties of undefined (reading 'id') at 12",
        "TypeError: Cannot read properties of undefined (reading 'id') at 97",
        "ERROR: something new",
        start=T0 - timedelta(seconds=5),
    )
    result, _ = run(alarm(), lines, metrics("errors", [7.0]))
    assert [f.key for f in result.findings] == ["unknown"]
    assert result.templates.iloc[0]["count"] == 2
    body = text(result, Links())
    assert (
        "Top log templates:\n- 2x TypeError: Cannot read properties of undefined (reading <str>) at <num>"
        in body
    )
    facts = llm_facts(result)
    assert "12" not in facts.split("Top error log templates")[1].split("Changes")[0]  # masked


def test_no_evidence_at_all_still_gives_a_report():
    empty_logs = logs()
    result, _ = run(alarm(), empty_logs, metrics("errors", []))
    assert result.primary.key == "unknown" and result.plot_png is None
    md = markdown(result, Links())
    assert "No error lines in the window." in md and "No datapoints retrieved." in md
    assert "No deployment or migration recorded" in md
