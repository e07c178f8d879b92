"""The optional LLM summary against a local HTTP endpoint speaking the Messages API: used when
it answers, a note (never a failure) when it errs, crawls or has no key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sage_ops.incidents.reports.llm_summary import llm_summary

REPLY = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "The evidence supports pool exhaustion."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 50, "output_tokens": 9},
}


@contextmanager
def messages_api(status: int = 200, delay_s: float = 0.0) -> Iterator[tuple[str, list[dict]]]:
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers.get("x-api-key") or self.headers.get("authorization", "")
            seen.append({"path": self.path, "key": key.removeprefix("Bearer "), "body": body})
            time.sleep(delay_s)
            payload = json.dumps(
                REPLY
                if status == 200
                else {"type": "error", "error": {"type": "api_error", "message": "overloaded"}}
            ).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_summary_from_the_endpoint():
    with messages_api() as (url, seen):
        outcome = llm_summary("facts: 12 x FATAL sorry, too many clients", "sk-test", base_url=url)
    assert outcome.text == "The evidence supports pool exhaustion."
    assert outcome.note == "LLM summary by claude-sonnet-4-6"
    [request] = seen
    assert request["path"] == "/v1/messages" and request["key"] == "sk-test"
    assert request["body"]["messages"][0]["content"].startswith("facts: 12 x FATAL")


def test_failing_endpoint_is_a_note():
    with messages_api(status=500) as (url, seen):
        outcome = llm_summary("facts", "sk-test", base_url=url)
    assert outcome.text is None and outcome.note == "no LLM summary: HTTP 500 api_error: overloaded"
    assert len(seen) == 1  # no retries: the triage does not wait for them


def test_slow_endpoint_is_cut_by_the_timeout():
    with messages_api(delay_s=3) as (url, _):
        started = time.monotonic()
        outcome = llm_summary("facts", "sk-test", base_url=url, timeout_s=0.5)
        elapsed = time.monotonic() - started
    assert outcome.text is None and "Timeout" in outcome.note
    assert elapsed < 2.5


def test_without_a_key_nothing_is_called():
    assert llm_summary("facts", None).note == "no LLM summary: ANTHROPIC_API_KEY is not set"
