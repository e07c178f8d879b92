"""The mark of what running an asset or job changes outside sage_ops' own records.

Every asset, and every job that runs ops rather than assets, carries the mark once as a
definition tag (`effect(...)`); the UI gate reads it from the code location's definitions to
decide whether a launch is destructive, so a new asset is judged by what it declares it does,
never by its name. An environment is named when the write always lands in that environment
(staging_schema writes the staging database); a write whose destination is configuration
(DATABASE_URL, a job's config) names none, and the gate treats it as production's.
"""

from __future__ import annotations

EFFECT_TAG = "sage_ops/effect"
ENVIRONMENT_TAG = "sage_ops/effect-environment"

# Writes: what the gate keeps for admins (unless the environment is one ordinary users may change).
WRITES_DATABASE = "writes-database"  # changes a database's schema or data (migrations)
DEPLOYS = "deploys"  # changes what an environment serves (rollouts, rollbacks)
RESTORES = "restores"  # replaces a database with a backup
WRITES = frozenset({WRITES_DATABASE, DEPLOYS, RESTORES})

# Declared effects that change nothing a user relies on: the gate lets signed-in users run them.
READS = "reads"  # reads databases, services or logs; records (and sends) only its own report
BACKS_UP = "backs-up"  # adds backups to the store, verifies them in scratch, prunes by policy
BUILDS = "builds"  # builds an image and pushes it to the registry by commit
EFFECTS = WRITES | {READS, BACKS_UP, BUILDS}


def effect(kind: str, environment: str | None = None) -> dict[str, str]:
    """The tags that mark a definition with its effect (and the environment it always writes)."""
    if kind not in EFFECTS:
        raise ValueError(f"unknown effect {kind!r}: one of {', '.join(sorted(EFFECTS))}")
    return {EFFECT_TAG: kind, **({ENVIRONMENT_TAG: environment} if environment else {})}
