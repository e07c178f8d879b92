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

from dataclasses import dataclass
from pathlib import Path

from sage_ops.platforms.git.repo import FULL_SHA, Commit, Source, open_source

DEFAULT_TIMEOUT_S = 30.0  # per git command; well under Dagster's 60 s sensor timeout


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
    credential: str | None = None,
) -> PushScan:
    """What happened on `branch` since `cursor`: see the module docstring for the semantics.

    `watch_paths` are pathspec globs relative to the repository root (`apps/backend/**`); an
    empty list watches the whole repository. `timeout_s` bounds each git command (the fetch
    of a remote included); `credential` is the Secrets Manager id of the repository's key.
    """
    source = open_source(repo, branch, cache_dir, timeout_s, credential)
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


# --- the scan window ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    base: str | None  # commits after this one are considered; None: only the head commit
    rewritten: bool
    diverged_cursor: str | None = None  # the cursor, when it exists but is off the branch now


def _window(source: Source, cursor: str | None, head: str) -> _Window:
    """The range to examine: cursor..head normally, merge-base..head after a rewrite."""
    if cursor is None:
        return _Window(None, rewritten=False)
    if not FULL_SHA.fullmatch(cursor):
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
    source: Source,
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
