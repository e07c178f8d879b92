"""Stamps who launched a run onto the run itself: the `sage_ops/launched_by` tag, written into the
launch's variables over whatever the client sent."""

from __future__ import annotations

import copy
from typing import Any

from sage_ops.gate.mutations import GraphQLRequest, Mutation
from sage_ops.lineage.tags import LAUNCHED_BY_TAG as LAUNCHED_BY

# Mutation field -> (argument, where its tags live inside the argument). A list argument
# (launchMultipleRuns) holds one executionParams per run.
TAGGED_ARGUMENTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "launchRun": [("executionParams", ("executionMetadata", "tags"))],
    "launchPipelineExecution": [("executionParams", ("executionMetadata", "tags"))],
    "launchMultipleRuns": [("executionParamsList", ("executionMetadata", "tags"))],
    "launchRunReexecution": [
        ("reexecutionParams", ("extraTags",)),
        ("executionParams", ("executionMetadata", "tags")),
    ],
    "launchPipelineReexecution": [
        ("reexecutionParams", ("extraTags",)),
        ("executionParams", ("executionMetadata", "tags")),
    ],
    "launchPartitionBackfill": [("backfillParams", ("tags",))],
    "reexecutePartitionBackfill": [("reexecutionParams", ("extraTags",))],
}


class UntaggableLaunch(Exception):
    """A launch whose parameters are inline literals: the gate tags variables only."""


def tag_launches(request: GraphQLRequest, found: list[Mutation], who: str) -> GraphQLRequest:
    """A copy of the request whose every launch carries `sage_ops/launched_by = who`."""
    tagged = GraphQLRequest(request.query, copy.deepcopy(request.variables), request.operation_name)
    for mutation in found:
        for argument, path in TAGGED_ARGUMENTS.get(mutation.name, []):
            if not mutation.passes(argument):
                continue
            variable = mutation.variable_of(argument)
            if variable is None:
                raise UntaggableLaunch(
                    f"pass {mutation.name}'s {argument} as a GraphQL variable, so that the gate "
                    "can record who launched the run"
                )
            value = mutation.argument(argument, tagged)
            for params in value if isinstance(value, list) else [value]:
                if isinstance(params, dict):
                    _set_tag(params, path, who)
            tagged.variables[variable] = value
    return tagged


def _set_tag(params: dict[str, Any], path: tuple[str, ...], who: str) -> None:
    holder = params
    for key in path[:-1]:
        if not isinstance(holder.get(key), dict):
            holder[key] = {}
        holder = holder[key]
    tags = [
        tag
        for tag in holder.get(path[-1]) or []
        if not (isinstance(tag, dict) and tag.get("key") == LAUNCHED_BY)
    ]
    holder[path[-1]] = [*tags, {"key": LAUNCHED_BY, "value": who}]
