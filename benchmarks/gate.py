"""Per-request latency the sage_ops gate adds in front of dagster-webserver.

One invocation, one machine, one dagster-webserver app (sage_ops loaded in-process, a temporary
SQLite instance) served twice by uvicorn on 127.0.0.1: bare, and wrapped in the gate in its
production mode (every request carries a load-balancer token, ES256-verified against a key from a
local key server standing in for the regional ELB one). Every gated request carries a token the
gate has not seen (the worst case: a full verification each time). Requests alternate bare/gated
over keep-alive connections, so both see the same machine load. A second table times the gate
alone: the middleware around an app that answers at once, called in-process (no network).

    .venv/bin/python -m benchmarks.gate [--requests 300] [--json benchmarks/results/gate.json]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sage_ops.gate.alb import AlbVerifier, PublicKeys
from sage_ops.gate.audit import AuditLog
from sage_ops.gate.authenticators import AlbAuthenticator, LocalAuthenticator
from sage_ops.gate.identity import local
from sage_ops.gate.middleware import Gate
from sage_ops.gate.policy import Policy
from sage_ops.gate.runs import InstanceLookup
from sage_ops.gate.server import webserver_app
from tests.gate.alb_tokens import ALB_ARN, CLIENT_ID, ISSUER, AlbSigner, key_server
from tests.gate.stack import dagster_instance, execution_params, in_process_target, serving

RUNS_QUERY = """query { runsOrError(limit: 20) { __typename ... on Runs { results {
  runId status jobName tags { key value } } } } }"""
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def requests() -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """What the UI sends, by kind: (method, path, GraphQL body)."""
    params = execution_params("nightly_backup")
    return {
        "GraphQL query (version)": ("POST", "/graphql", {"query": "{ version }"}),
        "GraphQL query (20 runs)": ("POST", "/graphql", {"query": RUNS_QUERY}),
        "page (/runs HTML)": ("GET", "/runs", None),
        "launchRun nightly_backup": (
            "POST",
            "/graphql",
            {"query": LAUNCH, "variables": {"p": params}},
        ),
    }


def timed(
    conn: http.client.HTTPConnection, method: str, path: str, body: Any, token: str | None
) -> float:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["x-amzn-oidc-data"] = token
    data = json.dumps(body).encode() if body is not None else None
    started = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200 or b"PythonError" in payload:
        raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
    return elapsed


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def end_to_end(rounds: int, home: Path) -> list[dict[str, Any]]:
    signer = AlbSigner()
    with (
        key_server(signer) as keys,
        dagster_instance(home) as instance,
        webserver_app(instance, in_process_target()) as webserver,
    ):
        app = webserver.app
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url), ISSUER, CLIENT_ID)
        gate = Gate(
            app,
            AlbAuthenticator(verifier, "groups", frozenset()),
            Policy([], [], webserver.catalog),
            AuditLog(str(home / "audit.jsonl")),
            InstanceLookup(instance),
        )
        with serving(app) as bare_url, serving(gate) as gated_url:
            bare = http.client.HTTPConnection(bare_url.removeprefix("http://"), timeout=60)
            gated = http.client.HTTPConnection(gated_url.removeprefix("http://"), timeout=60)
            return [
                _measure(kind, request, rounds, bare, gated, signer)
                for kind, request in requests().items()
            ]


def _measure(
    kind: str,
    request: tuple[str, str, dict[str, Any] | None],
    rounds: int,
    bare: http.client.HTTPConnection,
    gated: http.client.HTTPConnection,
    signer: AlbSigner,
) -> dict[str, Any]:
    method, path, body = request
    n = rounds if not kind.startswith("launch") else max(rounds // 2, 20)
    tokens = [signer.token(f"bench{i}@sage.test", expires_in=3600) for i in range(n + 5)]
    for token in tokens[:5]:  # warm-up: code paths, caches, the key fetch
        timed(bare, method, path, body, None)
        timed(gated, method, path, body, token)
    times: dict[str, list[float]] = {"bare": [], "gated": []}
    for i, token in enumerate(tokens[5:]):
        order = [("bare", bare, None), ("gated", gated, token)]
        for name, conn, tok in order if i % 2 else order[::-1]:
            times[name].append(timed(conn, method, path, body, tok))
    return _row(kind, n, times["bare"], times["gated"])


def _row(kind: str, n: int, bare: list[float], gated: list[float]) -> dict[str, Any]:
    ms = 1000
    return {
        "request": kind,
        "n": n,
        "bare_p50_ms": round(p(bare, 50) * ms, 2),
        "bare_p95_ms": round(p(bare, 95) * ms, 2),
        "gated_p50_ms": round(p(gated, 50) * ms, 2),
        "gated_p95_ms": round(p(gated, 95) * ms, 2),
        "p95_overhead_ms": round((p(gated, 95) - p(bare, 95)) * ms, 2),
    }


def gate_alone(rounds: int, home: Path) -> list[dict[str, Any]]:
    """The middleware's own cost per request: around an app that answers at once."""
    signer = AlbSigner()
    n = rounds * 10
    audit = AuditLog(str(home / "alone.jsonl"))
    with (
        dagster_instance(home / "catalog") as instance,
        webserver_app(instance, in_process_target()) as webserver,
    ):
        catalog = webserver.catalog()  # the definitions as the policy reads them
    policy = Policy([], [], lambda: catalog)
    body = json.dumps({"query": RUNS_QUERY}).encode()
    fresh = [signer.token(f"b{i}@sage.test", expires_in=3600).encode() for i in range(n + 50)]
    seen = [fresh[0]] * (n + 50)
    with key_server(signer) as keys:
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url), ISSUER, CLIENT_ID)

        def alb_gate() -> Gate:
            authenticator = AlbAuthenticator(verifier, "groups", frozenset())
            return Gate(_instant, authenticator, policy, audit, None)  # type: ignore[arg-type]

        local_gate = Gate(
            _instant,
            LocalAuthenticator(local("b@localhost")),
            policy,
            audit,
            None,  # type: ignore[arg-type]
        )
        launch = json.dumps(
            {"query": LAUNCH, "variables": {"p": execution_params("nightly_backup")}}
        )
        cases: list[tuple[str, Any, list[bytes | None], bytes]] = [
            ("bare app", _instant, [None] * (n + 50), body),
            ("gate, local identity", local_gate, [None] * (n + 50), body),
            ("gate, ALB token seen before (cached)", alb_gate(), list(seen), body),
            ("gate, new ALB token each request (ES256 verify)", alb_gate(), list(fresh), body),
            ("gate, launchRun: judge, tag, audit line", local_gate, [None] * 550, launch.encode()),
        ]
        rows = []
        for name, app, tokens, request_body in cases:
            samples = asyncio.run(_call_many(app, tokens, request_body))
            rows.append(
                {
                    "app": name,
                    "n": len(samples),
                    "p50_us": round(p(samples, 50) * 1e6, 1),
                    "p95_us": round(p(samples, 95) * 1e6, 1),
                }
            )
    return rows


