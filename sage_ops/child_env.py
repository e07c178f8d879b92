"""The environment a child process (pg_dump, psql, git, squawk, docker) gets: an allowlist.

sage_ops holds database URLs, API keys and tokens in its own environment; a child inheriting
all of it could show them (`ps e`, /proc/<pid>/environ, a crash report, a container). Each
child gets only what it needs to run, plus what the caller passes explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Needs:
    """Variables a tool needs from our environment: exact names, and name prefixes."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()


# Every child: finding programs, a home for config files, locale, time zone, temporary files.
BASE = Needs(frozenset({"PATH", "HOME", "LANG", "TZ", "TMPDIR"}), ("LC_",))
# For tools that reach the network themselves (git fetch, dockerd pulling images).
_PROXIES = {
    name
    for upper in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    for name in (upper, upper.lower())
}
# git: its own settings (GIT_SSH_COMMAND, GIT_ASKPASS, GIT_CONFIG_*, GIT_SSL_CAINFO), ssh-agent
# for ssh remotes, CA certificates for https ones. Credentials come from files, an askpass
# program or the agent, never from a variable holding the secret itself.
GIT = Needs(
    frozenset({"SSH_AUTH_SOCK", "XDG_CONFIG_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", *_PROXIES}),
    ("GIT_",),
)
# docker CLI, its credential helpers and the dockerd the local services script starts: which
# engine, where its config and certificates are, how it reaches registries.
DOCKER = Needs(
    frozenset(
        {
            "DOCKER_HOST",
            "DOCKER_CONFIG",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            *_PROXIES,
        }
    )
)
# Never passed on, whatever an allowlisted prefix says (GIT_HTTP_TOKEN, LC_..._PASSWORD).
_SECRET_MARKS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "DATABASE_URL")


def child_env(needs: Needs = BASE, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """BASE and `needs` taken from our environment, then `extra` (set by the caller on purpose)."""
    env = {k: v for k, v in os.environ.items() if _allowed(k, needs)}
    env.update(extra or {})
    return env


def blanked(needs: Needs = BASE) -> dict[str, str]:
    """Overrides emptying everything `child_env` would not pass: for APIs that start children
    from a copy of our environment and only accept overrides (docker's credential helpers)."""
    return {k: "" for k in os.environ if not _allowed(k, needs)}


def _allowed(name: str, needs: Needs) -> bool:
    upper = name.upper()
    if any(mark in upper for mark in _SECRET_MARKS):
        return False
    return any(name in n.names or name.startswith(n.prefixes) for n in (BASE, needs))
