"""Find PostgreSQL client tools (pg_dump, psql, pg_restore) that fit a given server version.

pg_dump refuses servers newer than itself, and a newer pg_dump may emit settings an older
server cannot restore, so the best pick has the server's major version, else the nearest newer.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sage_ops.child_env import child_env
from sage_ops.errors import ToolError

BIN_DIR_ENV = "SAGE_OPS_PG_BIN_DIR"


@dataclass(frozen=True)
class PgTools:
    bin_dir: Path
    major: int
    version: str
    reason: str

    def path(self, tool: str) -> str:
        return str(self.bin_dir / tool)


def candidate_bin_dirs() -> list[Path]:
    """Every directory that may hold pg_dump, the configured one first."""
    dirs: list[Path] = []
    if os.environ.get(BIN_DIR_ENV):
        return [Path(os.environ[BIN_DIR_ENV])]
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(os.path.realpath(on_path)).parent)
    dirs += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"))]
    embedded = embedded_bin_dir()
    if embedded:
        dirs.append(embedded)
    unique: list[Path] = []
    for d in dirs:
        if (d / "pg_dump").exists() and d not in unique:
            unique.append(d)
    return unique


def embedded_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("pgserver")  # located, not imported: importing is slow
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "pginstall" / "bin"
    return path if path.is_dir() else None


def tool_version(bin_dir: Path) -> tuple[int, str]:
    out = subprocess.run(
        [str(bin_dir / "pg_dump"), "--version"],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
    ).stdout
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not match:
        raise ToolError(f"cannot read the version of {bin_dir / 'pg_dump'}: {out.strip()!r}")
    return int(match.group(1)), match.group(0)


def tools_for_server(
    server_major: int, server_version: str, reads_dump_of: str | None = None
) -> PgTools:
    """The client tools to use against a server of `server_major`, with the reason for the pick.

    `reads_dump_of`: the pg_dump version that wrote the dump to restore. Minor releases add
    meta-commands to plain dumps (`\\restrict`, from 17.6/16.10/15.14), which an older psql of the
    same major rejects, so tools at least that version are preferred among those that fit. Only
    the dump's own major orders by that number (16.2 predates 15.20 and rejects what it wrote),
    and psql and pg_restore load into servers of a newer major, so the dump's own major at its
    minor or later comes first, also below `server_major`."""
    found = []
    for d in candidate_bin_dirs():
        major, version = tool_version(d)
        found.append((major, version, d))
    if not found:
        raise ToolError(f"no pg_dump found (install postgresql-client or set {BIN_DIR_ENV})")
    fitting = sorted((f for f in found if f[0] >= server_major), key=lambda f: f[0])
    if reads_dump_of:
        dump = _numbers(reads_dump_of)
        readers = [f for f in found if f[0] == dump[0] and _numbers(f[1]) >= dump]
        fitting.sort(key=lambda f: _numbers(f[1]) < dump)  # stable: by major
        fitting = readers + [f for f in fitting if f not in readers]
    if not fitting:
        seen = ", ".join(f"{v} at {d}" for _, v, d in found)
        raise ToolError(
            f"server is PostgreSQL {server_version} but the newest pg_dump found is older "
            f"({seen}); install a pg_dump {server_major} or newer, or set {BIN_DIR_ENV}"
        )
    major, version, bin_dir = fitting[0]
    default = found[0]
    if (major, bin_dir) == (default[0], default[2]):
        reason = f"pg_dump {version} at {bin_dir} fits server {server_version}"
    else:
        reason = (
            f"pg_dump {version} at {bin_dir} chosen for server {server_version}; "
            f"the first one found ({default[1]} at {default[2]}) "
            + ("is older than the server" if default[0] < server_major else "is a newer major")
        )
    return PgTools(bin_dir=bin_dir, major=major, version=version, reason=reason)


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:2])
