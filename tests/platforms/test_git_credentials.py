"""A private repository through the git sensor's own fetch, with the credential in Secrets Manager.

Real git against local servers: a token over HTTP (git's dumb protocol behind Basic auth, served
from a bare repository) and a deploy key over ssh (an `ssh` on PATH that checks the key it is
given and runs git-upload-pack locally, as sshd would). Secrets Manager is moto. Every git child
is recorded: the secret must be in no argument and no environment variable, only in 0600 files
that exist while git runs and are gone afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import stat
import subprocess
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sage_ops.errors import ConfigError
from sage_ops.platforms import aws
from sage_ops.platforms.git import push_scan as git_push_scan
from sage_ops.platforms.git import run as git
from sage_ops.platforms.git.credentials import parse
from tests.backups.s3 import apply_env, aws_env, moto_server

TOKEN = f"ghp_{uuid.uuid4().hex}"
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA"
    + uuid.uuid4().hex
    + "\n-----END OPENSSH PRIVATE KEY-----"
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as server:
        yield server.endpoint


@pytest.fixture
def secret(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """Store a value in (moto's) Secrets Manager; returns its ARN, the credential to scan with."""
    apply_env(aws_env(moto_endpoint), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False))

    def put(value: str) -> str:
        name = f"sage-production/sage-ops/git-{uuid.uuid4().hex[:6]}"
        arn = aws.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        return str(arn)

    return put


@pytest.fixture(scope="module")
def bare_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("work")
    run = partial(subprocess.run, check=True, capture_output=True, text=True)
    cfg = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    run(["git", "init", "-q", "-b", "main", str(work)])
    (work / "README").write_text("private\n")
    run(["git", "-C", str(work), *cfg, "add", "README"])
    run(["git", "-C", str(work), *cfg, "commit", "-qm", "first"])
    bare = tmp_path_factory.mktemp("served") / "private.git"
    run(["git", "clone", "-q", "--bare", str(work), str(bare)])
    run(["git", "-C", str(bare), "update-server-info"])  # for the dumb HTTP protocol
    head = run(["git", "-C", str(bare), "rev-parse", "main"]).stdout.strip()
    return bare, head


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every git child: argv, environment, and the credential files' modes while it runs."""
    calls: list[dict[str, Any]] = []
    real = subprocess.Popen

    def popen(args: list[str], **kw: Any) -> Any:
        env = kw.get("env") or {}
        directory = _credential_dir(env)
        files: dict[str, Any] = {}
        if directory is not None:
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
            files.update({".": stat.S_IMODE(directory.stat().st_mode), "dir": str(directory)})
        calls.append({"argv": list(args), "env": dict(env), "files": files})
        return real(args, **kw)

    monkeypatch.setattr(git.subprocess, "Popen", popen)
    return calls


def _credential_dir(env: dict[str, str]) -> Path | None:
    if "GIT_ASKPASS" in env:
        return Path(env["GIT_ASKPASS"]).parent
    if "GIT_SSH_COMMAND" in env:
        words = shlex.split(env["GIT_SSH_COMMAND"])
        return Path(words[words.index("-i") + 1]).parent
    return None


def assert_secret_nowhere(calls: list[dict[str, Any]], secret: str) -> None:
    for call in calls:
        assert all(secret not in arg for arg in call["argv"])
        assert all(secret not in value for value in call["env"].values())


