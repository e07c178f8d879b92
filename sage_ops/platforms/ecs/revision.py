"""Task-definition revisions: the service's current revision with only one image replaced."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from sage_ops.platforms.deployer import DeployError

# Returned by DescribeTaskDefinition but refused (or meaningless) in RegisterTaskDefinition.
READ_ONLY_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)
DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def pick_container(containers: list[dict[str, Any]], wanted: str | None, service: str) -> str:
    """Name of the container to update; refuse to guess between several."""
    names = [c["name"] for c in containers]
    if wanted:
        if wanted not in names:
            raise DeployError(f"no container {wanted!r} in the task definition (it has {names})")
        return wanted
    if len(names) == 1:
        return names[0]
    if service in names:
        return service
    raise DeployError(
        f"the task definition has containers {names} and none is named like the service "
        f"{service!r}: add ?container=NAME to the target URL"
    )


def revised_task_definition(task_def: Mapping[str, Any], container: str, image: str) -> dict:
    """The register_task_definition arguments: the current revision with one image replaced."""
    spec = {k: copy.deepcopy(v) for k, v in task_def.items() if k not in READ_ONLY_FIELDS}
    for definition in spec["containerDefinitions"]:
        if definition["name"] == container:
            definition["image"] = image
    return spec


def user_tags(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """Tags to carry over; `aws:` tags belong to AWS and cannot be set."""
    return [t for t in tags if not t.get("key", "").startswith("aws:")]


def image_of(task_def: Mapping[str, Any], container: str) -> str:
    return str(next(c["image"] for c in task_def["containerDefinitions"] if c["name"] == container))


def require_digest(image: str) -> None:
    """Deploy immutable references only, so what ran can always be redeployed exactly."""
    if not DIGEST_REF.match(image):
        raise DeployError(f"refusing to deploy {image!r}: use an immutable repo@sha256:<digest>")
