"""What a mutation would act on: the job, assets, partition and run config of the runs it would
start or stop, read from its arguments or, for runs and backfills it names by id, the instance."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import yaml

from sage_ops.gate.mutations import GraphQLRequest, Mutation

PARTITION_TAG = "dagster/partition"
JOB_KEYS = ("pipelineName", "jobName")


@dataclass(frozen=True)
class Target:
    job: str | None = None
    assets: tuple[str, ...] = ()
    partition: str | None = None
    run_config: Any = None
    name: str | None = None  # a schedule, sensor, run or backfill the mutation names
    subset: bool = False  # an op or step subset of the job (solidSelection, stepKeys)
    tags: tuple[tuple[str, str], ...] = ()  # the run tags the request itself sets

    def config_digest(self) -> str | None:
        """sha256 of the run config (canonical JSON): shows two launches used the same config
        without putting the config, which may hold hostnames or paths, into the log."""
        if self.run_config in (None, "", {}):
            return None
        canonical = json.dumps(self.run_config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def config_keys(self) -> list[str] | None:
        """The run config's keys as dotted paths to their values (never the values): what the
        launch overrides. A string is YAML, as Dagster reads it; None when it cannot be read."""
        config = self.run_config
        if isinstance(config, str):
            try:
                config = yaml.safe_load(config)
            except yaml.YAMLError:
                return None
        if config in (None, "", {}):
            return []
        if not isinstance(config, dict):
            return None
        return list(_paths(config, ""))


class Lookup(Protocol):
    """What the instance knows about runs and backfills named by id (None: not found)."""

    def run(self, run_id: str) -> Target | None: ...

    def backfill(self, backfill_id: str) -> Target | None: ...


def targets(mutation: Mutation, request: GraphQLRequest, lookup: Lookup) -> list[Target]:
    arg = mutation.argument
    name = mutation.name
    if name in ("launchRun", "launchPipelineExecution"):
        return [from_execution_params(arg("executionParams", request))]
    if name == "launchMultipleRuns":
        return [from_execution_params(p) for p in _list(arg("executionParamsList", request))]
    if name in ("launchRunReexecution", "launchPipelineReexecution"):
        return _reexecution(mutation, request, lookup)
    if name == "launchPartitionBackfill":
        return [from_backfill_params(arg("backfillParams", request))]
    if name == "reexecutePartitionBackfill":
        params = arg("reexecutionParams", request)
        parents = _found(lookup.backfill, [_get(params, "parentRunId")])
        return [replace(p, tags=_pairs(_get(params, "extraTags"))) for p in parents]
    if name in ("resumePartitionBackfill", "cancelPartitionBackfill"):
        return _found(lookup.backfill, [arg("backfillId", request)])
    if name in ("terminateRun", "terminatePipelineExecution", "deleteRun", "deletePipelineRun"):
        return _found(lookup.run, [arg("runId", request)])
    if name == "terminateRuns":
        return _found(lookup.run, _list(arg("runIds", request)))
    return [_named(mutation, request)]


def from_execution_params(params: Any) -> Target:
    selector = _get(params, "selector") or {}
    tags = _get(_get(params, "executionMetadata"), "tags") or []
    checks = [_get(c, "assetKey") for c in _list(_get(selector, "assetCheckSelection"))]
    return Target(
        job=_job_name(selector),
        assets=_asset_keys([*_list(_get(selector, "assetSelection")), *checks]),
        partition=_tag(tags, PARTITION_TAG),
        run_config=_get(params, "runConfigData"),
        subset=bool(_get(selector, "solidSelection") or _get(params, "stepKeys")),
        tags=_pairs(tags),
    )


def from_backfill_params(params: Any) -> Target:
    selector = _get(params, "selector") or {}
    partition_set = _get(selector, "partitionSetName") or ""
    by_asset = [_get(p, "assetKey") for p in _list(_get(params, "partitionsByAssets"))]
    partitions = _list(_get(params, "partitionNames")) or (
        ["all"] if _get(params, "allPartitions") else []
    )
    return Target(
        job=partition_set.removesuffix("_partition_set") or None,
        assets=_asset_keys([*_list(_get(params, "assetSelection")), *by_asset]),
        partition=_partition_range(partitions),
        run_config=_get(params, "runConfigData"),
        subset=bool(_get(params, "reexecutionSteps")),
        tags=_pairs(_get(params, "tags")),
    )


def _reexecution(mutation: Mutation, request: GraphQLRequest, lookup: Lookup) -> list[Target]:
    """The parent run (reexecutionParams) and the new parameters (executionParams): Dagster takes
    one of them, the gate judges whatever is passed."""
    found = []
    reexecution = mutation.argument("reexecutionParams", request)
    if reexecution:
        extra = _pairs(_get(reexecution, "extraTags"))
        parents = _found(lookup.run, [_get(reexecution, "parentRunId")])
        found += [replace(parent, tags=extra) for parent in parents]
    if mutation.passes("executionParams") or not reexecution:
        found.append(from_execution_params(mutation.argument("executionParams", request)))
    return found


def _named(mutation: Mutation, request: GraphQLRequest) -> Target:
    """Schedules, sensors, asset events and partitions: what they touch, for the audit line."""
    args = {a.name.value: mutation.argument(a.name.value, request) for a in mutation.node.arguments}
    for key in ("scheduleSelector", "sensorSelector", "selectorData"):
        selector = args.get(key)
        name = _get(selector, "scheduleName") or _get(selector, "sensorName")
        if name:
            return Target(name=str(name))
    keys = [_get(e, "assetKey") for e in _items(args.get("eventParams"))]
    keys += [_get(r, "assetKey") for r in _items(args.get("assetPartitionRanges"))]
    partitions = [*_items(args.get("partitionKey")), *_list(args.get("partitionKeys"))]
    return Target(
        assets=_asset_keys(keys),
        partition=_partition_range(partitions),
        name=args.get("partitionsDefName") or args.get("repositoryLocationName"),
    )


def _paths(config: dict[Any, Any], prefix: str) -> Iterator[str]:
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _paths(value, f"{path}.")
        else:
            yield path


def _found(fetch: Any, ids: Iterable[Any]) -> list[Target]:
    found = []
    for item in ids:
        if isinstance(item, str) and item:
            target = fetch(item)
            found.append(target or Target(name=item))
    return found


def _asset_keys(keys: Iterable[Any]) -> tuple[str, ...]:
    names = []
    for key in keys:
        path = _get(key, "path") if isinstance(key, dict) else key
        if isinstance(path, list):
            names.append("/".join(str(p) for p in path))
        elif isinstance(path, str):
            names.append(path)
    return tuple(names)


def _partition_range(partitions: list[Any]) -> str | None:
    if not partitions:
        return None
    if len(partitions) == 1:
        return str(partitions[0])
    return f"{partitions[0]}...{partitions[-1]} ({len(partitions)} partitions)"


def _job_name(selector: Any) -> str | None:
    """The job a selector names. Dagster's launch reads pipelineName first, its other selectors
    jobName first: two different names are judged as one unknown job (refused), never as either."""
    names = list(dict.fromkeys(n for n in (_get(selector, k) for k in JOB_KEYS) if n))
    return " and ".join(str(n) for n in names) or None


def _pairs(tags: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(_get(t, "key")), str(_get(t, "value"))) for t in _list(tags))


def _tag(tags: Any, key: str) -> str | None:
    for tag in _list(tags):
        if _get(tag, "key") == key:
            return str(_get(tag, "value"))
    return None


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(value: Any) -> list[Any]:
    """A list argument, or a single value as a list of one."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
