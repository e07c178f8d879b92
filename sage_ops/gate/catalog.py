"""What the code location's definitions declare each asset and job does: the effect marks
(sage_ops.lineage.effects), read from the workspace the webserver serves, so the gate judges
exactly the definitions a launch would run (reloaded code included)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from dagster import AssetKey
from dagster._core.remote_representation.external import RemoteRepository
from dagster._core.workspace.context import WorkspaceProcessContext

from sage_ops.lineage.effects import EFFECT_TAG, ENVIRONMENT_TAG


@dataclass(frozen=True)
class Mark:
    effect: str | None  # None: the definition declares no effect
    environment: str | None = None


@dataclass(frozen=True)
class Job:
    mark: Mark  # the job's own mark (jobs of ops); asset jobs are judged by their assets
    assets: frozenset[str]
    tags: Mapping[str, str] = field(default_factory=dict)  # the definition's run tags


@dataclass(frozen=True)
class Catalog:
    assets: Mapping[str, Mark] = field(default_factory=dict)
    jobs: Mapping[str, Job] = field(default_factory=dict)
    # Assets that always execute together (a multi-asset that cannot be subset): selecting one
    # runs them all.
    executed_with: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def with_execution_sets(self, assets: Iterable[str]) -> frozenset[str]:
        selected = set(assets)
        for asset in list(selected):
            selected |= self.executed_with.get(asset, frozenset())
        return frozenset(selected)


def mark_of(tags: Mapping[str, str]) -> Mark:
    return Mark(tags.get(EFFECT_TAG), tags.get(ENVIRONMENT_TAG))


def from_repositories(repositories: Iterable[RemoteRepository]) -> Catalog:
    """Every repository's assets and jobs; a job name found in two repositories gets the union
    of their assets and, when their own marks differ, none (judged unmarked)."""
    assets: dict[str, Mark] = {}
    executed_with: dict[str, frozenset[str]] = {}
    jobs: dict[str, Job] = {}
    for repository in repositories:
        graph = repository.asset_graph
        for node in graph.asset_nodes:
            key = node.key.to_user_string()
            assets[key] = mark_of(node.tags)
            executed_with[key] = frozenset(
                k.to_user_string()
                for k in graph.get_execution_set_asset_and_check_keys(node.key)
                if isinstance(k, AssetKey)
            )
        for remote_job in repository.get_all_jobs():
            members = frozenset(
                node.key.to_user_string()
                for node in graph.asset_nodes
                if remote_job.name in node.job_names
            )
            job = Job(mark_of(remote_job.tags), members, remote_job.tags)
            known = jobs.get(remote_job.name)
            if known is not None:
                same = known.mark == job.mark and known.tags == job.tags
                job = Job(job.mark if same else Mark(None), known.assets | members)
            jobs[remote_job.name] = job
    return Catalog(assets, jobs, executed_with)


def workspace_catalog(context: WorkspaceProcessContext) -> Callable[[], Catalog]:
    """The catalog of the workspace as it is now (code locations reload)."""

    def current() -> Catalog:
        request = context.create_request_context()
        return from_repositories(
            repository
            for location in request.code_locations
            for repository in location.get_repositories().values()
        )

    return current
