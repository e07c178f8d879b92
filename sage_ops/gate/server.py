"""`sage-ops gate`: dagster-webserver's own Starlette app, wrapped in the gate, served by uvicorn
(optionally with a dagster-daemon beside it, for local use)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import uvicorn
from dagster import DagsterInstance
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import (
    GrpcServerTarget,
    WorkspaceFileTarget,
    WorkspaceLoadTarget,
)
from dagster_webserver.app import create_app_from_workspace_process_context
from dagster_webserver.version import __version__
from starlette.applications import Starlette

from sage_ops.gate import alb, identity
from sage_ops.gate.audit import AuditLog
from sage_ops.gate.authenticators import AlbAuthenticator, Authenticator, LocalAuthenticator
from sage_ops.gate.catalog import Catalog, workspace_catalog
from sage_ops.gate.daemon import daemon_beside
from sage_ops.gate.middleware import Gate
from sage_ops.gate.policy import Policy
from sage_ops.gate.runs import InstanceLookup
from sage_ops.gate.settings import GateSettings

# dagster-webserver's own database settings for a long-running server.
DB_STATEMENT_TIMEOUT_MS = 15_000
DB_POOL_RECYCLE_S = 3600
DB_POOL_MAX_OVERFLOW = 20


def load_target(
    workspace: str | None, grpc_host: str | None, grpc_port: int | None
) -> WorkspaceLoadTarget:
    if grpc_host:
        return GrpcServerTarget(host=grpc_host, port=grpc_port, socket=None, location_name=None)
    return WorkspaceFileTarget(paths=[workspace or "workspace.yaml"])


@dataclass(frozen=True)
class Webserver:
    app: Starlette
    catalog: Callable[[], Catalog]  # the definitions it serves, as the policy reads them


def build_gate(webserver: Webserver, settings: GateSettings, instance: DagsterInstance) -> Gate:
    return Gate(
        webserver.app,
        authenticator(settings),
        Policy(settings.admin_emails, settings.admin_groups, webserver.catalog),
        AuditLog(settings.audit_log),
        InstanceLookup(instance),
        settings.trusted_proxy_hops,
    )


def authenticator(settings: GateSettings) -> Authenticator:
    if settings.local_user:
        return LocalAuthenticator(identity.local(settings.local_user))
    assert settings.alb_arn is not None  # GateSettings.check
    keys = alb.PublicKeys(settings.key_url or alb.key_url_base(settings.alb_arn))
    verifier = alb.AlbVerifier(settings.alb_arn, keys, settings.issuer, settings.client_id)
    return AlbAuthenticator(verifier, settings.groups_claim, settings.allowed_domains)


@contextlib.contextmanager
def webserver_app(instance: DagsterInstance, target: WorkspaceLoadTarget) -> Iterator[Webserver]:
    """dagster-webserver's app exactly as its CLI builds it (same instance tuning)."""
    instance.optimize_for_webserver(
        DB_STATEMENT_TIMEOUT_MS, DB_POOL_RECYCLE_S, DB_POOL_MAX_OVERFLOW
    )
    with WorkspaceProcessContext(
        instance, workspace_load_target=target, version=__version__
    ) as context:
        app = create_app_from_workspace_process_context(context, lifespan=_lifespan)
        yield Webserver(app, workspace_catalog(context))


def serve(
    settings: GateSettings, host: str, port: int, target: WorkspaceLoadTarget, daemon: bool
) -> None:
    settings.check(host)
    with contextlib.ExitStack() as stack:
        instance = stack.enter_context(DagsterInstance.get())
        if daemon:
            stack.enter_context(daemon_beside(target, instance))
        webserver = stack.enter_context(webserver_app(instance, target))
        who = settings.local_user or "the load balancer's signed-in users"
        print(f"sage_ops gate: Dagster UI on http://{host}:{port} as {who}", flush=True)
        gate = build_gate(webserver, settings, instance)
        # proxy_headers off: uvicorn would otherwise take the client from X-Forwarded-For for a
        # loopback peer; the gate alone decides which entry a trusted proxy wrote.
        uvicorn.run(gate, host=host, port=port, log_level="warning", proxy_headers=False)


@contextlib.asynccontextmanager
async def _lifespan(_: Starlette) -> AsyncIterator[None]:
    # As dagster-webserver does: Ctrl-C cancels the lifespan task; that is a normal shutdown.
    with contextlib.suppress(asyncio.CancelledError):
        yield
