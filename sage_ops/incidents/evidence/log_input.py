"""Log input for the triage CLI, streamed: plain lines, or a CloudWatch Logs export (the JSON of
`aws logs filter-log-events` / `get-log-events`: {"events": [{"timestamp", "message", ...}]}).

An export is decoded one event at a time from a sliding buffer, so a 100 MB export never sits in
memory whole; each event's message may hold several lines (a stack trace logged as one event).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

CHUNK = 1 << 20
MAX_LINE_BYTES = 256 * 1024  # CloudWatch Logs' event limit
_EXPORT_START = re.compile(rb'^\s*\{\s*"(?:events|nextForwardToken|nextToken|searchedLogStreams)"')
_EVENTS = re.compile(rb'"events"\s*:\s*\[')
_SEPARATORS = re.compile(r"[\s,]*")


def is_export(head: bytes) -> bool:
    return bool(_EXPORT_START.match(head))


def lines(stream: BinaryIO) -> Iterator[str]:
    """Physical lines without their line ends (only \\n splits lines: a \\r stays inside).

    A line longer than MAX_LINE_BYTES (a binary blob, a minified dump) keeps its first
    MAX_LINE_BYTES: the rest is read past, never held, so memory stays flat."""
    while raw := stream.readline(MAX_LINE_BYTES):
        if not raw.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
        yield raw.decode("utf-8", errors="replace").rstrip("\n").removesuffix("\r")


def export_events(stream: BinaryIO) -> Iterator[tuple[datetime | None, str]]:
    """(time, message) of each event of a CloudWatch Logs export, in file order."""
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    head = b""
    while not (found := _EVENTS.search(head)):
        chunk = stream.read(CHUNK)
        if not chunk:
            return
        head += chunk
    text, pos = decode(head[found.end() :]), 0
    decoder = json.JSONDecoder()
    while True:
        pos = _SEPARATORS.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("]", pos):
            return
        try:
            event, pos = decoder.raw_decode(text, pos)
        except ValueError:  # an event cut by the chunk boundary: read on
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            text, pos = text[pos:] + decode(chunk), 0
            continue
        stamp = event.get("timestamp")
        at = datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int) else None
        yield at, str(event.get("message", "")).rstrip("\n")
