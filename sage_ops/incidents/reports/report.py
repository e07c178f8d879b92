"""The incident report: markdown for the asset's metadata, plain text for the notification,
and the facts handed to the optional LLM summary (masked templates, never raw lines)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from sage_ops.incidents.classification.root_causes import Finding
from sage_ops.incidents.reports.plot import metric_plot
from sage_ops.incidents.triage import Triage
from sage_ops.lineage.changes import DEPLOYMENT

TOP_TEMPLATES = 10


@dataclass(frozen=True)
class Links:
    run: str | None = None  # this triage run in the Dagster UI
    rollback: str | None = None  # the rollback_deployment job's launchpad
    environment: str = "production"  # what the rollback's run config names

    @property
    def rollback_config(self) -> str:
        return (
            f'{{"ops": {{"rollback_op": {{"config": {{"environment": "{self.environment}"}}}}}}}}'
        )


def summary_line(t: Triage) -> str:
    p = t.primary
    return (
        f"{t.alarm.name} in ALARM since {t.started:%Y-%m-%d %H:%M:%S} UTC: {p.title} "
        f"(confidence {p.confidence})"
    )


def subject(t: Triage) -> str:
    """Cause first: a subject cut to SNS's 100 characters still says what happened."""
    return f"ALARM {t.primary.title}: {t.alarm.name}"


def markdown(t: Triage, links: Links, llm_text: str | None = None, llm_note: str = "") -> str:
    parts = [
        f"# Incident: {_md(t.alarm.name)}",
        f"**Summary.** {_md(summary_line(t))}. Alarm reason: {_md(t.alarm.reason) or 'n/a'}",
        _root_cause(t),
        _others(t),
        _templates(t),
        _metrics(t),
        _changes(t, links),
    ]
    if llm_text:
        parts.append(f"## Second opinion ({_md(llm_note)})\n\n{llm_text}")
    notes = [*t.gaps, *([llm_note] if llm_note and not llm_text else [])]
    if notes:
        parts.append("## Gaps\n\n" + "\n".join(f"- {_md(g)}" for g in notes))
    if links.run:
        parts.append(f"[This triage run]({links.run})")
    return "\n\n".join(p for p in parts if p)


def text(t: Triage, links: Links) -> str:
    """The notification: what, why, what to do, what changed, where to read more."""
    p = t.primary
    lines = [summary_line(t), "", f"Cause: {p.cause}", "", "Evidence:"]
    lines += [f"- {e}" for e in p.evidence[:6]]
    lines += ["", "Fixes, in order:", *_fix_lines(p, str)]
    suspects = [c for c in t.changes if c.flagged]
    if suspects:
        lines += ["", "Changed just before:"] + [f"- {c.describe()}" for c in suspects]
        if links.rollback and any(c.change.kind == DEPLOYMENT for c in suspects):
            lines.append(f"Roll back: {links.rollback} with run config {links.rollback_config}")
    if p.key == "unknown" and not t.templates.empty:
        lines += ["", "Top log templates:"]
        lines += [f"- {r.count}x {r.template[:200]}" for r in t.templates.head(5).itertuples()]
    if links.run:
        lines += ["", f"Full report: {links.run}"]
    return "\n".join(lines)


def llm_facts(t: Triage) -> str:
    findings = "\n".join(
        f"- {f.title} ({f.confidence}): {'; '.join(f.evidence[:5])}" for f in t.findings
    )
    templates = "\n".join(
        f"- {r.count}x, first {r.starts_vs_alarm_s:+.0f}s vs alarm: {r.template[:300]}"
        for r in t.templates.head(TOP_TEMPLATES).itertuples()
    )
    changes = "\n".join(f"- {c.describe()}" for c in t.changes[:5]) or "- none"
    return (
        f"Alarm {t.alarm.name} ({t.alarm.metric}, threshold {t.alarm.threshold:g}) went into "
        f"ALARM at {t.started:%Y-%m-%d %H:%M:%S} UTC: {t.alarm.reason}\n\n"
        f"Rules-based findings:\n{findings}\n\nTop error log templates (masked):\n"
        f"{templates or '- none'}\n\nChanges before the episode:\n{changes}\n\n"
        f"Metrics:\n{_metric_stats(t.metrics).to_string(index=False)}"
    )


