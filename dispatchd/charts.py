"""Line and bar charts as SVG text, drawn on the server: no JavaScript, no build step.

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that states its data in
words (what a screen reader says), axes with a few round tick values, and labels escaped (a queue
or a person's name is text from config and mail). Colours are presentation attributes, not
``style``: the pages' Content-Security-Policy allows no inline styles.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 30, 44
PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2")
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per x label; None: no value that day


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str = PALETTE[0]


def line_chart(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> str:
    """Lines over shared x ``labels``, one per series, with a legend."""
    points = [v for s in series for v in s.values if v is not None]
    if not labels or not points:
        return _empty(chart_id, title)
    ticks = nice_ticks(max(points))
    top = ticks[-1] or 1
    step = _plot_width() / max(len(labels) - 1, 1)
    parts = _frame(ticks, top, unit)
    parts += _x_labels(labels, [LEFT + i * step for i in range(len(labels))])
    for index, line in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        for run in _runs(line.values):
            path = " ".join(f"{LEFT + i * step:.1f},{_y(v, top):.1f}" for i, v in run)
            if len(run) == 1:
                i, v = run[0]
                parts.append(f'<circle cx="{LEFT + i * step:.1f}" cy="{_y(v, top):.1f}" r="3" fill="{colour}"/>')
            else:
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts += _legend([s.name for s in series])
    words = "; ".join(f"{s.name}: " + ", ".join(f"{label} {_number(v)}{unit}" for label, v in zip(labels, s.values)
                                                  if v is not None) for s in series)
    return _svg(chart_id, title, words, parts)


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], unit: str = "", maximum: float | None = None) -> str:
    """One bar per label (a queue, a person); ``maximum`` fixes the scale (100 for percentages)."""
    if not bars:
        return _empty(chart_id, title)
    ticks = nice_ticks(maximum if maximum is not None else max(b.value for b in bars))
    top = ticks[-1] or 1
    slot = _plot_width() / len(bars)
    width = min(slot * 0.7, 60)
    parts = _frame(ticks, top, unit)
    centres = [LEFT + slot * (i + 0.5) for i in range(len(bars))]
    for bar, centre in zip(bars, centres):
        y = _y(max(bar.value, 0), top)
        parts.append(f'<rect x="{centre - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
                     f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{escape(bar.colour)}">'
                     f'<title>{escape(bar.label)}: {_number(bar.value)}{escape(unit)}</title></rect>')
        parts.append(f'<text x="{centre:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11" '
                     f'fill="#111827">{_number(bar.value)}{escape(unit)}</text>')
    parts += _x_labels([b.label for b in bars], centres)
    words = ", ".join(f"{b.label} {_number(b.value)}{unit}" for b in bars)
    return _svg(chart_id, title, words, parts)


def nice_ticks(highest: float, count: int = 4) -> list[float]:
    """0 and a few round steps (1, 2 or 5 times a power of ten) reaching at least ``highest``."""
    if highest <= 0 or not math.isfinite(highest):
        return [0.0, 1.0]
    rough = highest / count
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return [step * i for i in range(math.ceil(highest / step - 1e-9) + 1)]


def _frame(ticks: list[float], top: float, unit: str) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#6b7280"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#6b7280"/>']
    for tick in ticks:
        y = _y(tick, top)
        if tick:
            parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#374151">{_number(tick)}{escape(unit)}</text>')
    return parts


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    return [f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
            f'fill="#374151">{escape(_short(label))}</text>'
            for index, (label, x) in enumerate(zip(labels, xs)) if index % every == 0]


def _legend(names: Sequence[str]) -> list[str]:
    parts, x = [], LEFT
    for index, name in enumerate(names):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="18" font-size="12" fill="#111827">{escape(_short(name))}</text>')
        x += 28 + 7 * len(_short(name))
    return parts


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Unbroken stretches of values: a day without one breaks the line instead of faking zero."""
    runs: list[list[tuple[int, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((index, value))
    return [run for run in runs if run]


def _svg(chart_id: str, title: str, words: str, parts: list[str]) -> str:
    ident = _ident(chart_id)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart" '
            f'aria-labelledby="{ident}-title {ident}-desc" font-family="system-ui, sans-serif">'
            f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(words)}</desc>'
            + "".join(parts) + "</svg>")


def _empty(chart_id: str, title: str) -> str:
    return _svg(chart_id, title, "No data yet.", [
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="14" fill="#6b7280">No data yet</text>'])


def _y(value: float, top: float) -> float:
    return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * min(value, top) / top


def _plot_width() -> float:
    return WIDTH - LEFT - RIGHT


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 or abs(value) >= 100 else f"{value:.1f}"


def _short(label: str, limit: int = 14) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def _ident(chart_id: str) -> str:
    """An id safe in an attribute and unique enough on a page: letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]", "-", chart_id.lower()) or "chart"