async def _instant(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _call_many(app: Any, tokens: list[bytes | None], body: bytes) -> list[float]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(_: Any) -> None:
        pass

    samples = []
    for i, token in enumerate(tokens):
        headers = [(b"content-type", b"application/json")]
        headers += [(b"x-amzn-oidc-data", token)] if token else []
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1),
        }
        started = time.perf_counter()
        await app(scope, receive, send)
        if i >= 50:  # warm-up (the first ALB call fetches the key)
            samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per kind and server")
    parser.add_argument("--json", default="benchmarks/results/gate.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sage_gate_bench_") as tmp:
        alone = gate_alone(args.requests, Path(tmp))
        rows = end_to_end(args.requests, Path(tmp) / "dagster")
    print("\nend to end (uvicorn on 127.0.0.1, alternating bare / gated):")
    print("| request | n | bare p50 | bare p95 | gated p50 | gated p95 | p95 overhead | (ms) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['request']} | {r['n']} | {r['bare_p50_ms']} | {r['bare_p95_ms']} | "
            f"{r['gated_p50_ms']} | {r['gated_p95_ms']} | {r['p95_overhead_ms']} | |"
        )
    print("\nthe middleware alone (in-process, the app behind it answers at once):")
    print("| app | n | p50 us | p95 us |\n| --- | --- | --- | --- |")
    for r in alone:
        print(f"| {r['app']} | {r['n']} | {r['p50_us']} | {r['p95_us']} |")
    result = {"machine": platform.platform(), "end_to_end": rows, "middleware_alone": alone}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    main()
