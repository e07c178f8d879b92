"""The message of a JSON-wrapped log line, so a finding names its evidence in words.

CloudWatch's JSON loggers (pino, winston, Nest's JSON logger), Cloud Logging's `textPayload`,
CloudNativePG's `record.message` and PostgreSQL's jsonlog wrap the text a human reads in an
object whose other fields (times, ids, hosts) would leave only `{<str>:<str>,...}` once masked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sage_ops.incidents.classification.categories import classify_text

MESSAGE_KEYS = ("message", "msg", "textPayload", "log", "MESSAGE", "error", "err", "reason")
_MAX_DEPTH = 4
_MAX_FIELDS = 12


def readable(text: str, category: str | None = None) -> str:
    """The entry's message: for a JSON object, the message field that shows `category` (the
    first message field if none does); any other text as it is."""
    start = text.lstrip()
    if not start.startswith("{"):
        return text
    try:
        value = json.loads(start)
    except ValueError:
        return text
    found = list(_messages(value, 0))
    chosen = next((m for m in found if category and classify_text(m) == category), None)
    if chosen is None:  # the cause is in other fields (a status code): name them too
        chosen = " ".join([*found[:1], *_fields(value, "")][:_MAX_FIELDS])
    return " ".join(chosen.split())


def _messages(value: Any, depth: int) -> Iterator[str]:
    """Message-like string fields, shallow ones first (breadth by level)."""
    if not isinstance(value, dict) or depth > _MAX_DEPTH:
        return
    for key in MESSAGE_KEYS:
        field = value.get(key)
        if isinstance(field, str) and field.strip():
            yield field
        elif isinstance(field, dict):  # {"err": {"message": ...}}
            yield from _messages(field, depth + 1)
    for key, nested in value.items():
        if key not in MESSAGE_KEYS and isinstance(nested, dict):
            yield from _messages(nested, depth + 1)


def _fields(value: Any, prefix: str) -> Iterator[str]:
    """`key=value` for the object's short scalar fields but its messages, nested keys dotted."""
    if not isinstance(value, dict):
        return
    for key, field in value.items():
        name = f"{prefix}{key}"
        if isinstance(field, dict):
            yield from _fields(field, f"{name}.")
        elif key in MESSAGE_KEYS:
            continue  # already said, as the message
        elif isinstance(field, str | int | float | bool) and len(str(field)) <= 80:
            yield f"{name}={field}"
