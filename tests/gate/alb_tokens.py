"""Identity tokens in the load balancer's format, signed with a locally generated ES256 key, and
a key server that publishes the public key the way the regional ELB key server does (PEM at
<base>/<kid>)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ALB_ARN = (
    "arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/app/sage-ui/50dc6c495c0c9188"
)
OTHER_ALB_ARN = (
    "arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/app/other/1234abcd"
)
ISSUER = "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_example"
CLIENT_ID = "sage-ops-ui-client"


def b64(data: bytes) -> str:
    """base64url *with* padding, as the load balancer writes its token segments."""
    return base64.urlsafe_b64encode(data).decode()


@dataclass
class AlbSigner:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    kid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(
        self,
        email: str,
        groups: list[str] | None = None,
        expires_in: float = 120,
        signer: str = ALB_ARN,
        **claims: Any,
    ) -> str:
        exp = int(time.time() + expires_in)
        header = {
            "typ": "JWT",
            "kid": self.kid,
            "alg": "ES256",
            "iss": ISSUER,
            "client": CLIENT_ID,
            "signer": signer,
            "exp": exp,
        }
        payload = {"sub": str(uuid.uuid5(uuid.NAMESPACE_URL, email)), "email": email}
        payload |= {"email_verified": "true", "exp": exp, "iss": ISSUER, **claims}
        if groups is not None:
            payload["groups"] = groups
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass
class KeyServer:
    url: str
    requests: list[str]


@contextlib.contextmanager
def key_server(*signers: AlbSigner) -> Iterator[KeyServer]:
    keys = {f"/{s.kid}": s.public_pem() for s in signers}
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = keys.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield KeyServer(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
