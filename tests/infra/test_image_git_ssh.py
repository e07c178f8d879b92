"""The push sensor's SSH path in the sage-ops image itself: a deploy key reaches a real sshd through
sage_ops' credential code, the image's git and its OpenSSH client, under a read-only root as on
Fargate (only /tmp writable, so ssh cannot record the host key it trusts on first use)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack
SSHD = "/usr/sbin/sshd"  # openssh-server on the host (.ci/run installs it)
LS_REMOTE = """
import os, subprocess, sys
from sage_ops.platforms.git.credentials import git_credential_env
secret = open("/secret/value").read()
with git_credential_env("deploy-key", fetch=lambda _: secret) as env:
    out = subprocess.run(["git", "ls-remote", sys.argv[1]], env={**os.environ, **env},
                         capture_output=True, text=True)
print(out.stdout, end="")
sys.exit(out.returncode and f"git ls-remote failed: {out.stderr}")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path, str]]:
    """A real sshd on 127.0.0.1 that accepts one client key for root; yields its port, the
    client's private key and the server's public host key."""
    client_public = keygen(tmp_path / "client")
    host_public = keygen(tmp_path / "host")
    (tmp_path / "authorized_keys").write_text(client_public)
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nPidFile none\nStrictModes no\n"
        "UsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert server.poll() is None and time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.1)
        yield port, tmp_path / "client", host_public
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def bare_repo(tmp_path: Path) -> tuple[Path, str]:
    work, bare = tmp_path / "work", tmp_path / "repo.git"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "README").write_text("x\n")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return bare, head


@pytest.mark.parametrize("pinned", [False, True], ids=["trust-on-first-use", "known-hosts"])
def test_a_deploy_key_fetches_over_ssh_in_the_read_only_image(
    stack_images, sshd, bare_repo, tmp_path, pinned
) -> None:
    port, client_key, host_public = sshd
    bare, head = bare_repo
    key = client_key.read_text()
    secret = key
    if pinned:
        secret = json.dumps(
            {"ssh_private_key": key, "known_hosts": f"[127.0.0.1]:{port} {host_public}"}
        )
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "value").write_text(secret)
    os.chmod(secret_dir / "value", 0o644)  # read by the image's user; the code copies it 0600
    run = subprocess.run(
        [
            "docker", "run", "--rm", "--network", "host", "--read-only",
            "--tmpfs", "/tmp", "-e", "TMPDIR=/tmp",
            "-v", f"{secret_dir}:/secret:ro", "--entrypoint", "python",
            stack_images, "-c", LS_REMOTE, f"ssh://root@127.0.0.1:{port}{bare}",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-800:]
    assert f"{head}\trefs/heads/main" in run.stdout
    assert key.strip() not in run.stdout + run.stderr
