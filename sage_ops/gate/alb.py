"""Verifies the identity token an Application Load Balancer forwards after `authenticate-oidc`.

The `x-amzn-oidc-data` header is a JWT signed by the load balancer with ES256. Its header names
the key (`kid`), published at https://public-keys.auth.elb.<region>.amazonaws.com/<kid>, and the
signing load balancer (`signer`, its ARN), and carries `exp`, `iss` and `client`. Its segments are
base64url *with* padding: the signature covers the segments exactly as sent, so they are verified
as they are (PyJWT decodes padded segments) and never re-encoded.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from sage_ops.gate.identity import UNAVAILABLE, IdentityError

HEADER = "x-amzn-oidc-data"
ALGORITHM = "ES256"
# Key ids are UUIDs; anything else never reaches a URL.
KID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
MAX_KEYS = 64  # the load balancer rotates keys rarely; this only bounds memory


def key_url_base(alb_arn: str) -> str:
    """The regional key server of the load balancer's region (taken from its ARN)."""
    region = alb_arn.split(":")[3]
    return f"https://public-keys.auth.elb.{region}.amazonaws.com"


class PublicKeys:
    """The load balancer's signing keys by key id: fetched once, then kept."""

    def __init__(self, base_url: str, timeout_s: float = 5.0, retry_after_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()

    def cached(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self._keys.get(kid)

    def fetch(self, kid: str) -> ec.EllipticCurvePublicKey:
        """Blocking: call it off the event loop. A failed key id is not retried for a while, so a
        flood of tokens with made-up key ids cannot turn into a flood of fetches."""
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            failed_at = self._failed.get(kid)
            if failed_at is not None and time.monotonic() - failed_at < self.retry_after_s:
                raise IdentityError(f"the load balancer's key {kid} is unavailable", UNAVAILABLE)
            try:
                key = self._download(kid)
            except (OSError, ValueError) as exc:
                self._failed[kid] = time.monotonic()
                raise IdentityError(
                    f"could not fetch the load balancer's key {kid}: {exc}", UNAVAILABLE
                ) from exc
            if len(self._keys) >= MAX_KEYS:
                self._keys.pop(next(iter(self._keys)))
            self._keys[kid] = key
            return key

    def _download(self, kid: str) -> ec.EllipticCurvePublicKey:
        url = f"{self.base_url}/{kid}"
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"not an http(s) key URL: {url}")
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310
            key = load_pem_public_key(response.read(16_384))
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ValueError("not a P-256 public key")
        return key


class AlbVerifier:
    """Checks one token: algorithm, signer, key id, signature, expiry, issuer and client."""

    def __init__(
        self,
        alb_arn: str,
        keys: PublicKeys,
        issuer: str | None = None,
        client_id: str | None = None,
        leeway_s: float = 5.0,
    ) -> None:
        self.alb_arn = alb_arn
        self.keys = keys
        self.issuer = issuer
        self.client_id = client_id
        self.leeway_s = leeway_s

    def header(self, token: str) -> Mapping[str, Any]:
        """The token's header once it names this load balancer (checked before any key fetch)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise IdentityError(f"the identity token is malformed: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise IdentityError(f"the identity token is not {ALGORITHM}")
        if header.get("signer") != self.alb_arn:
            raise IdentityError("the identity token was not signed by this UI's load balancer")
        if not KID.match(str(header.get("kid", ""))):
            raise IdentityError("the identity token names no valid key id")
        return header

    def claims(
        self, token: str, header: Mapping[str, Any], key: ec.EllipticCurvePublicKey
    ) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                options={"verify_aud": False},
                leeway=self.leeway_s,
            )
        except jwt.ExpiredSignatureError as exc:
            raise IdentityError("your sign-in has expired; reload the page") from exc
        except jwt.PyJWTError as exc:
            raise IdentityError(f"the identity token is invalid: {exc}") from exc
        self._check_header_claims(header)
        return claims

    def _check_header_claims(self, header: Mapping[str, Any]) -> None:
        try:
            expires = float(header["exp"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IdentityError("the identity token has no expiry") from exc
        if expires + self.leeway_s < time.time():
            raise IdentityError("your sign-in has expired; reload the page")
        if self.issuer and header.get("iss") != self.issuer:
            raise IdentityError("the identity token comes from another identity provider")
        if self.client_id and header.get("client") != self.client_id:
            raise IdentityError("the identity token was issued to another client")
