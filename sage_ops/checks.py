"""What `sage-ops doctor` is made of: one check per capability, each a cheap read-only probe.

A check reads its capability's settings through that capability's own loader (the one the
pipelines use, so doctor and the pipelines cannot disagree) and asks the system behind it one
read-only question. Capabilities register their checks in a `doctor_checks.py` of their own.

Three outcomes: `ok`; `skip` for a capability that is not configured at all, naming the variable
that would turn it on; `FAIL` naming the problem, or the missing variable a configured capability
needs. On the stack (`Needs.strict`: in an ECS task, or `sage-ops doctor --require-all`) nothing
may fall back to a local default: an unconfigured capability or a defaulted setting fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sage_ops.errors import ConfigError, SageOpsError

Probe = Callable[[], str]  # returns what it found, raises what is wrong


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    skipped: bool = False

    @property
    def line(self) -> str:
        mark = "skip" if self.skipped else "ok" if self.ok else "FAIL"
        return f"[{mark}] {self.name}: {self.detail}"


class NotConfigured(Exception):
    """The variable that turns a capability on is unset."""

    def __init__(self, variable: str, why: str, optional: bool) -> None:
        super().__init__(variable)
        self.variable, self.why, self.optional = variable, why, optional


@dataclass(frozen=True)
class Needs:
    """What checks may require of the environment; `strict` on the stack."""

    strict: bool = False

    def capability(self, name: str, why: str, optional: bool = False) -> str:
        """The value of the variable that turns a capability on (`optional`: even on the stack)."""
        value = os.environ.get(name)
        if not value:
            raise NotConfigured(name, why, optional)
        return value

    def setting(self, name: str, why: str) -> None:
        """A variable with a local default, which the stack must set."""
        if self.strict and not os.environ.get(name):
            raise ConfigError(f"{name} is not set: {why}")


def run(name: str, probe: Probe, needs: Needs) -> CheckResult:
    try:
        return CheckResult(name, True, probe())
    except NotConfigured as exc:
        if needs.strict and not exc.optional:
            return CheckResult(name, False, f"{exc.variable} is not set: {exc.why}")
        return CheckResult(name, True, f"not configured ({exc.variable})", skipped=True)
    except SageOpsError as exc:  # platform errors arrive as these (doctor.py wraps probes)
        return CheckResult(name, False, str(exc))


def run_all(checks: Iterable[tuple[str, Probe]], needs: Needs) -> list[CheckResult]:
    return [run(name, probe, needs) for name, probe in checks]


def on_ecs() -> bool:
    """Inside an ECS task (the agent sets this), i.e. on the stack Terraform creates."""
    return bool(os.environ.get("ECS_CONTAINER_METADATA_URI_V4"))