class _Private(SimpleHTTPRequestHandler):
    """Serves the bare repository only to Basic x-access-token:<TOKEN>."""

    seen: list[str] = []

    def do_GET(self) -> None:
        expected = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        got = self.headers.get("Authorization", "")
        self.seen.append(got)
        if got != f"Basic {expected}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_repo(bare_repo: tuple[Path, str]) -> Iterator[str]:
    bare, _ = bare_repo
    handler = partial(_Private, directory=str(bare.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{bare.name}"
    server.shutdown()
    server.server_close()


def test_token_reaches_git_through_askpass_only(secret, http_repo, bare_repo, recorded, tmp_path):
    _, head = bare_repo
    arn = secret(json.dumps({"token": TOKEN}))

    result = git_push_scan.scan(http_repo, "main", [], None, tmp_path / "cache", credential=arn)

    assert result.deploy is not None and result.deploy.sha == head
    assert any(h.startswith("Basic ") for h in _Private.seen)  # the token was asked for and sent
    (fetch,) = [c for c in recorded if "fetch" in c["argv"]]
    assert fetch["files"]["."] == 0o700
    assert fetch["files"]["token"] == fetch["files"]["username"] == 0o600
    assert not Path(fetch["files"]["dir"]).exists()  # removed after the fetch
    assert_secret_nowhere(recorded, TOKEN)
    assert TOKEN not in result.note


def test_wrong_token_is_a_skip_reason_without_the_token(secret, http_repo, recorded, tmp_path):
    arn = secret("not-the-token")
    with pytest.raises(git.GitSourceError) as failure:
        git_push_scan.scan(http_repo, "main", [], None, tmp_path / "cache", credential=arn)
    assert "not-the-token" not in str(failure.value)
    assert_secret_nowhere(recorded, "not-the-token")


def test_deploy_key_reaches_ssh_as_a_0600_file(secret, bare_repo, recorded, tmp_path, monkeypatch):
    bare, head = bare_repo
    arn = secret(KEY)
    # An `ssh` that plays sshd: checks the key file it was given, then runs the remote command.
    bin_dir, seen = tmp_path / "bin", tmp_path / "ssh-seen"
    bin_dir.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {seen}.argv\n'
        "while [ $# -gt 1 ]; do\n"
        '  if [ "$1" = -i ]; then stat -c %a "$2" > '
        + f"{seen}.mode"
        + '; cp "$2" '
        + f"{seen}.key"
        + "; fi\n"
        "  shift\n"
        "done\n"
        'exec sh -c "$1"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    result = git_push_scan.scan(
        f"ssh://git@git.example.invalid{bare}", "main", [], None, tmp_path / "c", credential=arn
    )

    assert result.deploy is not None and result.deploy.sha == head
    assert Path(f"{seen}.mode").read_text().strip() == "600"
    assert Path(f"{seen}.key").read_text() == KEY + "\n"
    argv = Path(f"{seen}.argv").read_text()
    assert "-i" in argv and "IdentitiesOnly=yes" in argv and KEY not in argv
    assert_secret_nowhere(recorded, KEY)
    assert_secret_nowhere(recorded, KEY.splitlines()[1])


def test_unreadable_secret_is_a_skip_reason(secret, moto_endpoint, monkeypatch, tmp_path):
    secret("x")
    missing = "sage-production/sage-ops/missing"
    with pytest.raises(git.GitSourceError, match="cannot read the repository credential"):
        git_push_scan.scan(
            "https://git.example.invalid/r.git",
            "main",
            [],
            None,
            tmp_path / "c",
            credential=missing,
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (KEY, {"ssh_private_key": KEY, "token": None}),
        (json.dumps({"ssh_private_key": KEY, "known_hosts": "h"}), {"known_hosts": "h"}),
        (TOKEN, {"token": TOKEN, "username": "x-access-token"}),
        (json.dumps({"token": TOKEN, "username": "oauth2"}), {"username": "oauth2"}),
    ],
)
def test_secret_forms(value: str, expected: dict[str, Any]) -> None:
    credential = parse(value, "s")
    assert {k: getattr(credential, k) for k in expected} == expected


def test_malformed_secret_is_refused_without_its_value() -> None:
    with pytest.raises(ConfigError) as failure:
        parse('{"token": ', "s")
    assert '{"token"' not in str(failure.value)
    with pytest.raises(ConfigError, match="neither ssh_private_key nor token"):
        parse('{"user": "x"}', "s")
