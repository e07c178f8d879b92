"""The load balancer's token format: padded base64url segments, ES256, key by id from the key
server (fetched once, failures not retried at once), expiry, signer, issuer and client."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from sage_ops.gate.alb import AlbVerifier, PublicKeys, key_url_base
from sage_ops.gate.authenticators import AlbAuthenticator
from sage_ops.gate.identity import IdentityError, from_claims, parse_groups
from tests.gate.alb_tokens import ALB_ARN, CLIENT_ID, ISSUER, AlbSigner, b64, key_server


def identify(verifier: AlbVerifier, token: str, domains: frozenset[str] = frozenset()):
    return asyncio.run(
        AlbAuthenticator(verifier, "groups", domains).identify({"x-amzn-oidc-data": token})
    )


def test_the_key_server_is_the_load_balancers_region() -> None:
    assert key_url_base(ALB_ARN) == "https://public-keys.auth.elb.us-west-2.amazonaws.com"


def test_padded_segments_verify_as_sent_and_re_encoding_them_breaks_the_signature() -> None:
    signer = AlbSigner()
    token = signer.token("ana@sage.test", groups=["devs"])
    assert any(segment.endswith("=") for segment in token.split(".")), "test token must be padded"
    with key_server(signer) as keys:
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url), ISSUER, CLIENT_ID)
        identity = identify(verifier, token)
        assert (identity.email, identity.groups, identity.via) == ("ana@sage.test", {"devs"}, "alb")
        header, payload, signature = token.split(".")
        # Re-encoding a segment changes the signing input: the signature no longer matches.
        stripped = ".".join([header.rstrip("="), payload.rstrip("="), signature])
        if stripped.split(".")[:2] != token.split(".")[:2]:
            with pytest.raises(IdentityError, match="invalid"):
                identify(verifier, stripped)


def test_wrong_algorithm_issuer_client_or_missing_key_is_refused() -> None:
    signer = AlbSigner()
    with key_server(signer) as keys:
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url), ISSUER, "another-client")
        with pytest.raises(IdentityError, match="another client"):
            identify(verifier, signer.token("ana@sage.test"))
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url), "https://evil.test", None)
        with pytest.raises(IdentityError, match="another identity provider"):
            identify(verifier, signer.token("ana@sage.test"))
        header, payload, signature = signer.token("ana@sage.test").split(".")
        claims = json.loads(base64.urlsafe_b64decode(header)) | {"alg": "HS256"}
        with pytest.raises(IdentityError, match="not ES256"):
            identify(verifier, ".".join([b64(json.dumps(claims).encode()), payload, signature]))
        unknown = AlbSigner()  # its key is not on the key server
        with pytest.raises(IdentityError) as refused:
            identify(AlbVerifier(ALB_ARN, PublicKeys(keys.url)), unknown.token("ana@sage.test"))
        assert refused.value.status == 503


def test_a_failed_key_fetch_is_not_retried_at_once() -> None:
    signer = AlbSigner()
    with key_server() as keys:  # publishes nothing
        cache = PublicKeys(keys.url, retry_after_s=60)
        for _ in range(3):
            with pytest.raises(IdentityError):
                cache.fetch(signer.kid)
        assert keys.requests == [f"/{signer.kid}"]


def test_claims_email_verification_domains_and_groups() -> None:
    with pytest.raises(IdentityError, match="not verified") as unverified:
        from_claims({"email": "ana@sage.test", "email_verified": "false"}, "groups")
    assert unverified.value.status == 403
    with pytest.raises(IdentityError, match="no email"):
        from_claims({"sub": "x"}, "groups")
    assert parse_groups("a, b c") == {"a", "b", "c"} and parse_groups(["a"]) == {"a"}
    signer = AlbSigner()
    with key_server(signer) as keys:
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url))
        with pytest.raises(IdentityError, match="not in an allowed domain"):
            identify(verifier, signer.token("ana@other.test"), frozenset({"sage.test"}))
        role = identify(verifier, signer.token("ana@sage.test", **{"custom:role": "admins"}))
        assert role.groups == frozenset()


def test_a_verified_token_is_remembered_until_its_expiry_only() -> None:
    signer = AlbSigner()
    with key_server(signer) as keys:
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url), leeway_s=0)
        authenticator = AlbAuthenticator(verifier, "groups", frozenset())
        token = signer.token("ana@sage.test", expires_in=1.5)
        headers = {"x-amzn-oidc-data": token}
        first = asyncio.run(authenticator.identify(headers))
        assert asyncio.run(authenticator.identify(headers)) is first  # remembered
        time.sleep(2.1)
        with pytest.raises(IdentityError, match="expired"):
            asyncio.run(authenticator.identify(headers))
