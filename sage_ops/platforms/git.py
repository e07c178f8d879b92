"""Which pushed commits should be deployed: the logic behind `git_push_sensor`, on the git CLI.

`scan()` compares a branch's head with the sensor's cursor and says which commits touched the
watched paths. It never touches a working tree: a local repository (working tree or bare) is only
read, in place; a URL (file://, https://, ssh://, user@host:path) is fetched into a bare mirror
under `cache_dir` that holds only the watched branch.

Cursor semantics
    The cursor is the branch head SHA the previous scan saw; every scan returns the current head
    as the new cursor, also when nothing relevant happened, so a later scan never re-examines
    commits an earlier one already judged. No cursor (first scan) means only the head commit is
    considered: a new sensor deploys what the branch holds now instead of replaying its history.

Relevant commits
    The branch's first-parent history from the cursor (exclusive) to the head (inclusive), keeping
    the commits whose change against their first parent touches a watched path. First-parent
    because those are the states the branch itself went through: a merged pull request is deployed
    as its merge commit, not as the feature-branch commits inside it. The newest relevant commit is
    deployed; the older ones are returned as superseded (oldest first), so none is lost silently.

History rewrites (force-push, reset, an unrelated history)
    When the cursor is no longer an ancestor of the head, the scan sets `history_rewritten` and
    considers the commits since the merge-base of the cursor and the head, i.e. the rewritten
    part of the branch. If none of them touches a watched path but the watched files differ
    between the cursor and the head (say the branch was reset to an older commit), the head
    is deployed, because what was last deployed is no longer what the branch says. When there is
    no merge-base (an orphan history) or the cursor commit no longer exists anywhere, only the
    head commit is considered, exactly like a first scan.

Errors
    A missing path, a directory that is not a repository, a missing branch and an unreachable
    remote (failed or timed-out fetch) raise GitSourceError with a one-line reason; the sensor
    skips the tick and keeps its cursor. Credentials in an https URL never reach process
    arguments, the mirror's files or messages: they travel to git as an HTTP header through the
    environment, scoped to that host.

Speed: every step is one git command (rev-parse, merge-base, log with pathspecs), so a scan costs
a few milliseconds plus git's own walk, also on repositories with tens of thousands of commits.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from sage_ops.child_env import GIT, child_env
from sage_ops.errors import SageOpsError
from sage_ops.platforms.git_credentials import CredentialError, git_credential_env

DEFAULT_TIMEOUT_S = 30.0  # per git command; well under Dagster's 60 s sensor timeout
COMMIT_FETCH_TIMEOUT_S = 600.0  # a run fetching its commit has no sensor deadline

# `git rev-parse --local-env-vars`: a caller's GIT_DIR & co. must not redirect our commands.
_REPO_ENV_VARS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
)
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_FIELD, _RECORD = "\x1f", "\x00"
_LOG_FORMAT = "--format=%H%x1f%ct%x1f%an <%ae>%x1f%s"


class GitSourceError(SageOpsError):
    """The watched repository, branch or remote could not be read; the sensor skips the tick."""


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str  # "Name <email>"
    committed_at: str  # ISO 8601, UTC: 2024-05-01T12:00:00Z

    @property
    def short(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class PushScan:
    deploy: Commit | None  # the newest relevant commit, None when there is nothing to deploy
    superseded: list[Commit]  # older relevant commits the deploy makes obsolete, oldest first
    cursor: str  # the branch head now: the cursor for the next scan
    history_rewritten: bool  # the previous cursor is not on the branch any more
    note: str  # one sentence for the sensor tick


def scan(
    repo: str,
    branch: str,
    watch_paths: list[str],
    cursor: str | None,
    cache_dir: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> PushScan:
    """What happened on `branch` since `cursor`: see the module docstring for the semantics.

    `watch_paths` are pathspec globs relative to the repository root (`apps/backend/**`); an
    empty list watches the whole repository. `timeout_s` bounds each git command (the fetch
    of a remote included).
    """
    source = _open(repo, branch, cache_dir, timeout_s)
    head = source.branch_head(branch)
    if cursor == head:
        return PushScan(None, [], head, False, f"no new commits on {branch} since {head[:7]}")
    specs = pathspecs(watch_paths)
    window = _window(source, cursor, head)
    relevant = source.log(head, window.base, specs)
    old = window.diverged_cursor
    if not relevant and old is not None and source.differs(old, head, specs):
        relevant = source.log(head, None, [])  # rewound onto other content: deploy the head
        return _result(relevant, head, window, _rewound_note(branch, old, head))
    return _result(relevant, head, window, _note(source, branch, cursor, head, window, relevant))


def pathspecs(watch_paths: list[str]) -> list[str]:
    """Root-relative glob pathspecs (`:(top,glob)apps/backend/**`); explicit magic is kept."""
    return [p if p.startswith(":") else f":(top,glob){p.lstrip('/')}" for p in watch_paths if p]


def repo_dir(repo: str, cache_dir: Path) -> Path:
    """Where git commands for `repo` run: the repository itself, or its mirror for a URL.

    Useful to read a commit `scan()` returned (`git archive <sha>`) without another fetch.
    """
    if not is_remote(repo):
        return Path(repo).expanduser().resolve()
    return _mirror_path(_Remote.of(repo).label, cache_dir)


def commit_dir(
    repo: str, sha: str, cache_dir: Path, *, timeout_s: float = COMMIT_FETCH_TIMEOUT_S
) -> Path:
    """A repository holding commit `sha`, fetching just that commit when none here does.

    A run may execute where the sensor never ran: an ECS run task (EcsRunLauncher) starts with an
    empty state directory, so the sensor's mirror is not there. A local repository is read in
    place; for a URL, the sensor's mirror when it has the commit, else a separate bare repository
    under `cache_dir/commits` holding only what runs asked for: the commit alone (depth 1) when
    the server allows fetching a commit by its SHA, else every branch. It is kept apart from the
    sensor's mirror so that mirror never becomes shallow (its merge-bases need the history).
    """
    if not _SHA.fullmatch(sha):  # also keeps a partition key from being taken for an option
        raise GitSourceError(f"{sha!r} is not a full commit SHA")
    if not is_remote(repo):
        return repo_dir(repo, cache_dir)
    remote = _Remote.of(repo)
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
            f"{_reason(done.stderr)}"
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


# --- the scan window ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    base: str | None  # commits after this one are considered; None: only the head commit
    rewritten: bool
    diverged_cursor: str | None = None  # the cursor, when it exists but is off the branch now


def _window(source: _Source, cursor: str | None, head: str) -> _Window:
    """The range to examine: cursor..head normally, merge-base..head after a rewrite."""
    if cursor is None:
        return _Window(None, rewritten=False)
    if not _SHA.fullmatch(cursor):
        return _Window(None, rewritten=True)
    ancestry = source.is_ancestor(cursor, head)
    if ancestry is True:
        return _Window(cursor, rewritten=False)
    if ancestry is None:  # the cursor commit is gone (pruned, or from another repository)
        return _Window(None, rewritten=True)
    return _Window(source.merge_base(cursor, head), rewritten=True, diverged_cursor=cursor)


def _result(relevant: list[Commit], head: str, window: _Window, note: str) -> PushScan:
    deploy = relevant[-1] if relevant else None
    return PushScan(deploy, relevant[:-1], head, window.rewritten, note)


def _note(
    source: _Source,
    branch: str,
    cursor: str | None,
    head: str,
    window: _Window,
    relevant: list[Commit],
) -> str:
    """One sentence for the tick: what was examined and what comes out of it."""
    prefix = _rewrite_prefix(branch, cursor, window)
    if window.base is None:
        scope = "first scan" if cursor is None else "considering only the head"
        if relevant:
            return f"{prefix}{scope} of {branch}: deploying head {head[:7]}"
        return f"{prefix}{scope} of {branch}: head {head[:7]} touches no watched path"
    since = window.base[:7]
    if not relevant:
        new = source.count(head, window.base)
        return (
            f"{prefix}no commit touching a watched path since {since} "
            f"({_plural(new, 'new commit')}, head {head[:7]})"
        )
    deploy = relevant[-1]
    sentence = f"{prefix}{_plural(len(relevant), 'relevant commit')} since {since}: "
    sentence += f"deploying {deploy.short}"
    if len(relevant) > 1:
        sentence += f", superseding {len(relevant) - 1}"
    return sentence


def _rewrite_prefix(branch: str, cursor: str | None, window: _Window) -> str:
    if not window.rewritten or cursor is None:
        return ""
    if window.base is not None:
        return f"history of {branch} rewritten ({cursor[:7]} is no longer on it); "
    if window.diverged_cursor is not None:
        return f"history of {branch} rewritten ({cursor[:7]} shares no history with it); "
    return f"history of {branch} rewritten ({cursor[:7]} no longer exists); "


def _rewound_note(branch: str, cursor: str, head: str) -> str:
    return (
        f"history of {branch} rewritten: no new commit touches a watched path, but the "
        f"watched files at head {head[:7]} differ from {cursor[:7]}: deploying head {head[:7]}"
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _missing_branch(label: str, branch: str, timeout_s: float) -> GitSourceError:
    """Why `branch` was not found: a name git would never accept, or simply not there.

    Only asked once the branch is not found, so a healthy scan does not pay for it; the name is
    always used as `refs/heads/<name>`, so it can never be taken for an option.
    """
    check = ["check-ref-format", f"refs/heads/{branch}"]
    if _run(check, None, _env(), timeout_s).returncode != 0:
        return GitSourceError(f"branch name {branch!r} is not a valid git branch name")
    return GitSourceError(f"{label}: branch {branch!r} does not exist")


# --- reading a repository -------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """A repository git can read: a local one in place, or the mirror of a remote one."""

    path: Path
    label: str  # how messages name it: the path or the URL, without credentials
    env: dict[str, str]
    timeout_s: float

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return _run(list(args), self.path, self.env, self.timeout_s)
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
            raise GitSourceError(f"git repository {self.label}: {_reason(found.stderr)}")
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
            raise GitSourceError(f"git repository {self.label}: {_reason(done.stderr)}")
        return done.stdout


def _parse_commit(record: str) -> Commit:
    sha, timestamp, author, subject = record.split(_FIELD, 3)
    when = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Commit(sha=sha, subject=subject, author=author, committed_at=when)


def _open(repo: str, branch: str, cache_dir: Path, timeout_s: float) -> _Source:
    if is_remote(repo):
        return _fetch(_Remote.of(repo), branch, cache_dir, timeout_s)
    return _open_local(repo, timeout_s)


def _open_local(repo: str, timeout_s: float) -> _Source:
    """Read a local repository in place; GIT_CEILING_DIRECTORIES stops git from walking up to a
    parent repository when `repo` is a plain directory inside one."""
    path = Path(repo).expanduser().resolve()
    if not path.is_dir():
        raise GitSourceError(f"git repository {repo}: no such directory")
    return _Source(path, repo, _env(ceiling=path.parent), timeout_s)


# --- mirroring a remote ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Remote:
    url: str  # what git fetches from: without userinfo when that travels in `env`
    label: str  # how messages and the mirror name it: never with a password
    env: dict[str, str]

    @staticmethod
    def of(url: str) -> _Remote:
        """Split credentials off an http(s) URL; other URLs only lose a password in the label.

        http(s) userinfo becomes an `Authorization: Basic` header configured through
        GIT_CONFIG_* variables and scoped to the URL's host, so it appears in no argv, file or
        message. (ssh authenticates with keys; scp-like `user@host:path` has no password.)
        """
        parts = urlsplit(url) if "://" in url else None
        if parts is None or "@" not in parts.netloc:
            return _Remote(url, url, {})
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, has_password, password = userinfo.partition(":")
        if parts.scheme not in ("http", "https"):
            label = urlunsplit(parts._replace(netloc=f"{user}@{host}")) if has_password else url
            return _Remote(url, label, {})
        public = urlunsplit(parts._replace(netloc=host))
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
        env = {
            "GIT_CONFIG_COUNT": str(index + 1),
            f"GIT_CONFIG_KEY_{index}": f"http.{parts.scheme}://{host}/.extraHeader",
            f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {token}",
        }
        return _Remote(public, public, env)


def _fetch(remote: _Remote, branch: str, cache_dir: Path, timeout_s: float) -> _Source:
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
    return _Source(path, remote.label, _env(ceiling=path.parent), timeout_s)


def _git_fetch(
    remote: _Remote, path: Path, options: list[str], refspec: str, timeout_s: float, what: str
) -> subprocess.CompletedProcess[str]:
    """`git fetch` of `refspec` from the remote into `path`, with the repository credential."""
    command = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", *options]
    command += [remote.url, refspec]
    try:
        with git_credential_env() as credential:  # SAGE_OPS_REPO_CREDENTIAL_SECRET, if set
            extra = {**remote.env, **credential}
            return _run(command, path, _env(ceiling=path.parent, extra=extra), timeout_s)
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
        f"git remote {label} unreachable: cannot fetch {branch!r}: {_reason(stderr)}"
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
    return _run(check, path, _env(ceiling=path.parent), timeout_s).returncode == 0


def _create_mirror(path: Path, timeout_s: float) -> None:
    """An empty bare repository, created aside and renamed into place so that a concurrent
    scan or an interrupted one never sees a half-initialised directory."""
    if (path / "HEAD").exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    done = _run(["init", "--bare", "--quiet", str(staging)], None, _env(), timeout_s)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise GitSourceError(f"git mirror {path}: cannot create it: {_reason(done.stderr)}")
    try:
        staging.rename(path)
    except OSError:  # another scan created it first
        shutil.rmtree(staging, ignore_errors=True)


# --- running git ----------------------------------------------------------------------------


def _env(ceiling: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment minus repository overrides; git never prompts (a daemon has no
    one to answer) and speaks C so messages read the same everywhere."""
    env = {k: v for k, v in child_env(GIT).items() if k not in _REPO_ENV_VARS}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    if ceiling is not None:
        env["GIT_CEILING_DIRECTORIES"] = str(ceiling)
    env.update(extra or {})
    return env


def _run(
    args: list[str], cwd: Path | None, env: dict[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """Run git; on timeout kill its whole process group (git-remote-https, ssh) and re-raise
    TimeoutExpired. In its own session git also has no terminal to prompt on."""
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise GitSourceError("git is not installed (no `git` on PATH)") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    text = out.decode(errors="replace"), err.decode(errors="replace")
    return subprocess.CompletedProcess(args, proc.returncode, *text)


def _reason(stderr: str) -> str:
    """One line saying what went wrong: git's first `fatal:`/`error:` line without its prefix,
    after the line a helper printed before it (ssh's "Connection refused" is the real cause of
    git's "Could not read from remote repository")."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next((i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))), 0)
    if not lines:
        return "git failed without a message"
    reason = re.sub(r"^(fatal|error):\s*", "", lines[first])
    return f"{lines[0]}: {reason}" if first > 0 else reason
