from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from sage_ops.gate.alb import AlbVerifier, PublicKeys
from sage_ops.gate.audit import AuditLog
from sage_ops.gate.authenticators import AlbAuthenticator
from sage_ops.gate.middleware import Gate
from sage_ops.gate.policy import Policy
from sage_ops.gate.runs import InstanceLookup
from sage_ops.gate.server import webserver_app
from tests.gate.alb_tokens import ALB_ARN, CLIENT_ID, ISSUER, AlbSigner, KeyServer, key_server
from tests.gate.stack import dagster_instance, in_process_target, serving

ADMIN_GROUP = "sage-ops-admins"


@dataclass
class GatedUI:
    url: str
    instance: DagsterInstance
    signer: AlbSigner
    keys: KeyServer
    audit_path: Path

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]


@pytest.fixture(scope="module")
def gated_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatedUI]:
    """The real dagster-webserver app for sage_ops behind the gate, trusting a local ES256 key
    published by a local key server in place of the regional ELB one."""
    home = tmp_path_factory.mktemp("dagster_home")
    signer = AlbSigner()
    audit_path = home / "audit" / "gate.jsonl"
    with (
        key_server(signer) as keys,
        dagster_instance(home) as instance,
        webserver_app(instance, in_process_target()) as webserver,
    ):
        verifier = AlbVerifier(ALB_ARN, PublicKeys(keys.url), ISSUER, CLIENT_ID)
        gate = Gate(
            webserver.app,
            AlbAuthenticator(verifier, "groups", frozenset({"sage.test"})),
            Policy(admin_emails=[], admin_groups=[ADMIN_GROUP], catalog=webserver.catalog),
            AuditLog(str(audit_path)),
            InstanceLookup(instance),
        )
        with serving(gate) as url:
            yield GatedUI(url, instance, signer, keys, audit_path)
