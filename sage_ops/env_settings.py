"""How a capability's resource reads its settings from the environment, in one style: a table of
field -> variable and a parser per typed field; an unset variable keeps the field's default.
Only the resources' `from_env` loaders call `read`; plain code receives the values."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from sage_ops.errors import ConfigError

Parse = Callable[[str], Any]


def read(
    table: Mapping[str, str], parsers: Mapping[str, Parse], env: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """{field: parsed value} for each variable of `table` that is set."""
    return {field: parsers.get(field, str)(env[var]) for field, var in table.items() if var in env}


def listed(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


def flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"expected true or false (got {raw!r})")
    return value in ("1", "true", "yes")


def integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"expected an integer (got {raw!r})") from None


def number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"expected a number (got {raw!r})") from None


def one_of(variable: str, allowed: tuple[str, ...]) -> Parse:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ConfigError(f"{variable} must be one of {', '.join(allowed)} (got {raw!r})")
        return raw

    return parse
