"""How a request's identity is established: the load balancer's verified token in production,
the configured local user on 127.0.0.1. Both hand the same Identity to the same gate."""

from __future__ import annotations

import time
from collections import OrderedDict
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
    CACHE_SIZE = 1024

    def __init__(
        self, verifier: alb.AlbVerifier, groups_claim: str, allowed_domains: frozenset[str]
    ) -> None:
        self.verifier = verifier
        self.groups_claim = groups_claim
        self.allowed_domains = allowed_domains
        # Tokens already verified, byte for byte, until their expiry: the UI polls many times a
        # second with the same session, and an ES256 verification costs far more than a lookup.
        self._verified: OrderedDict[str, tuple[Identity, float]] = OrderedDict()

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        token = headers.get(alb.HEADER)
        if not token:
            raise IdentityError(
                "no sign-in: this request did not come through the UI's load balancer"
            )
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        identity, expires = await self._verify(token)
        self._verified[token] = (identity, expires)
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    async def _verify(self, token: str) -> tuple[Identity, float]:
        header = self.verifier.header(token)
        kid = str(header["kid"])
        # Keys are fetched once per key id, off the event loop; afterwards this is a dict lookup.
        key = self.verifier.keys.cached(kid)
        if key is None:
            key = await anyio.to_thread.run_sync(self.verifier.keys.fetch, kid)
        identity = from_claims(self.verifier.claims(token, header, key), self.groups_claim)
        check_domain(identity, self.allowed_domains)
        return identity, float(header["exp"])
