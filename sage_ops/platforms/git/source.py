"""The backend's source at one commit, exported from git without touching any working tree."""

from __future__ import annotations

import posixpath
import signal
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from sage_ops.child_env import GIT, child_env
from sage_ops.platforms.git.run import GitSourceError

MemberFilter = Callable[[tarfile.TarInfo, str], tarfile.TarInfo]


def export_tree(
    git_dir: Path, sha: str, subdir: str, dest: Path, *, keep_outside_links: bool = False
) -> Path:
    """Write `subdir` as of commit `sha` into `dest`; return the exported directory.

    git archive emits a symlink with its target verbatim. `keep_outside_links` recreates absolute
    links and links leaving the tree as they are, as a checkout and `docker build`'s own context
    upload would (Docker copies links, it never follows them); otherwise, for trees read on this
    host, such a link fails the export naming it: reading through it would read this machine's
    files, not the commit's. Nothing is ever written outside `dest`.
    """
    subdir = subdir.strip("/")
    proc = subprocess.Popen(
        ["git", "-C", str(git_dir), "archive", "--format=tar", sha, "--", subdir],
        env=child_env(GIT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    problem = None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            _extract(archive, dest, _keep_links if keep_outside_links else _inside(subdir))
    except (tarfile.TarError, OSError) as exc:
        problem = exc
        proc.kill()  # stop git rather than leave the rest of the tree unread
    _, stderr = proc.communicate()
    if proc.returncode not in (0, -signal.SIGKILL):  # git's own failure says the most
        reason = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise GitSourceError(f"cannot export {subdir} at {sha[:12]} from {git_dir}: {reason[0]}")
    if problem is not None:
        raise GitSourceError(f"cannot export {subdir} at {sha[:12]}: {problem}")
    exported = dest / subdir
    if not exported.is_dir():
        raise GitSourceError(f"{subdir} does not exist at commit {sha[:12]}")
    return exported


def _extract(archive: tarfile.TarFile, dest: Path, member_filter: MemberFilter) -> None:
    """Member by member, so that an error names the member it stopped at."""
    for member in archive:
        try:
            archive.extract(member, dest, filter=member_filter)
        except (tarfile.TarError, OSError) as exc:
            link = f" -> {member.linkname}" if member.issym() else ""
            raise tarfile.ExtractError(f"{member.name}{link}: {exc}") from exc


def _inside(tree: str) -> MemberFilter:
    """The data filter, with links held inside the exported tree rather than inside `dest`."""

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        checked = tarfile.data_filter(member, dest)
        if member.issym():
            target = posixpath.normpath(
                posixpath.join(posixpath.dirname(member.name), member.linkname)
            )
            if not PurePosixPath(target).is_relative_to(tree):
                raise tarfile.LinkOutsideDestinationError(member, target)
        return checked

    return check


def _keep_links(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """The data filter, except that a symlink keeps its target: only where it is created counts."""
    if not member.issym():
        return tarfile.data_filter(member, dest)
    placed = tarfile.data_filter(member.replace(linkname=".", deep=False), dest)
    return placed.replace(linkname=member.linkname, deep=False)
