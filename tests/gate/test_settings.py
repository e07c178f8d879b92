"""The gate's configuration: a local identity only on loopback, a load balancer to trust otherwise."""

from __future__ import annotations

import pytest

from sage_ops.cli import main
from sage_ops.errors import ConfigError
from sage_ops.gate.settings import GateSettings
from tests.gate.alb_tokens import ALB_ARN


def test_settings_from_the_environment() -> None:
    settings = GateSettings.from_env(
        {
            "SAGE_OPS_GATE_ALB_ARN": ALB_ARN,
            "SAGE_OPS_GATE_ALLOWED_DOMAINS": "Sage.test, sage.ai",
            "SAGE_OPS_GATE_ADMIN_EMAILS": "Root@Sage.test",
            "SAGE_OPS_GATE_ADMIN_GROUPS": "sage-ops-admins,sre",
        }
    )
    assert settings.allowed_domains == {"sage.test", "sage.ai"}
    assert settings.admin_emails == {"root@sage.test"}
    assert settings.admin_groups == {"sage-ops-admins", "sre"}
    assert (settings.groups_claim, settings.audit_log) == ("groups", "-")
    settings.check("0.0.0.0")  # behind the load balancer


def test_a_local_identity_is_served_on_loopback_only() -> None:
    local = GateSettings().with_local_user("ana@localhost", admin=True)
    assert local.admin_emails == {"ana@localhost"}
    local.check("127.0.0.1")
    with pytest.raises(ConfigError, match="only served on 127.0.0.1"):
        local.check("0.0.0.0")


def test_without_a_local_user_a_load_balancer_arn_is_required() -> None:
    with pytest.raises(ConfigError, match="SAGE_OPS_GATE_ALB_ARN"):
        GateSettings().check("0.0.0.0")
    with pytest.raises(ConfigError, match="not an ALB ARN"):
        GateSettings(alb_arn="arn:aws:iam::111122223333:role/x").check("0.0.0.0")


def test_the_cli_refuses_a_local_identity_on_every_interface(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["gate", "--local-user", "ana@localhost", "--host", "0.0.0.0"]) == 1
    assert "only served on 127.0.0.1" in capsys.readouterr().err


def test_a_container_may_bind_every_interface_for_its_local_user_when_told() -> None:
    settings = GateSettings(local_user="dev@localhost", local_on_any_interface=True)
    settings.check("0.0.0.0")


def test_the_load_balancer_is_the_one_trusted_proxy_and_a_local_user_has_none() -> None:
    assert GateSettings(alb_arn=ALB_ARN).trusted_proxy_hops == 1
    assert GateSettings(local_user="dev@localhost").trusted_proxy_hops == 0
