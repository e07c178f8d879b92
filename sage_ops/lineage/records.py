"""What the lineage commands answer, as plain records with text and JSON renderings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sage_ops.lineage.metadata import ENVIRONMENT, IMAGE, LAUNCHED_BY, MIGRATIONS_APPLIED


@dataclass(frozen=True)
class Deployment:
    environment: str
    commit: str
    image: str
    revision: str
    since: str  # ISO UTC of the materialization
    run_id: str
    migrations: list[str] = field(default_factory=list)
    pre_migration_backup: str = ""
    rollback_of: str = ""
    launched_by: str = ""  # the sage_ops/launched_by tag of the run that deployed it


@dataclass(frozen=True)
class Step:
    asset: str
    at: str
    run_id: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class CommitStory:
    commit: str
    steps: list[Step]
    runs: list[dict[str, str]]  # run id, job, status, launched_by
    superseded_by: str = ""


@dataclass(frozen=True)
class BackupUse:
    key: str
    produced_by: list[Step]
    relied_on_by: list[Step]


def to_json(record: Deployment | CommitStory | BackupUse) -> str:
    return json.dumps(asdict(record), indent=2, default=str)


def deployment_text(d: Deployment) -> str:
    lines = [
        f"{d.environment}: commit {d.commit[:12]} since {d.since}",
        f"  image     {d.image}",
        f"  revision  {d.revision}",
        f"  run       {d.run_id}",
        f"  by        {d.launched_by or 'unknown'}",
        f"  migrations {', '.join(d.migrations) or 'none in this deploy'}",
        f"  backup    {d.pre_migration_backup or 'none'}",
    ]
    if d.rollback_of:
        lines.append(f"  (a rollback; replaced {d.rollback_of})")
    return "\n".join(lines)


def commit_text(story: CommitStory) -> str:
    lines = [f"commit {story.commit}"]
    if story.superseded_by:
        lines.append(f"  not deployed: superseded by {story.superseded_by}")
    lines += [
        f"  {s.at}  {s.asset:<22} run {s.run_id[:8]}  {_brief(s.detail)}" for s in story.steps
    ]
    lines += [
        f"  run {r['run_id'][:8]} {r['job']}: {r['status']}, launched by {r[LAUNCHED_BY]}"
        for r in story.runs
    ]
    return "\n".join(lines)


def backup_text(use: BackupUse) -> str:
    lines = [f"backup {use.key}"]
    lines += [f"  made by   {s.asset} in run {s.run_id[:8]} at {s.at}" for s in use.produced_by]
    lines += [f"  relied on {s.asset} in run {s.run_id[:8]} at {s.at}" for s in use.relied_on_by]
    if not use.relied_on_by:
        lines.append("  no migration run relied on it")
    return "\n".join(lines)


def _brief(detail: dict[str, Any]) -> str:
    keys = (IMAGE, ENVIRONMENT, MIGRATIONS_APPLIED, "status", "size_mb")
    return ", ".join(
        f"{k}={detail[k]}" for k in keys if k in detail and detail[k] not in ("", None)
    )
