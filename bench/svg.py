"""Line charts as SVG, written by hand with the standard library: panels stacked over one
time axis, each with its own y axis, ticks at round numbers, grid lines and a legend.

Enough for the soak's plot (memory, lag and rates over a run) without a plotting
library: the file is plain text a browser or GitHub shows as is, and a diff can read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final
from xml.sax.saxutils import escape

# Colour-blind-safe (Okabe-Ito), in the order series are drawn.
PALETTE: Final = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
FONT: Final = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]  # (x, y); a gap in x is drawn as a line anyway
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # the y axis's label
    series: Sequence[Series]
    log: bool = False  # a logarithmic y axis (values <= 0 are left out)


@dataclass(frozen=True)
class Marker:
    """A vertical line across every panel at x, labelled (the end of the load, say)."""

    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    subtitle: str
    x_label: str
    panels: Sequence[Panel]
    markers: Sequence[Marker] = field(default_factory=tuple)
    width: int = 960
    panel_height: int = 230


@dataclass(frozen=True)
class YAxis:
    """Where a value falls on a panel's y axis, in pixels."""

    bottom: float
    top: float
    low: float
    high: float
    log: bool

    def at(self, y: float) -> float:
        scale = math.log10 if self.log else float
        share = (scale(y) - scale(self.low)) / (scale(self.high) - scale(self.low))
        return self.bottom - share * (self.bottom - self.top)


def ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round numbers from low to high (1, 2, 2.5 or 5 times a power of ten apart), at
    most `most` + 1 of them, covering the range."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    out = []
    value = first
    while value < high + step * 1e-9:
        out.append(round(value, 10))
        value += step
    if out[-1] < high:
        out.append(round(value, 10))
    return out


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten covering low..high (both > 0); with 2 and 5 between them when the
    range spans at most two decades."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    last = max(last, first + 1)
    steps = (1, 2, 5) if last - first <= 2 else (1,)
    out = [m * 10.0**e for e in range(first, last) for m in steps] + [10.0**last]
    # Trim what lies wholly outside the data, keeping one tick either side.
    while len(out) > 2 and out[1] <= low:
        out.pop(0)
    while len(out) > 2 and out[-2] >= high:
        out.pop()
    return [round(v, 10) for v in out]


def number(value: float) -> str:
    """A tick label: no trailing zeros, thousands as k."""
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def render(chart: Chart) -> str:
    left, right, top_margin, gap = 78, 24, 60, 70
    plot_w = chart.width - left - right
    height = top_margin + len(chart.panels) * (chart.panel_height + gap)
    xs = [x for p in chart.panels for s in p.series for x, _ in s.points] + [m.x for m in chart.markers]
    x_ticks = ticks(min(xs, default=0.0), max(xs, default=1.0), 10)
    x_low, x_high = x_ticks[0], x_ticks[-1]

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{chart.width}' height='{height}' "
        f"viewBox='0 0 {chart.width} {height}' {FONT} font-size='12'>",
        f"<rect width='{chart.width}' height='{height}' fill='white'/>",
        f"<text x='{left}' y='24' font-size='17' font-weight='bold'>{escape(chart.title)}</text>",
        f"<text x='{left}' y='44' fill='#444'>{escape(chart.subtitle)}</text>",
    ]
    for index, panel in enumerate(chart.panels):
        top = top_margin + index * (chart.panel_height + gap) + 50
        bottom = top + chart.panel_height - 28
        series = [
            Series(s.name, [(x, y) for x, y in s.points if y > 0 or not panel.log], s.dashed)
            for s in panel.series
        ]
        ys = [y for s in series for _, y in s.points]
        if panel.log:
            y_ticks = log_ticks(min(ys, default=1.0), max(ys, default=10.0))
        else:
            y_ticks = ticks(min(0.0, *ys) if ys else 0.0, max(ys, default=1.0), 5)
        y_low, y_high = y_ticks[0], y_ticks[-1]

        axis = YAxis(bottom, top, y_low, y_high, panel.log)
        sy = axis.at

        out.append(f"<g class='panel' data-title='{escape(panel.title)}'>")
        out.append(
            f"<text x='{left}' y='{top - 30}' font-size='14' font-weight='bold'>{escape(panel.title)}</text>"
        )
        for y in y_ticks:
            out.append(
                f"<line x1='{left}' x2='{left + plot_w}' y1='{sy(y):.1f}' y2='{sy(y):.1f}' stroke='#e4e4e4'/>"
            )
            out.append(
                f"<text x='{left - 8}' y='{sy(y) + 4:.1f}' text-anchor='end' fill='#333'>{number(y)}</text>"
            )
        for x in x_ticks:
            out.append(f"<line x1='{sx(x):.1f}' x2='{sx(x):.1f}' y1='{top}' y2='{bottom}' stroke='#f0f0f0'/>")
            out.append(
                f"<text x='{sx(x):.1f}' y='{bottom + 16}' text-anchor='middle' fill='#333'>{number(x)}</text>"
            )
        out.append(
            f"<rect x='{left}' y='{top}' width='{plot_w}' height='{bottom - top}' fill='none' stroke='#888'/>"
        )
        middle = (top + bottom) / 2
        out.append(
            f"<text x='18' y='{middle:.1f}' text-anchor='middle' transform='rotate(-90 18 {middle:.1f})' "
            f"fill='#333'>{escape(panel.unit)}</text>"
        )
        if index == len(chart.panels) - 1:
            out.append(
                f"<text x='{left + plot_w / 2:.1f}' y='{bottom + 36}' text-anchor='middle' fill='#333'>"
                f"{escape(chart.x_label)}</text>"
            )
        for marker in chart.markers:
            x = sx(marker.x)
            out.append(
                f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{bottom}' stroke='#666' stroke-dasharray='4 3'/>"
            )
            out.append(
                f"<text x='{x - 4:.1f}' y='{top + 14}' text-anchor='end' fill='#555' font-size='11'>"
                f"{escape(marker.label)}</text>"
            )
        legend_x = float(left)
        legend = []
        # Each panel's series in the palette's order: its legend says which is which.
        for number_, line in enumerate(series):
            stroke = PALETTE[number_ % len(PALETTE)]
            dash = " stroke-dasharray='6 3'" if line.dashed else ""
            if line.points:
                path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line.points)
                out.append(
                    f"<polyline class='series' data-name='{escape(line.name)}' points='{path}' fill='none' "
                    f"stroke='{stroke}' stroke-width='1.6' stroke-linejoin='round'{dash}/>"
                )
            legend.append((line.name, stroke, dash))
        # The legend on one line between the title and the plot, each entry a short line
        # of its colour and its name (about 7 px a character at this size).
        for name, stroke, dash in legend:
            y = top - 10
            out.append(
                f"<line x1='{legend_x:.1f}' x2='{legend_x + 22:.1f}' y1='{y}' y2='{y}' stroke='{stroke}' "
                f"stroke-width='3'{dash}/>"
            )
            out.append(f"<text class='legend' x='{legend_x + 27:.1f}' y='{y + 4}'>{escape(name)}</text>")
            legend_x += 7.0 * len(name) + 50
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
