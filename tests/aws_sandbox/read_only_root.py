"""A container's file system and user as Fargate gives them, for the stand-in's process: with
`readonlyRootFilesystem`, only the task's volumes can be written.

The process runs in a user and mount namespace of its own (`unshare`, private propagation:
nothing reaches the machine's mounts). There each volume, a fresh directory per task, is
bind-mounted at its mount point, then every other mount of the machine is made read-only for
that namespace (`mount -o remount,bind,ro`), except /proc, /sys and /dev (with /dev/shm), which a
container has writable too. A write anywhere else fails with EROFS, as in the task. The command
then runs as the image's USER (sage-ops.Dockerfile's uid 10001, mapped onto this machine's user,
so the sandbox's files stay readable), not as root: what runs as root takes other paths (pgserver
chmods every parent of its data directory). One difference: the task's /tmp volume is the
process's TMPDIR rather than a mount over the machine's /tmp, which would hide the sandbox's own
files there (its DAGSTER_HOME, repository) that stand for the image's; the machine's /tmp itself
stays read-only, so a write to a literal /tmp path fails here where the task would let it through.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

TMP = "/tmp"
# Run in the namespace: $1 = "ro" for a read-only root, $2 = the image's uid, $3 = the image's
# /etc/passwd, $4 = the number of volumes, then (volume, mount point) pairs, then the command.
# 125: the container could not be set up (docker run's code for that).
SETUP = r"""
root=$1; uid=$2; mount --bind "$3" /etc/passwd || exit 125; n=$4; shift 4; keep=""
while [ "$n" -gt 0 ]; do
  mount --bind "$1" "$2" || exit 125
  keep="$keep|$2|"; shift 2; n=$((n-1))
done
user="unshare --user --map-user=$uid --map-group=$uid"
[ "$root" = ro ] || exec $user "$@"
mount -o remount,bind,ro / || exit 125
for m in $(awk '{print $2}' /proc/self/mounts); do
  case "$m" in /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  case "$keep" in *"|$m|"*) continue ;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
exec $user "$@"
"""


def volumes(mount_points: list[Mapping[str, str]], workdir: Path) -> dict[str, Path]:
    """Each mount point's fresh, empty volume (a directory under `workdir`), by container path."""
    made = {}
    for mount in mount_points:
        volume = workdir / "volumes" / mount["sourceVolume"]
        volume.mkdir(parents=True)
        made[mount["containerPath"]] = volume
    return made


def command(
    given: list[str], mounted: Mapping[str, Path], read_only: bool, home: Path
) -> list[str]:
    """`given`, run as the image's user (whose home is `home`) with the volumes mounted
    (`mounted`: container path -> volume, /tmp excluded: see the module's docstring) and, for a
    read-only root, nothing else writable."""
    uid = image_uid()
    passwd = home / "passwd"  # the image's: this machine's users and its own (useradd sage)
    passwd.write_text(Path("/etc/passwd").read_text() + f"sage:x:{uid}:{uid}::{home}:/bin/sh\n")
    pairs = []
    for target, volume in mounted.items():
        Path(target).mkdir(parents=True, exist_ok=True)  # a mount point must exist
        pairs += [str(volume), target]
    namespace = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
    setup = ["sh", "-c", SETUP, "sh", "ro" if read_only else "rw", str(uid), str(passwd)]
    return [*namespace, *setup, str(len(mounted)), *pairs, *given]


def image_uid() -> int:
    """The sage-ops image's USER (its last USER instruction), which runs the container."""
    dockerfile = Path(__file__).resolve().parents[2] / "infra/docker/sage-ops.Dockerfile"
    users = [
        line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("USER ")
    ]
    return int(users[-1])
