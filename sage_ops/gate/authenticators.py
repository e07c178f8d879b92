"""How a request's identity is established: the load balancer's verified token in production,
the configured local user on 127.0.0.1. Both hand the same Identity to the same gate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import anyio.to_thread

from sage_ops.gate import alb
from sage_ops.gate.identity import Identity, IdentityError, check_domain, from_claims


class Authenticator(Protocol):
    async def identify(self, headers: Mapping[str, str]) -> Identity: ...


class LocalAuthenticator:
    """Every request is the configured local user: the gate runs its whole code path locally."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        return self.identity


class AlbAuthenticator:
    def __init__(
        self, verifier: alb.AlbVerifier, groups_claim: str, allowed_domains: frozenset[str]
    ) -> None:
        self.verifier = verifier
        self.groups_claim = groups_claim
        self.allowed_domains = allowed_domains

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        token = headers.get(alb.HEADER)
        if not token:
            raise IdentityError(
                "no sign-in: this request did not come through the UI's load balancer"
            )
        header = self.verifier.header(token)
        kid = str(header["kid"])
        # Keys are fetched once per key id, off the event loop; afterwards this is a dict lookup.
        key = self.verifier.keys.cached(kid)
        if key is None:
            key = await anyio.to_thread.run_sync(self.verifier.keys.fetch, kid)
        identity = from_claims(self.verifier.claims(token, header, key), self.groups_claim)
        check_domain(identity, self.allowed_domains)
        return identity
