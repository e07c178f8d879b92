"""The alarm's metric around the episode as a small PNG, for the report.

Uses matplotlib's object API with the Agg canvas (no pyplot global state, no display), so it is
safe in the code server and in threads.
"""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd


def metric_plot(
    series: pd.DataFrame, title: str, threshold: float, alarm_at: datetime
) -> bytes | None:
    """PNG of `series` (timestamp, value) with the threshold and the alarm time; None if empty."""
    if series.empty:
        return None
    # Imported here: matplotlib costs half a second, which the sensor's code server need not pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 2.6), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    times = pd.to_datetime(series["timestamp"], utc=True).dt.tz_localize(None)
    ax.plot(times, series["value"], marker=".", linewidth=1.2, color="#1f5fa8")
    ax.axhline(threshold, color="#c0392b", linestyle="--", linewidth=1, label="threshold")
    ax.axvline(pd.Timestamp(alarm_at).tz_convert(None), color="#e67e22", linewidth=1, label="ALARM")
    ax.set_title(title, fontsize=9, loc="left")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.tick_params(labelsize=7)
    ax.xaxis.get_offset_text().set_fontsize(7)
    ax.set_xlabel("UTC", fontsize=7)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
