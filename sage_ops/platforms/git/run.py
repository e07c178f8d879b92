"""Running the git CLI for the git sensor and runs: one process at a time, bounded in time.

`run_git()` runs git in its own session with no terminal and kills its whole process group on
timeout; `git_env()` is the environment it runs in (no repository overrides from the caller, no
prompts, C messages); `stderr_reason()` turns git's stderr into a one-line reason for a
GitSourceError. Reading repositories is `git_repo.py`; the push scan is `git_push_scan.py`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from sage_ops.child_env import GIT, child_env
from sage_ops.errors import SageOpsError

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


class GitSourceError(SageOpsError):
    """The watched repository, branch or remote could not be read; the sensor skips the tick."""


def git_env(ceiling: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment minus repository overrides; git never prompts (a daemon has no
    one to answer) and speaks C so messages read the same everywhere."""
    env = {k: v for k, v in child_env(GIT).items() if k not in _REPO_ENV_VARS}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    if ceiling is not None:
        env["GIT_CEILING_DIRECTORIES"] = str(ceiling)
    env.update(extra or {})
    return env


def run_git(
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


def stderr_reason(stderr: str) -> str:
    """One line saying what went wrong: git's first `fatal:`/`error:` line without its prefix,
    after the line a helper printed before it (ssh's "Connection refused" is the real cause of
    git's "Could not read from remote repository")."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next((i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))), 0)
    if not lines:
        return "git failed without a message"
    reason = re.sub(r"^(fatal|error):\s*", "", lines[first])
    return f"{lines[0]}: {reason}" if first > 0 else reason