def _root_cause(t: Triage) -> str:
    p = t.primary
    evidence = "\n".join(f"- {_md(e)}" for e in p.evidence)
    fixes = "\n".join(_fix_lines(p, _md))
    return (
        f"## Root cause: {_md(p.title)} (confidence {p.confidence})\n\n{_md(p.cause)}\n\n"
        f"**Evidence**\n\n{evidence}\n\n**Fixes, in order**\n\n{fixes}"
    )


def _fix_lines(p: Finding, escape: Callable[[str], str]) -> list[str]:
    return [f"{i}. {escape(fix)} ({stage})" for i, (stage, fix) in enumerate(p.staged_fixes, 1)]


def _others(t: Triage) -> str:
    if len(t.findings) < 2:
        return ""
    rows = [
        f"| {_md(f.title)} | {f.confidence} | {_md('; '.join(f.evidence[:2]))} |"
        for f in t.findings[1:]
    ]
    return "## Other candidates\n\n| cause | confidence | evidence |\n|---|---|---|\n" + "\n".join(
        rows
    )


def _templates(t: Triage) -> str:
    head = f"## Evidence: top log templates ({t.error_lines} error lines)\n\n"
    if t.templates.empty:
        return head + "No error lines in the window."
    rows = [
        f"| {i} | {r.count} | {r.starts_vs_alarm_s:+.0f} s | {_md(r.sources)} | "
        f"`{_code(r.template[:240])}` |"
        for i, r in enumerate(t.templates.head(TOP_TEMPLATES).itertuples(), 1)
    ]
    return (
        head
        + "| # | count | first seen vs alarm | source | template |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
    )


def _metrics(t: Triage) -> str:
    head = "## Metrics around the episode\n\n"
    stats = _metric_stats(t.metrics)
    if stats.empty:
        return head + "No datapoints retrieved."
    rows = [
        f"| {_md(r.metric)} | {r.points} | {r.min:.4g} | {r.mean:.4g} | {r.max:.4g} "
        f"| {r.last:.4g} |"
        for r in stats.itertuples()
    ]
    table = "| metric | points | min | mean | max | last |\n|---|---|---|---|---|---|\n"
    image = ""
    png = plot(t)
    if png:
        encoded = base64.b64encode(png).decode()
        image = f"\n\n![{_md(t.alarm.metric)}](data:image/png;base64,{encoded})"
    return head + table + "\n".join(rows) + image


def plot(t: Triage) -> bytes | None:
    """The alarm's own metric around the episode as a PNG, None without datapoints."""
    own = t.metrics[t.metrics["metric"] == t.alarm.metric]
    return metric_plot(own, f"{t.alarm.name}: {t.alarm.metric}", t.alarm.threshold, t.started)


def _metric_stats(metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty:
        return pd.DataFrame(columns=["metric", "points", "min", "mean", "max", "last"])
    grouped = metrics.groupby("metric", sort=True)["value"]
    return grouped.agg(points="size", min="min", mean="mean", max="max", last="last").reset_index()


def _changes(t: Triage, links: Links) -> str:
    head = "## What changed before\n\n"
    if not t.changes:
        return head + "No deployment or migration recorded in the Dagster instance before it."
    rows = [
        f"| {c.change.kind} | {_when(c.change.started_at)} | {_when(c.change.finished_at)} | "
        f"{c.minutes_before:.0f} min | {_md(c.change.environment)} | "
        f"`{_code(c.change.commit[:12])}` | `{_code(c.change.image)}` | {c.change.status} | "
        f"{c.change.source} | {'**suspect**' if c.flagged else ''} |"
        for c in t.changes[:10]
    ]
    table = (
        "| kind | started (UTC) | finished (UTC) | before episode | environment | commit | image "
        "| status | source | |\n|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    flagged = any(c.flagged and c.change.kind == DEPLOYMENT for c in t.changes)
    rollback = ""
    if flagged and links.rollback:
        rollback = (
            f"\n\n**Roll back:** [launch `rollback_deployment`]({links.rollback}) "
            f"with the run config `{links.rollback_config}` to restore the previous image, or "
            "from a shell: `dagster job launch -m sage_ops.definitions -j rollback_deployment "
            f"--config-json '{links.rollback_config}'`"
        )
    return head + table + rollback


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else "-"


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _code(value: str) -> str:
    return value.replace("`", "'").replace("|", "\\|")
