"""scan() against real git repositories built in tmp_path: local, bare, and mirrored remotes."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_ops.platforms.git import repo as git_repo
from sage_ops.platforms.git.push_scan import PushScan, scan
from sage_ops.platforms.git.run import GitSourceError

WATCH = ["apps/backend/**"]
EPOCH = 1_700_000_000


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Deterministic commits, untouched by the developer's git config (signing, hooks...)."""
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Ada Dev")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "ada@example.com")


class Repo:
    """A working repository whose commits get increasing, fixed timestamps."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        self.ticks = 0
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch", branch)

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(self, *paths: str, message: str | None = None) -> str:
        self.ticks += 1
        for rel in paths:
            file = self.path / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            with file.open("a") as f:
                f.write(f"change {self.ticks}\n")
        self.git("add", "--all")
        stamp = f"{EPOCH + self.ticks * 60} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        self.git("commit", "--quiet", "-m", message or f"touch {' '.join(paths)}", env=env)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit("apps/backend/src/main.ts", "README.md", message="initial")
    return r


def _scan(repo: Repo | str, cursor: str | None, tmp_path: Path, timeout_s: float = 10) -> PushScan:
    source = repo if isinstance(repo, str) else str(repo.path)
    return scan(source, "main", WATCH, cursor, tmp_path / "cache", timeout_s=timeout_s)


def _shas(result: PushScan) -> list[str]:
    return [c.sha for c in result.superseded]


# --- cursor semantics -------------------------------------------------------------------------


def test_first_scan_considers_only_the_head_commit(repo: Repo, tmp_path: Path) -> None:
    older = repo.commit("apps/backend/src/a.ts")
    head = repo.commit("apps/backend/src/b.ts", message="feat: b")

    result = _scan(repo, None, tmp_path)

    assert result.deploy is not None and result.deploy.sha == head
    assert older not in _shas(result) and result.superseded == []
    assert result.cursor == head and not result.history_rewritten
    assert result.deploy.subject == "feat: b"
    assert result.deploy.author == "Ada Dev <ada@example.com>"
    assert result.deploy.committed_at == "2023-11-14T22:16:20Z"  # EPOCH + 3 minutes
    assert result.note == f"first scan of main: deploying head {head[:7]}"


def test_first_scan_of_an_irrelevant_head_deploys_nothing(repo: Repo, tmp_path: Path) -> None:
    head = repo.commit("docs/guide.md")

    result = _scan(repo, None, tmp_path)

    assert result.deploy is None and result.cursor == head
    assert "touches no watched path" in result.note


def test_one_relevant_commit_is_deployed(repo: Repo, tmp_path: Path) -> None:
    cursor = repo.head()
    new = repo.commit("apps/backend/src/users.ts")

    result = _scan(repo, cursor, tmp_path)

    assert result.deploy is not None and result.deploy.sha == new
    assert result.superseded == [] and result.cursor == new
    assert result.note == f"1 relevant commit since {cursor[:7]}: deploying {new[:7]}"


def test_irrelevant_commit_advances_the_cursor_without_a_deploy(repo: Repo, tmp_path: Path) -> None:
    cursor = repo.head()
    new = repo.commit("docs/runbook.md")

    result = _scan(repo, cursor, tmp_path)

    assert result.deploy is None and result.superseded == []
    assert result.cursor == new and not result.history_rewritten
    assert result.note == (
        f"no commit touching a watched path since {cursor[:7]} (1 new commit, head {new[:7]})"
    )


def test_burst_deploys_the_newest_and_supersedes_the_older_ones_in_order(
    repo: Repo, tmp_path: Path
) -> None:
    cursor = repo.head()
    first = repo.commit("apps/backend/src/a.ts")
    repo.commit("docs/a.md")
    second = repo.commit("apps/backend/prisma/schema.prisma")
    repo.commit("apps/web/index.tsx")
    newest = repo.commit("apps/backend/src/b.ts")

    result = _scan(repo, cursor, tmp_path)

    assert result.deploy is not None and result.deploy.sha == newest
    assert _shas(result) == [first, second]
    assert result.cursor == newest
    assert result.note == (
        f"3 relevant commits since {cursor[:7]}: deploying {newest[:7]}, superseding 2"
    )


def test_unchanged_head_deploys_nothing(repo: Repo, tmp_path: Path) -> None:
    head = repo.head()

    result = _scan(repo, head, tmp_path)

    assert result == PushScan(None, [], head, False, f"no new commits on main since {head[:7]}")


def test_a_merged_branch_is_deployed_as_its_merge_commit(repo: Repo, tmp_path: Path) -> None:
    cursor = repo.head()
    repo.git("checkout", "--quiet", "-b", "feature")
    repo.commit("apps/backend/src/feature.ts")
    repo.commit("apps/backend/src/feature.ts")
    repo.git("checkout", "--quiet", "main")
    repo.commit("docs/changelog.md")
    repo.git("merge", "--quiet", "--no-ff", "feature", "-m", "Merge feature")

    result = _scan(repo, cursor, tmp_path)

    assert result.deploy is not None and result.deploy.subject == "Merge feature"
    assert result.superseded == []  # the feature commits never were main's state


@pytest.mark.parametrize(
    "watch", [["apps/backend"], ["/apps/backend/"], ["apps/**/*.ts"], [":(glob)apps/backend/**"]]
)
def test_watch_path_forms(repo: Repo, tmp_path: Path, watch: list[str]) -> None:
    cursor = repo.head()
    new = repo.commit("apps/backend/src/x.ts")
    repo.commit("apps/backend.md")  # a sibling name that must not match

    result = scan(str(repo.path), "main", watch, cursor, tmp_path / "cache")

    assert result.deploy is not None and result.deploy.sha == new


def test_no_watch_paths_watch_the_whole_repository(repo: Repo, tmp_path: Path) -> None:
    cursor = repo.head()
    new = repo.commit("docs/a.md")

    result = scan(str(repo.path), "main", [], cursor, tmp_path / "cache")

    assert result.deploy is not None and result.deploy.sha == new


# --- history rewrites -------------------------------------------------------------------------


def test_force_push_deploys_the_new_commits_since_the_merge_base(
    repo: Repo, tmp_path: Path
) -> None:
    base = repo.commit("apps/backend/src/a.ts")
    cursor = repo.commit("apps/backend/src/b.ts", message="to be rewritten")
    repo.git("reset", "--quiet", "--hard", "HEAD~1")
    replacement = repo.commit("apps/backend/src/c.ts", message="replacement")

    result = _scan(repo, cursor, tmp_path)

    assert result.history_rewritten
    assert result.deploy is not None and result.deploy.sha == replacement
    assert result.superseded == [] and result.cursor == replacement
    assert result.note.startswith(f"history of main rewritten ({cursor[:7]} is no longer on it)")
    assert f"since {base[:7]}" in result.note


def test_reset_to_an_older_commit_redeploys_the_head_if_watched_files_differ(
    repo: Repo, tmp_path: Path
) -> None:
    older = repo.commit("apps/backend/src/a.ts")
    cursor = repo.commit("apps/backend/src/a.ts", message="bad change")
    repo.git("reset", "--quiet", "--hard", older)

    result = _scan(repo, cursor, tmp_path)

    assert result.history_rewritten and result.cursor == older
    assert result.deploy is not None and result.deploy.sha == older
    assert "watched files at head" in result.note


def test_rewrite_of_irrelevant_commits_deploys_nothing(repo: Repo, tmp_path: Path) -> None:
    cursor = repo.commit("docs/a.md")
    repo.git("commit", "--quiet", "--amend", "-m", "reworded")

    result = _scan(repo, cursor, tmp_path)

    assert result.history_rewritten and result.deploy is None


def test_orphan_history_considers_only_the_head(repo: Repo, tmp_path: Path) -> None:
    cursor = repo.commit("apps/backend/src/a.ts")
    repo.git("checkout", "--quiet", "--orphan", "fresh")
    repo.git("rm", "-r", "--quiet", "--cached", ".")
    repo.commit("apps/backend/src/main.ts", message="new history")
    new = repo.commit("apps/backend/src/main.ts", message="new history, second commit")
    repo.git("branch", "--quiet", "-M", "fresh", "main")

    result = _scan(repo, cursor, tmp_path)

    assert result.history_rewritten
    assert result.deploy is not None and result.deploy.sha == new and result.superseded == []
    assert "shares no history" in result.note


@pytest.mark.parametrize("cursor", ["0" * 40, "not-a-sha"])
def test_unknown_cursor_is_a_rewrite_and_considers_only_the_head(
    repo: Repo, tmp_path: Path, cursor: str
) -> None:
    head = repo.commit("apps/backend/src/a.ts")

    result = _scan(repo, cursor, tmp_path)

    assert result.history_rewritten and result.deploy is not None and result.deploy.sha == head


# --- where the repository lives --------------------------------------------------------------


def test_file_url_is_mirrored_into_the_cache_and_updated(repo: Repo, tmp_path: Path) -> None:
    url = f"file://{repo.path}"
    first = _scan(url, None, tmp_path)
    mirror = git_repo.repo_dir(url, tmp_path / "cache")
    assert mirror.parent == tmp_path / "cache" and (mirror / "HEAD").exists()
    assert first.deploy is not None and first.deploy.sha == repo.head()

    new = repo.commit("apps/backend/src/a.ts")
    second = _scan(url, first.cursor, tmp_path)

    assert second.deploy is not None and second.deploy.sha == new
    assert (
        subprocess.run(["git", "cat-file", "-e", new], cwd=mirror, capture_output=True).returncode
        == 0
    )

    repo.git("reset", "--quiet", "--hard", "HEAD~1")  # force-push upstream
    replacement = repo.commit("apps/backend/src/b.ts")
    third = _scan(url, second.cursor, tmp_path)

    assert third.history_rewritten and third.deploy is not None
    assert third.deploy.sha == replacement


def test_bare_repository_path_is_read_in_place(repo: Repo, tmp_path: Path) -> None:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", repo.path, bare], check=True)

    result = scan(str(bare), "main", WATCH, None, tmp_path / "cache")

    assert result.deploy is not None and result.deploy.sha == repo.head()
    assert not (tmp_path / "cache").exists()  # nothing mirrored for a local path


def test_the_working_tree_and_index_are_left_alone(repo: Repo, tmp_path: Path) -> None:
    (repo.path / "apps/backend/src/main.ts").write_text("uncommitted\n")
    (repo.path / "scratch.txt").write_text("untracked\n")
    status = repo.git("status", "--porcelain")
    index = (repo.path / ".git/index").read_bytes()

    _scan(repo, None, tmp_path)

    assert repo.git("status", "--porcelain") == status
    assert (repo.path / ".git/index").read_bytes() == index


# --- faults: each raises GitSourceError naming the cause ----------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match=r"nowhere: no such directory"):
        _scan(str(tmp_path / "nowhere"), None, tmp_path)


def test_directory_inside_a_repository_is_not_taken_for_it(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match="not a git repository"):
        _scan(str(repo.path / "apps"), None, tmp_path)


def test_missing_branch(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match=r"branch 'release' does not exist"):
        scan(str(repo.path), "release", WATCH, None, tmp_path / "cache")


def test_missing_branch_on_a_remote(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match=r"file://.*: branch 'release' does not exist"):
        scan(f"file://{repo.path}", "release", WATCH, None, tmp_path / "cache")


def test_invalid_branch_name(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match="not a valid git branch name"):
        scan(str(repo.path), "main..x", WATCH, None, tmp_path / "cache")


def test_nonexistent_file_remote(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match=r"file:///nonexistent unreachable: .*repository"):
        _scan("file:///nonexistent", None, tmp_path)


def test_refused_http_remote(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match=r"127.0.0.1:9/x.git unreachable: .*(connect|refused)"):
        _scan("http://127.0.0.1:9/x.git", None, tmp_path, timeout_s=5)


def test_refused_ssh_remote(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match=r"127.0.0.1:9/x.git unreachable: "):
        _scan("ssh://git@127.0.0.1:9/x.git", None, tmp_path, timeout_s=5)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_remote_that_never_answers_times_out(silent_server: int, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(GitSourceError, match=r"unreachable: no answer within 1 s"):
        _scan(f"http://127.0.0.1:{silent_server}/x.git", None, tmp_path, timeout_s=1)
    assert time.monotonic() - started < 5


def test_credentials_stay_out_of_messages_and_the_mirror(tmp_path: Path) -> None:
    url = "http://deploy:s3cr%40t@127.0.0.1:9/x.git"
    with pytest.raises(GitSourceError) as failure:
        _scan(url, None, tmp_path, timeout_s=5)

    assert "s3cr" not in str(failure.value) and "deploy" not in str(failure.value)
    mirror = git_repo.repo_dir(url, tmp_path / "cache")
    assert mirror.name.startswith("x-")
    files = [p for p in mirror.rglob("*") if p.is_file()]
    assert files and not any(b"s3cr" in p.read_bytes() for p in files)


def test_https_credentials_become_a_host_scoped_header() -> None:
    remote = git_repo._Remote.of("https://x-access-token:tok@github.com/org/app.git")

    assert remote.url == remote.label == "https://github.com/org/app.git"
    assert remote.env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
    assert remote.env["GIT_CONFIG_VALUE_0"] == "Authorization: Basic eC1hY2Nlc3MtdG9rZW46dG9r"


@pytest.mark.parametrize(
    ("repo_arg", "remote"),
    [
        ("/srv/git/app", False),
        ("relative/app", False),
        ("./odd:name", False),
        ("file:///srv/git/app.git", True),
        ("https://github.com/org/app.git", True),
        ("ssh://git@github.com/org/app.git", True),
        ("git@github.com:org/app.git", True),
    ],
)
def test_is_remote(repo_arg: str, remote: bool) -> None:
    assert git_repo.is_remote(repo_arg) is remote
