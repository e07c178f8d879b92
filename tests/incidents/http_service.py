"""A real HTTP service on 127.0.0.1 whose health endpoint we can break: 200s, 500s or slow.

Stands in for the deployed backend's /health in probe tests (http.server in a thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    status: int = 200
    delay_s: float = 0.0
    hits: list[str] = field(default_factory=list)


@contextmanager
def http_service(behaviour: Behaviour | None = None) -> Iterator[tuple[str, Behaviour]]:
    state = behaviour or Behaviour()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            time.sleep(state.delay_s)
            body = b'{"status":"ok"}' if state.status < 500 else b'{"error":"boom"}'
            try:
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the probe gave up (timeout test): nothing to answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", state
    finally:
        server.shutdown()
        server.server_close()
