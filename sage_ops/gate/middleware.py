"""The gate as ASGI middleware around dagster-webserver's Starlette app.

Every request needs an identity (except the load balancer's health check). Reads pass through
untouched; each mutation (GraphQL, or the REST endpoints that record asset events) is judged by
the policy, audited, and either refused with an answer the UI shows or forwarded with the
launcher's tag written into it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sage_ops.gate import alb
from sage_ops.gate.audit import AuditEvent, AuditLog
from sage_ops.gate.authenticators import Authenticator
from sage_ops.gate.identity import Identity, IdentityError
from sage_ops.gate.launch_tags import UntaggableLaunch, tag_launches
from sage_ops.gate.mutations import BadRequest, GraphQLRequest, Mutation, mutations, read_request
from sage_ops.gate.policy import HOUSEKEEPING_MUTATIONS, REPORT_PATHS, Decision, Policy
from sage_ops.gate.refusals import graphql_refusal, page
from sage_ops.gate.targets import Lookup, Target, targets

HEALTH_PATH = "/_gate/health"  # the load balancer's target health check: no identity, no data
MAX_BODY = 16 * 1024 * 1024
# The load balancer sends each once; a second copy can only come from the caller.
IDENTITY_HEADERS = (alb.HEADER, "x-amzn-oidc-accesstoken", "x-amzn-oidc-identity")


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        policy: Policy,
        audit: AuditLog,
        lookup: Lookup,
        trusted_proxy_hops: int = 1,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.policy = policy
        self.audit = audit
        self.lookup = lookup
        self.trusted_proxy_hops = trusted_proxy_hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH:
            await _respond(send, 200, b'{"status":"ok"}', "application/json")
            return
        headers = Headers(scope=scope)
        duplicated = _duplicated_identity(headers)
        if duplicated:
            reason = f"the request carries {duplicated} more than once"
            self.audit.write(self._refused(None, "request", reason, scope))
            await _deny(scope, receive, send, 400, f"Refused by the sage_ops gate: {reason}.", "")
            return
        try:
            identity = await self.authenticator.identify(headers)
        except IdentityError as exc:
            await _deny(scope, receive, send, exc.status, str(exc), headers.get("accept", ""))
            return
        if scope["type"] == "websocket":
            await self.app(scope, self._subscriptions_only(receive, identity, scope), send)
            return
        path = scope["path"].rstrip("/")
        if path.endswith("/graphql"):
            await self._graphql(scope, receive, send, identity)
        elif scope["method"] == "POST" and any(p in scope["path"] for p in REPORT_PATHS):
            await self._report(scope, receive, send, identity)
        else:
            await self.app(scope, receive, send)

    async def _graphql(
        self, scope: Scope, receive: Receive, send: Send, identity: Identity
    ) -> None:
        body = await _read_body(receive)
        if body is None:
            await _respond(send, 413, b"request body too large", "text/plain")
            return
        headers = Headers(scope=scope)
        try:
            request = read_request(
                scope["method"], headers.get("content-type", ""), scope["query_string"], body
            )
        except BadRequest as exc:
            self.audit.write(self._refused(identity, "unreadable GraphQL request", str(exc), scope))
            await _respond(send, 400, str(exc).encode(), "text/plain")
            return
        found = mutations(request) if request else []
        if request is None or not found:
            await self.app(scope, _replay(body, receive), send)
            return
        # Lookups of runs and backfills hit the instance's database: off the event loop.
        verdict = await anyio.to_thread.run_sync(
            self._judge, identity, request, found, self._client(scope)
        )
        if isinstance(verdict, dict):
            await _respond(send, 200, json.dumps(verdict).encode(), "application/json")
            return
        await self.app(_as_json_post(scope, verdict.body()), _replay(verdict.body(), receive), send)

    def _judge(
        self, identity: Identity, request: GraphQLRequest, found: list[Mutation], client: str
    ) -> GraphQLRequest | dict[str, Any]:
        """The request to forward (tagged), or the refusal to answer with; audited either way."""
        events = [
            self._event(identity, m.name, targets(m, request, self.lookup), client)
            for m in found
            if m.name not in HOUSEKEEPING_MUTATIONS
        ]
        refusal = next((e.decision.message for e in events if not e.decision.allowed), "")
        tagged = request
        if not refusal:
            try:
                tagged = tag_launches(request, found, identity.email)
            except UntaggableLaunch as exc:
                refusal = f"Refused by the sage_ops gate: {exc}."
        if refusal:
            # One refusal refuses the whole request: nothing in it is executed.
            events = [replace(e, decision=replace(e.decision, allowed=False)) for e in events]
        for event in events:
            self.audit.write(event)
        return graphql_refusal(found, refusal) if refusal else tagged

    def _event(
        self, identity: Identity, action: str, found: list[Target], client: str
    ) -> AuditEvent:
        decision = self.policy.decide(identity, action, found)
        return AuditEvent(identity, action, tuple(found), decision, client)

    def _refused(
        self, identity: Identity | None, action: str, reason: str, scope: Scope
    ) -> AuditEvent:
        return AuditEvent(
            identity, action, (), Decision(False, False, reason, ""), self._client(scope)
        )

    def _client(self, scope: Scope) -> str:
        """The address the outermost trusted proxy saw: the entry it appended to
        X-Forwarded-For (entries before it are the caller's to write), else the peer."""
        forwarded = [
            entry.strip()
            for value in Headers(scope=scope).getlist("x-forwarded-for")
            for entry in value.split(",")
        ]
        if self.trusted_proxy_hops and len(forwarded) >= self.trusted_proxy_hops:
            return forwarded[-self.trusted_proxy_hops]
        client = scope.get("client")
        return str(client[0]) if client else ""

    async def _report(self, scope: Scope, receive: Receive, send: Send, identity: Identity) -> None:
        asset = scope["path"].split("/report_asset_", 1)[1].split("/", 1)[-1]
        event = self._event(
            identity, f"POST {scope['path']}", [Target(assets=(asset,))], self._client(scope)
        )
        self.audit.write(event)
        if event.decision.allowed:
            await self.app(scope, receive, send)
        else:
            await _respond(send, 403, event.decision.message.encode(), "text/plain")

    def _subscriptions_only(self, receive: Receive, identity: Identity, scope: Scope) -> Receive:
        """The UI's websocket carries subscriptions only; a mutation sent over it closes the
        socket (Dagster would not execute it either: it runs socket messages as subscriptions)."""

        async def guarded() -> Message:
            message = await receive()
            frame = message.get("text") or message.get("bytes")
            if message["type"] == "websocket.receive" and _socket_mutation(frame):
                reason = "a mutation over the websocket"
                self.audit.write(self._refused(identity, "websocket mutation", reason, scope))
                return {"type": "websocket.disconnect", "code": 1008}
            return message

        return guarded


def _socket_mutation(frame: str | bytes | None) -> bool:
    """Judged once decoded: a JSON escape (\\u006dutation) hides the word in the raw text."""
    if not frame:
        return False
    try:
        payload = json.loads(frame).get("payload") or {}
        request = GraphQLRequest(str(payload.get("query", "")), {}, None)
    except (ValueError, AttributeError):
        return False
    return bool(mutations(request))


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY:
            return None
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then the client's own messages (so a disconnect is still seen)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _as_json_post(scope: Scope, body: bytes) -> Scope:
    """The rewritten request as dagster-webserver reads it most plainly: POST, JSON body."""
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {**scope, "method": "POST", "query_string": b"", "headers": headers}


def _duplicated_identity(headers: Headers) -> str:
    return next((name for name in IDENTITY_HEADERS if len(headers.getlist(name)) > 1), "")


async def _deny(
    scope: Scope, receive: Receive, send: Send, status: int, message: str, accept: str
) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect; closing before accepting refuses the handshake
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body, content_type = page(status, message, accept)
    await _respond(send, status, body, content_type)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
