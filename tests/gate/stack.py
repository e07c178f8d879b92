"""A real dagster-webserver app serving sage_ops (in-process code location, temporary SQLite
instance with the queued run coordinator: launched runs are recorded and queued, never executed),
wrapped in the gate and served by uvicorn on a free port."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from dagster import DagsterInstance
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from starlette.types import ASGIApp

from tests import pg

REPO = Path(__file__).resolve().parents[2]
LOCATION = "sage_ops"
REPOSITORY = "__repository__"
INSTANCE_YAML = """\
storage:
  sqlite:
    base_dir: {home}/storage
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
telemetry:
  enabled: false
nux:
  enabled: false
"""


@contextlib.contextmanager
def dagster_instance(home: Path) -> Iterator[DagsterInstance]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML.format(home=home))
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


def in_process_target() -> InProcessWorkspaceLoadTarget:
    origin = LoadableTargetOrigin(module_name="sage_ops.definitions", working_directory=str(REPO))
    return InProcessWorkspaceLoadTarget(
        [InProcessCodeLocationOrigin(origin, container_image=None, location_name=LOCATION)]
    )


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """uvicorn in a thread; yields the base URL."""
    port = pg.free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,  # as `sage-ops gate` serves it: the gate reads X-Forwarded-For
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def request(
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def graphql(
    url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"x-amzn-oidc-data": token} if token else {}
    status, text = request(
        f"{url}/graphql", {"query": query, "variables": variables or {}}, headers
    )
    return status, json.loads(text) if text.startswith("{") else {"text": text}


def execution_params(job: str, tags: dict[str, str] | None = None, **extra: Any) -> dict:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job}
    return {
        "selector": selector,
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        **extra,
    }
