"""Who is asking: the identity attached to a request, from the identity provider's claims (as the
load balancer forwards them) or from the configured local user."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

UNAUTHENTICATED = 401
FORBIDDEN = 403
UNAVAILABLE = 503


@dataclass(frozen=True)
class Identity:
    email: str
    subject: str
    groups: frozenset[str]
    via: str  # "alb" (verified load-balancer token) or "local" (configured local user)


class IdentityError(Exception):
    """No acceptable identity. `status`: 401 none or invalid, 403 valid but not allowed in,
    503 the identity could not be checked right now (key server unreachable)."""

    def __init__(self, message: str, status: int = UNAUTHENTICATED) -> None:
        super().__init__(message)
        self.status = status


def from_claims(claims: Mapping[str, Any], groups_claim: str) -> Identity:
    email = str(claims.get("email") or "").strip().lower()
    if not email or "@" not in email:
        raise IdentityError("the identity provider sent no email address for you", FORBIDDEN)
    # ALB forwards the provider's user-info claims as they are; some send booleans as strings.
    if str(claims.get("email_verified", "true")).lower() == "false":
        raise IdentityError(f"{email} is not verified at the identity provider", FORBIDDEN)
    return Identity(
        email=email,
        subject=str(claims.get("sub") or email),
        groups=parse_groups(claims.get(groups_claim)),
        via="alb",
    )


def local(email: str, groups: Iterable[str] = ()) -> Identity:
    return Identity(
        email=email.strip().lower(), subject=email, groups=frozenset(groups), via="local"
    )


def parse_groups(value: Any) -> frozenset[str]:
    """A groups claim as a list, or one string separated by commas or spaces."""
    if value is None:
        return frozenset()
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else [str(v) for v in value]
    return frozenset(item for item in items if item)


def check_domain(identity: Identity, allowed_domains: frozenset[str]) -> None:
    domain = identity.email.rsplit("@", 1)[-1]
    if allowed_domains and domain not in allowed_domains:
        raise IdentityError(
            f"{identity.email} is not in an allowed domain ({', '.join(sorted(allowed_domains))})",
            FORBIDDEN,
        )
