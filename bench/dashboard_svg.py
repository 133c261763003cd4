"""Draw a Grafana dashboard's time series panels, laid out by their gridPos, as one SVG document.

Pure: takes the panels (bench/grafana.py) and the series each returned, gives the SVG text. Axes with
rounded ticks in the panel's unit, one line per series (gaps where a value is missing or not a number),
a legend under each plot, the row headers. No dependency beyond the standard library.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from bench.grafana import GRID_COLUMNS, Panel

WIDTH = 1440
COLUMN = WIDTH / GRID_COLUMNS
ROW_HEIGHT = 30  # pixels per gridPos height unit, as Grafana draws them
GAP = 6
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
# Grafana's classic palette.
COLORS = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0")
COLORS += ("#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477")
LEGEND_LINE = 14
LEGEND_CHARS = 40
CAPTION_LINE = 16
CAPTION_CHARS = 190  # of 12 px text across WIDTH
Y_TICKS = 4
X_TICKS = 5


@dataclass(frozen=True)
class Series:
    legend: str
    points: Sequence[tuple[float, float]]  # (unix time, value); NaN or inf where Prometheus had no number


@dataclass(frozen=True)
class Picture:
    """What the SVG shows: the panels, each panel's series by panel id, the time range and a caption (its
    lines under the panels, the long ones wrapped)."""

    panels: Sequence[Panel]
    series: Mapping[int, Sequence[Series]]
    start: float
    end: float
    caption: str


def format_value(value: float, unit: str) -> str:
    """A tick or legend value in the panel's Grafana unit, short."""
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s":
        for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if abs(value) >= scale or scale == 1e-6:
                return f"{_short(value / scale)} {suffix}" if value else "0"
    if unit in ("bytes", "Bps"):
        per = "/s" if unit == "Bps" else ""
        for power, suffix in ((3, "GiB"), (2, "MiB"), (1, "KiB"), (0, "B")):
            if abs(value) >= 1024**power or power == 0:
                return f"{_short(value / 1024**power)} {suffix}{per}"
    per = {"reqps": " req/s", "ops": "/s"}.get(unit, "")
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{_short(value / scale)}{suffix}{per}"
    return f"{_short(value)}{per}"


def _short(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.2g}" if abs(value) < 10 else f"{value:.0f}"


def nice_ticks(low: float, high: float, count: int = Y_TICKS, *, binary: bool = False) -> list[float]:
    """Round tick values from at most `low` to at least `high`: steps of 1, 2, 2.5 or 5 times a power of
    ten; of KiB, MiB, GiB when `binary` (byte units)."""
    if not high > low:
        high = low + 1
    scale = 1.0
    while binary and max(abs(low), abs(high)) / scale >= 1024:
        scale *= 1024
    low, high = low / scale, high / scale
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [math.floor(low / step) * step]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(ticks[0] + len(ticks) * step)
    return [round(tick, 12) * scale for tick in ticks]


