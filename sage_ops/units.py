"""Sizes and durations as people read them, shown beside the raw numbers in the UI."""

from __future__ import annotations

_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_bytes(size: float) -> str:
    """Decimal units, as Docker and the AWS consoles count: 1234567 -> '1.2 MB'."""
    value, unit = float(size), 0
    while abs(value) >= 1000 and unit < len(_BYTE_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.0f} {_BYTE_UNITS[unit]}" if unit == 0 else f"{value:.1f} {_BYTE_UNITS[unit]}"


def human_seconds(seconds: float) -> str:
    """4.2 -> '4.2 s', 125 -> '2 min 5 s', 3720 -> '1 h 2 min'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
