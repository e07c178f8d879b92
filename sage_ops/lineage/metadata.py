"""The metadata keys deploy records on its `<env>_schema` and `<env>_deployment` materializations
(a rollout's and a rollback's), which lineage reads back (what is deployed, rollouts and rollback
targets, the changes incident triage correlates): spelled once, here, for writers and readers."""

from __future__ import annotations

COMMIT = "commit"
ENVIRONMENT = "environment"
IMAGE = "image"  # repo@sha256:... now serving
REVISION = "revision"
PREVIOUS_IMAGE = "previous_image"
ROLLBACK_OF = "rollback_of"  # the image a rollback replaced
LAUNCHED_BY = "launched_by"
MIGRATIONS_APPLIED = "migrations_applied"
PRE_MIGRATION_BACKUP = "pre_migration_backup"
SKIPPED = "skipped"  # a step with nothing to do says why under this key


def deployment(
    commit: str,
    environment: str,
    image: str,
    revision: str,
    previous_image: str | None,
    launched_by: str,
) -> dict[str, str]:
    """What every deployment record carries, a rollout's and a rollback's alike."""
    return {
        COMMIT: commit,
        ENVIRONMENT: environment,
        IMAGE: image,
        REVISION: revision,
        PREVIOUS_IMAGE: previous_image or "",
        LAUNCHED_BY: launched_by,
    }