def segments(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """The runs of finite values: a line is broken where a value is missing (NaN, inf)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if math.isfinite(point[1]):
            runs[-1].append(point)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def shown_series(series: Sequence[Series]) -> list[Series]:
    """The series drawn, largest peak first (the legend's order): those with a value, and of those the ones
    that stayed at 0 only when no other moved (a counter created at 0 for every operation would otherwise
    fill the legend)."""
    finite = [s for s in series if segments(s.points)]
    moved = [s for s in finite if any(v != 0 for _, v in s.points if math.isfinite(v))]
    return sorted(moved or finite, key=lambda s: -max(abs(v) for _, v in s.points if math.isfinite(v)))


def render(picture: Picture) -> str:
    rows = max((p.grid.y + p.grid.h for p in picture.panels), default=0)
    caption = [part for line in picture.caption.splitlines() for part in textwrap.wrap(line, CAPTION_CHARS)]
    height = rows * ROW_HEIGHT + 10 + CAPTION_LINE * len(caption)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' {FONT} font-size='11'>",
        f"<rect width='{WIDTH}' height='{height}' fill='#f4f5f5'/>",
    ]
    for panel in picture.panels:
        if panel.kind == "row":
            y = panel.grid.y * ROW_HEIGHT + ROW_HEIGHT * 0.7
            parts.append(
                f"<text x='{GAP}' y='{y:.0f}' font-size='15' font-weight='bold' fill='#22252b'>"
                f"{escape(panel.title)}</text>"
            )
        else:
            parts.append(_panel(panel, picture.series.get(panel.id, ()), picture.start, picture.end))
    for index, line in enumerate(caption):
        y = rows * ROW_HEIGHT + CAPTION_LINE * (index + 1)
        parts.append(f"<text x='{GAP}' y='{y}' font-size='12' fill='#444'>{escape(line)}</text>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(panel: Panel, series: Sequence[Series], start: float, end: float) -> str:
    left = panel.grid.x * COLUMN + GAP / 2
    top = panel.grid.y * ROW_HEIGHT + GAP / 2
    width = panel.grid.w * COLUMN - GAP
    height = panel.grid.h * ROW_HEIGHT - GAP
    parts = [
        f"<g transform='translate({left:.1f},{top:.1f})'>",
        f"<rect width='{width:.1f}' height='{height:.1f}' rx='3' fill='#fff' stroke='#d8d9da'/>",
        f"<text x='8' y='17' font-size='12' font-weight='bold' fill='#22252b'>{escape(panel.title)}</text>",
    ]
    drawn = shown_series(series)
    # Legend columns as wide as the longest entry needs, at most LEGEND_CHARS characters.
    longest = min(LEGEND_CHARS, max((len(s.legend) for s in drawn), default=0))
    column = min(width - 16, longest * 6.4 + 24)
    legend_columns = max(1, int((width - 16) // column))
    legend_rows = min(3, math.ceil(len(drawn) / legend_columns)) if drawn else 0
    plot_left, plot_top = 62.0, 34.0
    plot_width = width - plot_left - 16
    plot_height = height - plot_top - 24 - legend_rows * LEGEND_LINE
    if not drawn:
        parts.append(
            f"<text x='{width / 2:.1f}' y='{height / 2:.1f}' text-anchor='middle' fill='#8e8e8e' "
            f"font-size='13'>No data</text></g>"
        )
        return "\n".join(parts)
    values = [v for s in drawn for _, v in s.points if math.isfinite(v)]
    ticks = nice_ticks(min(0.0, *values), max(values), binary=panel.unit in ("bytes", "Bps"))
    low, high = ticks[0], ticks[-1]

    def x_of(t: float) -> float:
        return plot_left + (t - start) / (end - start) * plot_width

    def y_of(v: float) -> float:
        return plot_top + plot_height - (v - low) / (high - low) * plot_height

    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f"<line x1='{plot_left:.1f}' x2='{plot_left + plot_width:.1f}' y1='{y:.1f}' y2='{y:.1f}' "
            "stroke='#e9eaeb'/>"
        )
        parts.append(
            f"<text x='{plot_left - 4:.1f}' y='{y + 4:.1f}' text-anchor='end' fill='#555'>"
            f"{escape(format_value(tick, panel.unit))}</text>"
        )
    for index in range(X_TICKS + 1):
        t = start + (end - start) * index / X_TICKS
        anchor = "start" if index == 0 else "end" if index == X_TICKS else "middle"
        parts.append(
            f"<text x='{x_of(t):.1f}' y='{plot_top + plot_height + 14:.1f}' text-anchor='{anchor}' "
            f"fill='#555'>{time.strftime('%H:%M:%S', time.gmtime(t))}</text>"
        )
    parts.append(
        f"<line x1='{plot_left:.1f}' x2='{plot_left:.1f}' y1='{plot_top:.1f}' "
        f"y2='{plot_top + plot_height:.1f}' stroke='#b7b8b9'/>"
    )
    for index, one in enumerate(drawn):
        color = COLORS[index % len(COLORS)]
        for run in segments(one.points):
            if len(run) == 1:
                (t, v) = run[0]
                parts.append(f"<circle cx='{x_of(t):.1f}' cy='{y_of(v):.1f}' r='1.5' fill='{color}'/>")
                continue
            path = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in run)
            parts.append(f"<polyline points='{path}' fill='none' stroke='{color}' stroke-width='1.5'/>")
    shown = legend_rows * legend_columns
    for index, one in enumerate(drawn[:shown]):
        color = COLORS[index % len(COLORS)]
        x = 8 + (index % legend_columns) * column
        y = plot_top + plot_height + 30 + (index // legend_columns) * LEGEND_LINE
        if len(drawn) > shown and index == shown - 1:
            parts.append(f"<text x='{x:.1f}' y='{y + 1:.1f}' fill='#555'>+{len(drawn) - index} more</text>")
            break
        parts.append(f"<rect x='{x:.1f}' y='{y - 3:.1f}' width='10' height='3' fill='{color}'/>")
        name = escape(_clip(one.legend, LEGEND_CHARS))
        parts.append(f"<text x='{x + 14:.1f}' y='{y + 1:.1f}' fill='#333'>{name}</text>")
    parts.append("</g>")
    return "\n".join(parts)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
