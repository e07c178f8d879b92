"""A run task builds the commit it was launched for, although its state directory starts empty.

EcsRunLauncher runs each run in a new task: the sensor's mirror under the code server's state
directory is not there. Real git, a fresh SAGE_OPS_STATE_DIR per test, remotes served as file://
(smart protocol: the single commit is fetched) and over dumb HTTP with a token from Secrets
Manager (no fetch by SHA there: every branch is fetched instead).
"""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

import pytest

from sage_ops.deploy import steps
from sage_ops.platforms.git import push_scan as git_push_scan
from sage_ops.platforms.git import repo as git_repo
from sage_ops.platforms.git.run import GitSourceError
from sage_ops.platforms.git.source import export_tree
from tests.platforms.test_git_credentials import (  # noqa: F401 - fixtures
    TOKEN,
    assert_secret_nowhere,
    bare_repo,
    http_repo,
    moto_endpoint,
    recorded,
    secret,
)

run = partial(subprocess.run, check=True, capture_output=True, text=True)
CFG = ["-c", "user.name=t", "-c", "user.email=t@example.com"]


@pytest.fixture
def remote(tmp_path: Path) -> tuple[str, list[str]]:
    """A bare repository with three commits of apps/backend on main; (file:// URL, SHAs)."""
    work = tmp_path / "work"
    run(["git", "init", "-q", "-b", "main", str(work)])
    shas = []
    for n in range(3):
        backend = work / "apps" / "backend"
        backend.mkdir(parents=True, exist_ok=True)
        (backend / "version.txt").write_text(f"{n}\n")
        run(["git", "-C", str(work), *CFG, "add", "."])
        run(["git", "-C", str(work), *CFG, "commit", "-qm", f"v{n}"])
        shas.append(run(["git", "-C", str(work), "rev-parse", "HEAD"]).stdout.strip())
    bare = tmp_path / "served" / "sage.git"
    run(["git", "clone", "-q", "--bare", str(work), str(bare)])
    return f"file://{bare}", shas


def exported_version(git_dir: Path, sha: str, tmp_path: Path) -> str:
    tree = export_tree(git_dir, sha, "apps/backend", tmp_path / f"export-{sha[:7]}")
    return (tree / "version.txt").read_text().strip()


def test_a_fresh_run_task_fetches_only_its_commit(remote, tmp_path, monkeypatch):
    url, shas = remote
    monkeypatch.setenv("SAGE_OPS_STATE_DIR", str(tmp_path / "fresh-state"))
    middle = shas[1]

    source = steps._source(url, middle)

    assert exported_version(source, middle, tmp_path) == "1"
    assert source.is_relative_to(steps.git_cache_dir() / "commits")
    assert (source / "shallow").read_text().split() == [middle]  # that commit, no history
    assert run(["git", "-C", str(source), "cat-file", "-e", shas[0]], check=False).returncode != 0
    # The sensor's mirror is neither created nor made shallow by a run.
    assert not git_repo.repo_dir(url, steps.git_cache_dir()).exists()


def test_a_second_run_in_the_same_task_fetches_nothing(remote, tmp_path, monkeypatch, recorded):  # noqa: F811
    url, shas = remote
    monkeypatch.setenv("SAGE_OPS_STATE_DIR", str(tmp_path / "state"))
    first = steps._source(url, shas[2])
    fetches = [c for c in recorded if "fetch" in c["argv"]]
    assert steps._source(url, shas[2]) == first
    assert [c for c in recorded if "fetch" in c["argv"]] == fetches


def test_the_sensors_mirror_is_used_when_it_has_the_commit(remote, tmp_path, monkeypatch):
    url, shas = remote
    monkeypatch.setenv("SAGE_OPS_STATE_DIR", str(tmp_path / "state"))
    git_push_scan.scan(url, "main", ["apps/backend/**"], None, steps.git_cache_dir())

    source = steps._source(url, shas[0])

    assert source == git_repo.repo_dir(url, steps.git_cache_dir())
    assert not (source / "shallow").exists()
    assert not (steps.git_cache_dir() / "commits").exists()


def test_a_private_repository_over_dumb_http_fetches_branches_with_the_token(
    secret,  # noqa: F811
    http_repo,  # noqa: F811
    bare_repo,  # noqa: F811
    recorded,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    _, head = bare_repo
    arn = secret(json.dumps({"token": TOKEN}))
    monkeypatch.setenv("SAGE_OPS_STATE_DIR", str(tmp_path / "state"))

    source = steps._source(http_repo, head, arn)

    assert run(["git", "-C", str(source), "cat-file", "-e", head]).returncode == 0
    fetches = [c for c in recorded if "fetch" in c["argv"]]
    assert len(fetches) == 2  # the single commit is refused by dumb HTTP, then the branches
    assert all(f["files"]["token"] == 0o600 for f in fetches)
    assert_secret_nowhere(recorded, TOKEN)


def test_a_commit_the_remote_does_not_have_is_named(remote, tmp_path, monkeypatch):
    url, _ = remote
    monkeypatch.setenv("SAGE_OPS_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(GitSourceError, match="has no commit 0123456789ab"):
        steps._source(url, "0123456789ab" * 3 + "0123")


@pytest.mark.parametrize("key", ["--upload-pack=touch /tmp/x", "main", "abc123"])
def test_a_partition_key_that_is_not_a_sha_is_refused(remote, key, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGE_OPS_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(GitSourceError, match="not a full commit SHA"):
        steps._source(remote[0], key)
