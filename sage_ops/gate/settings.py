"""The gate's configuration, from SAGE_OPS_GATE_* environment variables and the command line."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sage_ops.errors import ConfigError

ALB_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer/app/[\w-]+/[0-9a-f]+$"
)


@dataclass(frozen=True)
class GateSettings:
    alb_arn: str | None = None
    key_url: str | None = None  # default: the regional key server of alb_arn
    issuer: str | None = None
    client_id: str | None = None
    allowed_domains: frozenset[str] = frozenset()
    admin_emails: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()
    groups_claim: str = "groups"
    audit_log: str = "-"  # a file to append to, or "-" for stdout
    local_user: str | None = None
    # A container publishing its port on the host's 127.0.0.1 (docker-compose) must bind 0.0.0.0
    # inside; then its compose network reaches it as the local user too, hence explicit.
    local_on_any_interface: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GateSettings:
        def get(name: str) -> str | None:
            return env.get(f"SAGE_OPS_GATE_{name}") or None

        return cls(
            alb_arn=get("ALB_ARN"),
            key_url=get("KEY_URL"),
            issuer=get("ISSUER"),
            client_id=get("CLIENT_ID"),
            allowed_domains=_lower_set(get("ALLOWED_DOMAINS")),
            admin_emails=_lower_set(get("ADMIN_EMAILS")),
            admin_groups=frozenset(_split(get("ADMIN_GROUPS"))),
            groups_claim=get("GROUPS_CLAIM") or "groups",
            audit_log=get("AUDIT_LOG") or "-",
            local_user=get("LOCAL_USER"),
        )

    @property
    def trusted_proxy_hops(self) -> int:
        """Proxies in front of the gate that append to X-Forwarded-For: the load balancer (its
        entry, the last one, is the address it saw), or none for a local identity on loopback."""
        return 0 if self.local_user else 1

    def with_local_user(self, email: str, admin: bool) -> GateSettings:
        admins = self.admin_emails | {email.lower()} if admin else self.admin_emails
        return replace(self, local_user=email, admin_emails=admins)

    def check(self, host: str) -> None:
        """Local identities only on a loopback address; otherwise a load balancer to trust."""
        if self.local_user:
            if not _is_loopback(host) and not self.local_on_any_interface:
                raise ConfigError(
                    f"a local identity ({self.local_user}) is only served on 127.0.0.1, not on "
                    f"{host}: anyone reaching {host} would act as {self.local_user}"
                )
            return
        if not self.alb_arn:
            raise ConfigError(
                "set SAGE_OPS_GATE_ALB_ARN to the UI load balancer's ARN (production), or pass "
                "--local-user EMAIL to serve the UI on 127.0.0.1 as that user"
            )
        if not ALB_ARN.match(self.alb_arn):
            raise ConfigError(f"SAGE_OPS_GATE_ALB_ARN is not an ALB ARN: {self.alb_arn}")


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _lower_set(value: str | None) -> frozenset[str]:
    return frozenset(item.lower() for item in _split(value))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
