"""The run-tag contract between the deploy pipeline and its readers (lineage, incident triage).

Defined once so writer and readers cannot drift apart: git_push_sensor tags a deploy run with
the commit; every deploy job (deploy_backend, deploy_to_staging, promote_to_production,
rollback_deployment) carries the deploy-lock tag, which is also what the instance's run queue
limits to one at a time (dagster.yaml); a rollout that completed tags its run with the digest
now serving the environment. nightly_backup_schedule tags its run with the day it is for.
"""

from __future__ import annotations

from collections.abc import Mapping

COMMIT_TAG = "sage_ops/commit"  # value: the full commit SHA
COMMIT_SUBJECT_TAG = "sage_ops/commit_subject"  # value: its subject line, cut to 200 characters
DEPLOY_LOCK_TAG = "sage_ops/deploy-lock"  # value: "backend"; on every deploy job's runs
DEPLOY_LOCK = "backend"
# value: the signed-in user who launched the run; the UI gate (sage_ops/gate) sets it on every
# run it lets through, over whatever the client sent.
LAUNCHED_BY_TAG = "sage_ops/launched_by"
# Runs carrying this tag share a concurrency limit of 1 (dagster.yaml): backups and migrations.
DATABASE_WRITER_TAG = {"sage_ops/database-writer": "primary"}
# value: the UTC day (YYYY-MM-DD) nightly_backup_schedule launched the run for; one run per day.
SCHEDULED_DAY_TAG = "sage_ops/scheduled_day"


def environment_tag(environment: str) -> str:
    """`sage_ops/<environment>`; value: the image digest (sha256:...) that run rolled out."""
    return f"sage_ops/{environment}"


def digest_of(image: str) -> str:
    """sha256:... of repo@sha256:... (an image reference that is a digest already stays one)."""
    return image.split("@")[-1]


def deployment_tags(environment: str, commit: str, image: str) -> dict[str, str]:
    """What a completed rollout adds to its run."""
    return {environment_tag(environment): digest_of(image), COMMIT_TAG: commit}


def launched_by(tags: Mapping[str, str]) -> str:
    """Who launched a run: the gate's tag, else the automation that did, else unknown."""
    if LAUNCHED_BY_TAG in tags:
        return tags[LAUNCHED_BY_TAG]
    for key, kind in (("dagster/sensor_name", "sensor"), ("dagster/schedule_name", "schedule")):
        if key in tags:
            return f"{kind} {tags[key]}"
    return "unknown (not launched through the sage_ops gate)"
