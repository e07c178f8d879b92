"""The backend's source at one commit, exported from git without touching any working tree."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from sage_ops.deploy.git import GitSourceError


def export_tree(git_dir: Path, sha: str, subdir: str, dest: Path) -> Path:
    """Write `subdir` as of commit `sha` into `dest`; return the exported directory."""
    subdir = subdir.strip("/")
    proc = subprocess.Popen(
        ["git", "-C", str(git_dir), "archive", "--format=tar", sha, "--", subdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            archive.extractall(dest, filter="data")
    except tarfile.TarError:
        pass  # git's exit status and stderr say what went wrong
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        reason = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise GitSourceError(f"cannot export {subdir} at {sha[:12]} from {git_dir}: {reason[0]}")
    exported = dest / subdir
    if not exported.is_dir():
        raise GitSourceError(f"{subdir} does not exist at commit {sha[:12]}")
    return exported
