"""Reading GraphQL requests the way dagster-webserver does, and finding every mutation in them."""

from __future__ import annotations

import asyncio
import json

import pytest

from sage_ops.gate.audit import AuditLog
from sage_ops.gate.authenticators import LocalAuthenticator
from sage_ops.gate.catalog import Catalog
from sage_ops.gate.identity import local
from sage_ops.gate.launch_tags import LAUNCHED_BY, tag_launches
from sage_ops.gate.middleware import Gate
from sage_ops.gate.mutations import BadRequest, GraphQLRequest, mutations, read_request
from sage_ops.gate.policy import Policy


def test_mutations_through_fragments_aliases_and_several_operations() -> None:
    query = """
    query Q { version }
    mutation A { ...M  x: terminateRun(runId: "r") { __typename } }
    mutation B { ... on Mutation { launchRun(executionParams: $p) { __typename } } }
    fragment M on Mutation { wipeAssets(assetPartitionRanges: []) { __typename } }
    """
    found = mutations(GraphQLRequest(query, {}, "Q"))
    assert [(m.name, m.response_key) for m in found] == [
        ("wipeAssets", "wipeAssets"),
        ("terminateRun", "x"),
        ("launchRun", "launchRun"),
    ]
    assert mutations(GraphQLRequest("{ runsOrError { __typename } }", {}, None)) == []
    assert mutations(GraphQLRequest("mutation {", {}, None)) == []  # unparsable: never executed


def test_requests_are_read_like_dagster_webserver_reads_them() -> None:
    body = json.dumps({"query": "mutation { setNuxSeen }", "variables": '{"a": 1}'}).encode()
    request = read_request("POST", "application/json", b"", body)
    assert request is not None and request.variables == {"a": 1}
    request = read_request("POST", "application/graphql", b"", b"mutation { setNuxSeen }")
    assert request is not None and request.query == "mutation { setNuxSeen }"
    # Any other content type: Dagster reads the query string, so the gate does too.
    request = read_request("POST", "text/plain", b"query=mutation+%7B+setNuxSeen+%7D", b"{}")
    assert request is not None and request.query == "mutation { setNuxSeen }"
    assert read_request("GET", "", b"", b"") is None  # GraphiQL's page
    with pytest.raises(BadRequest, match="no batches"):
        read_request("POST", "application/json", b"", b"[{}]")


def test_tags_are_written_into_every_launch_of_a_request() -> None:
    query = """mutation($list: [ExecutionParams!]!, $b: LaunchBackfillParams!,
      $r: ReexecutionParams = {parentRunId: "p", strategy: ALL_STEPS}) {
      launchMultipleRuns(executionParamsList: $list) { __typename }
      launchPartitionBackfill(backfillParams: $b) { __typename }
      launchRunReexecution(reexecutionParams: $r) { __typename } }"""
    forged = {"key": LAUNCHED_BY, "value": "x@y"}
    request = GraphQLRequest(
        query,
        {"list": [{"executionMetadata": {"tags": [forged]}}, {}], "b": {"tags": None}},
        None,
    )
    tagged = tag_launches(request, mutations(request), "ana@sage.test")
    mine = [{"key": LAUNCHED_BY, "value": "ana@sage.test"}]
    assert [p["executionMetadata"]["tags"] for p in tagged.variables["list"]] == [mine, mine]
    assert tagged.variables["b"]["tags"] == mine
    assert tagged.variables["r"] == {"parentRunId": "p", "strategy": "ALL_STEPS", "extraTags": mine}
    assert request.variables["list"][0]["executionMetadata"]["tags"] == [forged]  # a copy


MUTATION_FRAME = json.dumps({"type": "start", "payload": {"query": "mutation { setNuxSeen }"}})


@pytest.mark.parametrize(
    "frame",
    [
        {"text": MUTATION_FRAME},
        {"text": MUTATION_FRAME.replace("mutation", "\\u006dutation")},  # JSON-escaped
        {"bytes": MUTATION_FRAME.encode()},  # a binary frame
    ],
    ids=["text", "escaped", "binary"],
)
def test_a_mutation_over_the_websocket_closes_it_and_is_audited(tmp_path, frame) -> None:
    audit = tmp_path / "audit.jsonl"
    received = []

    async def app(scope, receive, send) -> None:
        received.append(await receive())
        received.append(await receive())

    gate = Gate(
        app,
        LocalAuthenticator(local("ana@sage.test")),
        Policy([], [], Catalog),
        AuditLog(str(audit)),
        None,  # type: ignore[arg-type]
    )
    messages = [
        {
            "type": "websocket.receive",
            "text": json.dumps({"type": "start", "payload": {"query": "subscription { x }"}}),
        },
        {"type": "websocket.receive", **frame},
    ]

    async def receive():
        return messages.pop(0)

    async def send(message) -> None:
        pass

    asyncio.run(gate({"type": "websocket", "path": "/graphql", "headers": []}, receive, send))
    assert received[0]["type"] == "websocket.receive"
    assert received[1] == {"type": "websocket.disconnect", "code": 1008}
    line = json.loads(audit.read_text())
    assert (line["who"], line["action"], line["decision"]) == (
        "ana@sage.test",
        "websocket mutation",
        "refused",
    )


@pytest.mark.parametrize(
    ("hops", "forwarded", "client"),
    [
        (1, [b"6.6.6.6, 10.8.0.12"], "10.8.0.12"),  # the caller wrote 6.6.6.6, the ALB appended
        (1, [b"6.6.6.6", b"10.8.0.12"], "10.8.0.12"),  # as two headers: still the last entry
        (1, [], "10.8.0.1"),  # no proxy header: the peer
        (0, [b"6.6.6.6"], "10.8.0.1"),  # no trusted proxy: the header is the caller's
    ],
)
def test_the_audit_client_is_what_the_trusted_proxy_saw(
    tmp_path, hops: int, forwarded: list[bytes], client: str
) -> None:
    gate = Gate(
        None,  # type: ignore[arg-type]
        LocalAuthenticator(local("ana@sage.test")),
        Policy([], [], Catalog),
        AuditLog(str(tmp_path / "audit.jsonl")),
        None,  # type: ignore[arg-type]
        trusted_proxy_hops=hops,
    )
    headers = [(b"x-forwarded-for", value) for value in forwarded]
    assert gate._client({"type": "http", "headers": headers, "client": ("10.8.0.1", 5)}) == client
