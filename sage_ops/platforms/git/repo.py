"""Reading a git repository: a local one in place, or a bare mirror of a remote one.

`repo_dir()` says where git commands for a repository run, `commit_dir()` finds (or fetches) a
repository holding a given commit, and `open_source()` gives the push scan (`git_push_scan.py`)
a `Source` whose methods are each one git command. A URL (file://, https://, ssh://,
user@host:path) is fetched into a bare mirror under `cache_dir` that holds only the watched
branch. Credentials in an https URL never reach process arguments, the mirror's files or
messages: they travel to git as an HTTP header through the environment, scoped to that host.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from sage_ops.platforms.git.credentials import CredentialError, git_credential_env
from sage_ops.platforms.git.run import GitSourceError, git_env, run_git, stderr_reason

COMMIT_FETCH_TIMEOUT_S = 600.0  # a run fetching its commit has no sensor deadline

FULL_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_FIELD, _RECORD = "\x1f", "\x00"
_LOG_FORMAT = "--format=%H%x1f%ct%x1f%an <%ae>%x1f%s"


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str  # "Name <email>"
    committed_at: str  # ISO 8601, UTC: 2024-05-01T12:00:00Z

    @property
    def short(self) -> str:
        return self.sha[:7]


def repo_dir(repo: str, cache_dir: Path) -> Path:
    """Where git commands for `repo` run: the repository itself, or its mirror for a URL.

    Useful to read a commit `scan()` returned (`git archive <sha>`) without another fetch.
    """
    if not is_remote(repo):
        return Path(repo).expanduser().resolve()
    return _mirror_path(_Remote.of(repo).label, cache_dir)


def commit_dir(
    repo: str,
    sha: str,
    cache_dir: Path,
    *,
    timeout_s: float = COMMIT_FETCH_TIMEOUT_S,
    credential: str | None = None,
) -> Path:
    """A repository holding commit `sha`, fetching just that commit when none here does.

    A run may execute where the sensor never ran: an ECS run task (EcsRunLauncher) starts with an
    empty state directory, so the sensor's mirror is not there. A local repository is read in
    place; for a URL, the sensor's mirror when it has the commit, else a separate bare repository
    under `cache_dir/commits` holding only what runs asked for: the commit alone (depth 1) when
    the server allows fetching a commit by its SHA, else every branch. It is kept apart from the
    sensor's mirror so that mirror never becomes shallow (its merge-bases need the history).
    """
    if not FULL_SHA.fullmatch(sha):  # also keeps a partition key from being taken for an option
        raise GitSourceError(f"{sha!r} is not a full commit SHA")
    if not is_remote(repo):
        return repo_dir(repo, cache_dir)
    remote = _Remote.of(repo, credential)
    for path in (_mirror_path(remote.label, cache_dir), _commits_path(remote.label, cache_dir)):
        if _has_commit(path, sha, timeout_s):
            return path
    path = _commits_path(remote.label, cache_dir)
    _create_mirror(path, timeout_s)
    done = _git_fetch(remote, path, ["--depth=1"], sha, timeout_s, f"commit {sha[:12]}")
    if done.returncode != 0:  # dumb HTTP, or a server refusing unadvertised objects
        done = _git_fetch(remote, path, [], "+refs/heads/*:refs/heads/*", timeout_s, "branches")
    if done.returncode != 0:
        raise GitSourceError(
            f"git remote {remote.label} unreachable: cannot fetch commit {sha[:12]}: "
            f"{stderr_reason(done.stderr)}"
        )
    if not _has_commit(path, sha, timeout_s):
        raise GitSourceError(f"git remote {remote.label} has no commit {sha[:12]}")
    return path


def is_remote(repo: str) -> bool:
    """A URL or scp-like `user@host:path` (git's rule: a colon before the first slash)."""
    if "://" in repo:
        return True
    colon, slash = repo.find(":"), repo.find("/")
    return colon > 0 and (slash < 0 or colon < slash)


def _missing_branch(label: str, branch: str, timeout_s: float) -> GitSourceError:
    """Why `branch` was not found: a name git would never accept, or simply not there.

    Only asked once the branch is not found, so a healthy scan does not pay for it; the name is
    always used as `refs/heads/<name>`, so it can never be taken for an option.
    """
    check = ["check-ref-format", f"refs/heads/{branch}"]
    if run_git(check, None, git_env(), timeout_s).returncode != 0:
        return GitSourceError(f"branch name {branch!r} is not a valid git branch name")
    return GitSourceError(f"{label}: branch {branch!r} does not exist")


# --- reading a repository -------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A repository git can read: a local one in place, or the mirror of a remote one."""

    path: Path
    label: str  # how messages name it: the path or the URL, without credentials
    env: dict[str, str]
    timeout_s: float

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return run_git(list(args), self.path, self.env, self.timeout_s)
        except subprocess.TimeoutExpired:
            raise GitSourceError(
                f"git repository {self.label}: `git {args[0]}` did not finish within "
                f"{self.timeout_s:g} s"
            ) from None

    def branch_head(self, branch: str) -> str:
        """The branch's head SHA; exit 1 means no such branch, 128 no repository at all."""
        found = self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
        if found.returncode == 1:
            raise _missing_branch(f"git repository {self.label}", branch, self.timeout_s)
        if found.returncode != 0:
            raise GitSourceError(f"git repository {self.label}: {stderr_reason(found.stderr)}")
        return found.stdout.strip()

    def is_ancestor(self, cursor: str, head: str) -> bool | None:
        """True/False, or None when git does not know the cursor commit."""
        code = self.git("merge-base", "--is-ancestor", cursor, head).returncode
        return {0: True, 1: False}.get(code)

    def merge_base(self, cursor: str, head: str) -> str | None:
        found = self.git("merge-base", cursor, head)
        return found.stdout.strip() or None if found.returncode == 0 else None

    def differs(self, cursor: str, head: str, specs: list[str]) -> bool:
        """Whether the watched files differ between two commits (exit 1 of diff --quiet)."""
        return self.git("diff", "--quiet", cursor, head, "--", *specs).returncode == 1

    def count(self, head: str, base: str) -> int:
        out = self.checked("rev-list", "--count", "--first-parent", head, f"^{base}")
        return int(out.strip() or 0)

    def log(self, head: str, base: str | None, specs: list[str]) -> list[Commit]:
        """First-parent commits in base..head touching `specs`, oldest first; one git command.

        Without a base only the head commit itself is examined (`--no-walk`).
        """
        revs = [head, f"^{base}"] if base else ["--no-walk", head]
        out = self.checked(
            "log", "--first-parent", "--no-show-signature", "-z", _LOG_FORMAT, *revs, "--", *specs
        )
        return [_parse_commit(record) for record in reversed(out.split(_RECORD)) if record]

    def checked(self, *args: str) -> str:
        done = self.git(*args)
        if done.returncode != 0:
            raise GitSourceError(f"git repository {self.label}: {stderr_reason(done.stderr)}")
        return done.stdout


def _parse_commit(record: str) -> Commit:
    sha, timestamp, author, subject = record.split(_FIELD, 3)
    when = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Commit(sha=sha, subject=subject, author=author, committed_at=when)


def open_source(
    repo: str, branch: str, cache_dir: Path, timeout_s: float, credential: str | None = None
) -> Source:
    """`credential`: the Secrets Manager id of the repository's deploy key or token, if any."""
    if is_remote(repo):
        return _fetch(_Remote.of(repo, credential), branch, cache_dir, timeout_s)
    return _open_local(repo, timeout_s)


def _open_local(repo: str, timeout_s: float) -> Source:
    """Read a local repository in place; GIT_CEILING_DIRECTORIES stops git from walking up to a
    parent repository when `repo` is a plain directory inside one."""
    path = Path(repo).expanduser().resolve()
    if not path.is_dir():
        raise GitSourceError(f"git repository {repo}: no such directory")
    return Source(path, repo, git_env(ceiling=path.parent), timeout_s)


# --- mirroring a remote ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Remote:
    url: str  # what git fetches from: without userinfo when that travels in `env`
    label: str  # how messages and the mirror name it: never with a password
    env: dict[str, str]
    credential: str | None = None  # Secrets Manager id of its deploy key or token

    @staticmethod
    def of(url: str, credential: str | None = None) -> _Remote:
        """Split credentials off an http(s) URL; other URLs only lose a password in the label.

        http(s) userinfo becomes an `Authorization: Basic` header configured through
        GIT_CONFIG_* variables and scoped to the URL's host, so it appears in no argv, file or
        message. (ssh authenticates with keys; scp-like `user@host:path` has no password.)
        """
        parts = urlsplit(url) if "://" in url else None
        if parts is None or "@" not in parts.netloc:
            return _Remote(url, url, {}, credential)
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, has_password, password = userinfo.partition(":")
        if parts.scheme not in ("http", "https"):
            label = urlunsplit(parts._replace(netloc=f"{user}@{host}")) if has_password else url
            return _Remote(url, label, {}, credential)
        public = urlunsplit(parts._replace(netloc=host))
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
        env = {
            "GIT_CONFIG_COUNT": str(index + 1),
            f"GIT_CONFIG_KEY_{index}": f"http.{parts.scheme}://{host}/.extraHeader",
            f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {token}",
        }
        return _Remote(public, public, env, credential)


def _fetch(remote: _Remote, branch: str, cache_dir: Path, timeout_s: float) -> Source:
    """Bring the mirror's copy of `branch` up to date with the remote, within `timeout_s`.

    The mirror is a bare repository holding only the watched branch (a full `--mirror` of a
    GitHub repository would also fetch every pull request's refs on each tick) and no remote
    configuration, so no URL with credentials is ever written to it. The first fetch is the
    clone; later ones transfer only the new objects. `+` accepts force-pushes; the old commits
    stay in the mirror until git's gc prunes them, so a rewrite still finds its merge-base.
    """
    path = _mirror_path(remote.label, cache_dir)
    _create_mirror(path, timeout_s)
    refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
    done = _git_fetch(remote, path, ["--prune"], refspec, timeout_s, repr(branch))
    if done.returncode != 0:
        raise _fetch_failure(remote.label, branch, done.stderr, timeout_s)
    return Source(path, remote.label, git_env(ceiling=path.parent), timeout_s)


def _git_fetch(
    remote: _Remote, path: Path, options: list[str], refspec: str, timeout_s: float, what: str
) -> subprocess.CompletedProcess[str]:
    """`git fetch` of `refspec` from the remote into `path`, with the repository credential."""
    command = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", *options]
    command += [remote.url, refspec]
    try:
        with git_credential_env(remote.credential) as credential:
            extra = {**remote.env, **credential}
            return run_git(command, path, git_env(ceiling=path.parent, extra=extra), timeout_s)
    except CredentialError as exc:
        raise GitSourceError(str(exc)) from None
    except subprocess.TimeoutExpired:
        raise GitSourceError(
            f"git remote {remote.label} unreachable: no answer within {timeout_s:g} s "
            f"while fetching {what}"
        ) from None


def _fetch_failure(label: str, branch: str, stderr: str, timeout_s: float) -> GitSourceError:
    if "couldn't find remote ref" in stderr or "invalid refspec" in stderr:
        return _missing_branch(f"git remote {label}", branch, timeout_s)
    return GitSourceError(
        f"git remote {label} unreachable: cannot fetch {branch!r}: {stderr_reason(stderr)}"
    )


def _mirror_path(public_url: str, cache_dir: Path) -> Path:
    """cache_dir/<name>-<hash of the URL>.git: readable, and distinct per remote."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", public_url.rstrip("/").rsplit("/", 1)[-1])
    name = name.removesuffix(".git") or "repo"
    digest = hashlib.sha256(public_url.encode()).hexdigest()[:12]
    return cache_dir.expanduser().resolve() / f"{name}-{digest}.git"


def _commits_path(public_url: str, cache_dir: Path) -> Path:
    return _mirror_path(public_url, cache_dir / "commits")


def _has_commit(path: Path, sha: str, timeout_s: float) -> bool:
    if not (path / "HEAD").exists():
        return False
    check = ["cat-file", "-e", f"{sha}^{{commit}}"]
    return run_git(check, path, git_env(ceiling=path.parent), timeout_s).returncode == 0


def _create_mirror(path: Path, timeout_s: float) -> None:
    """An empty bare repository, created aside and renamed into place so that a concurrent
    scan or an interrupted one never sees a half-initialised directory."""
    if (path / "HEAD").exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    done = run_git(["init", "--bare", "--quiet", str(staging)], None, git_env(), timeout_s)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise GitSourceError(f"git mirror {path}: cannot create it: {stderr_reason(done.stderr)}")
    try:
        staging.rename(path)
    except OSError:  # another scan created it first
        shutil.rmtree(staging, ignore_errors=True)
