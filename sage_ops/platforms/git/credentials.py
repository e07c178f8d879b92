"""A private repository's credential, from Secrets Manager to git without passing through argv.

SAGE_OPS_REPO_CREDENTIAL_SECRET names a Secrets Manager secret (name or ARN) holding either
  - a deploy key: the private key itself (`-----BEGIN ...`), or JSON
    {"ssh_private_key": "...", "known_hosts": "..."}, for ssh:// and user@host:path remotes;
  - a token: the token itself, or JSON {"token": "...", "username": "x-access-token"}, for https.
For one git command at a time the secret is written to 0600 files in a private 0700 directory
(removed afterwards) and git is pointed at them through its environment: GIT_SSH_COMMAND with
`-i <key file>`, or GIT_ASKPASS, a script that prints the username or the token from those files.
The secret's value is never in argv, in an environment variable, in a URL or in a message.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.platforms import aws

SECRET_ENV = "SAGE_OPS_REPO_CREDENTIAL_SECRET"  # noqa: S105 - a variable name
DEFAULT_USERNAME = "x-access-token"  # GitHub's for tokens; GitLab and others accept any name
ASKPASS = """#!/bin/sh
# git asks "Username for 'https://host': " then "Password for 'https://user@host': ".
here=$(dirname "$0")
case "$1" in
  Username*) cat "$here/username" ;;
  *) cat "$here/token" ;;
esac
"""


class CredentialError(SageOpsError):
    """The repository credential could not be read from Secrets Manager."""


@dataclass(frozen=True)
class Credential:
    ssh_private_key: str | None = None
    known_hosts: str | None = None
    token: str | None = None
    username: str = DEFAULT_USERNAME


Fetch = Callable[[str], str]


@contextmanager
def git_credential_env(
    secret_id: str | None, fetch: Fetch | None = None
) -> Iterator[dict[str, str]]:
    """git environment for the credential in secret `secret_id`, valid inside the block; {}
    when there is none."""
    if not secret_id:
        yield {}
        return
    credential = parse((fetch or fetch_secret)(secret_id), secret_id)
    with tempfile.TemporaryDirectory(prefix="sage_ops_git_") as tmp:  # created 0700
        yield _env(credential, Path(tmp))


def fetch_secret(secret_id: str) -> str:
    try:
        answer = aws.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        raise CredentialError(
            f"cannot read the repository credential {secret_id} ({SECRET_ENV}) from Secrets "
            f"Manager: {aws.error_text(exc)}"
        ) from None
    return str(answer.get("SecretString") or "")


def parse(value: str, secret_id: str) -> Credential:
    """A raw key or token, or the JSON forms in the module docstring."""
    text = value.strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"secret {secret_id} is not valid JSON") from None  # value not shown
        known = {k: str(v) for k, v in fields.items() if k in Credential.__dataclass_fields__}
        credential = Credential(**known)
    elif text.startswith("-----BEGIN"):
        credential = Credential(ssh_private_key=text)
    else:
        credential = Credential(token=text)
    if not (credential.ssh_private_key or credential.token):
        raise ConfigError(f"secret {secret_id} holds neither ssh_private_key nor token")
    return credential


def _env(credential: Credential, directory: Path) -> dict[str, str]:
    if credential.ssh_private_key:
        # ssh refuses a key file others can read; OpenSSH also wants the final newline.
        key = _private_file(directory / "key", credential.ssh_private_key.strip() + "\n")
        ssh = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        if credential.known_hosts:
            hosts = _private_file(directory / "known_hosts", credential.known_hosts.strip() + "\n")
            ssh += ["-o", f"UserKnownHostsFile={hosts}", "-o", "StrictHostKeyChecking=yes"]
        else:  # no pinned host key: trust on first use within this task's lifetime
            ssh += ["-o", "StrictHostKeyChecking=accept-new"]
        return {"GIT_SSH_COMMAND": shlex.join(ssh)}
    _private_file(directory / "token", credential.token or "")
    _private_file(directory / "username", credential.username)
    script = _private_file(directory / "askpass", ASKPASS)
    script.chmod(0o700)
    return {"GIT_ASKPASS": str(script)}


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
