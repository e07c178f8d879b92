"""export_tree against real git repositories: git archive emits a symlink as a tar SYMTYPE member
with its target verbatim, which tarfile's data filter refuses when absolute or leaving the tree.
The export is complete or it fails naming the member - never silently short of the files after it.
"""

import os
from pathlib import Path

import pytest
from dagster import AssetKey

from sage_ops import postgres
from sage_ops.migrations import bookkeeping
from sage_ops.platforms.git.run import GitSourceError
from sage_ops.platforms.git.source import export_tree
from tests.deploy import test_pipeline
from tests.deploy.test_pipeline import _commit_backend, _git

stack = test_pipeline.stack  # real git repository, Dagster instance and Postgres databases

# Names sort before "Dockerfile" and "src", so git archive emits the links before those files.
LINKS = {".abs-link": "/usr/share/zoneinfo/UTC", ".up-link": "../../README.md"}


def _repo(tmp_path: Path, links: dict[str, str]) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    backend = repo / "apps" / "backend"
    (backend / "src").mkdir(parents=True)
    (backend / "Dockerfile").write_text("FROM scratch\n")
    (backend / "src" / "zz-last.txt").write_text("the last file\n")
    (repo / "README.md").write_text("readme\n")
    for name, target in links.items():
        os.symlink(target, backend / name)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "backend with links")
    return repo, _git(repo, "rev-parse", "HEAD")


def test_build_context_keeps_links_as_git_stores_them(tmp_path: Path) -> None:
    repo, sha = _repo(tmp_path, {**LINKS, "inside": "src/zz-last.txt"})
    out = export_tree(repo, sha, "apps/backend", tmp_path / "out", keep_outside_links=True)
    for name, target in {**LINKS, "inside": "src/zz-last.txt"}.items():
        assert os.readlink(out / name) == target  # what a checkout and docker build would see
    assert (out / "Dockerfile").read_text() == "FROM scratch\n"
    assert (out / "src" / "zz-last.txt").read_text() == "the last file\n"


@pytest.mark.parametrize(("name", "target"), LINKS.items())
def test_export_read_on_this_host_refuses_a_link_leaving_the_tree(
    tmp_path: Path, name: str, target: str
) -> None:
    repo, sha = _repo(tmp_path, {name: target})
    with pytest.raises(GitSourceError) as refused:
        export_tree(repo, sha, "apps/backend", tmp_path / "out")
    assert f"apps/backend/{name}" in str(refused.value) and target in str(refused.value)


def test_a_link_inside_the_tree_is_exported_in_both_modes(tmp_path: Path) -> None:
    repo, sha = _repo(tmp_path, {"inside": "src/zz-last.txt"})
    for keep, dest in ((False, "strict"), (True, "kept")):
        out = export_tree(repo, sha, "apps/backend", tmp_path / dest, keep_outside_links=keep)
        assert (out / "inside").read_text() == "the last file\n"


def test_an_unknown_commit_reports_gits_reason(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path, {})
    with pytest.raises(GitSourceError, match="cannot export apps/backend at 000000000000"):
        export_tree(repo, "0" * 40, "apps/backend", tmp_path / "out")


def test_a_commit_whose_migrations_hold_an_outside_link_migrates_nothing(stack) -> None:
    _commit_backend(stack.repo, "healthy", "migrations with a link to a host file")
    migrations = stack.repo / "apps" / "backend" / "prisma" / "migrations"
    (migrations / "20261102500000_shared").mkdir()
    os.symlink("/etc/hostname", migrations / "20261102500000_shared" / "migration.sql")
    _git(stack.repo, "add", "-A")
    _git(stack.repo, "commit", "-q", "--amend", "-m", "migrations with a link to a host file")
    [request] = stack.tick().run_requests
    result = stack.definitions.resolve_job_def("deploy_to_staging").execute_in_process(
        partition_key=request.partition_key,
        instance=stack.instance,
        asset_selection=[AssetKey("staging_schema")],
        raise_on_error=False,
    )
    assert not result.success
    failure = "\n".join(e.step_failure_data.error.message for e in result.get_step_failure_events())
    assert "20261102500000_shared/migration.sql -> /etc/hostname" in failure
    with postgres.connect(stack.databases["staging"]) as conn:
        assert bookkeeping.read_rows(conn) == []  # not the migrations before the link either
