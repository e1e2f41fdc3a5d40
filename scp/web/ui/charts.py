"""Bar charts drawn on the server as SVG: the supervisor's dashboard needs no script and no
chart library, and a test can read the bars back.

:func:`bar_chart` draws one group of bars per day, side by side (``stacked=False``) or on top
of each other; every bar carries its value in a ``<title>`` (a tooltip) and in ``data-value``.
All text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from markupsafe import Markup

__all__ = ["PALETTE", "bar_chart"]

PALETTE = ("#0b5cad", "#e07b00", "#2e9d57", "#c62828", "#6a4fb3")
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 28


def _nice_max(v: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``v``."""
    if v <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= v:
        step *= 10
    while step > v * 10:
        step /= 10
    for m in (1, 2, 5, 10):
        if m * step >= v:
            return m * step
    return 10 * step


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int | float | Decimal]]],
    *,
    title: str,
    stacked: bool = False,
) -> Markup:
    """An SVG bar chart: ``labels`` along the bottom, one bar (or one segment) per series."""
    n = max(1, len(labels))
    values = [[float(v) for v in vs] for _, vs in series]
    if stacked:
        top = max((sum(col) for col in zip(*values, strict=True)), default=0.0) if values else 0.0
    else:
        top = max((max(vs, default=0.0) for vs in values), default=0.0)
    ymax = _nice_max(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title>',
        '<g font-size="11" fill="#5b6776" font-family="sans-serif">',
    ]
    for i in range(5):  # the value axis: 0, 1/4 ... the top
        v = ymax * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e8ee"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(v))}</text>'
        )
    for d, label in enumerate(labels):
        x0 = LEFT + slot * d
        parts.append(
            f'<text x="{x0 + slot / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
        base = 0.0
        k = len(series)
        bar_w = slot * 0.7 if stacked else slot * 0.8 / max(1, k)
        for s, (name, _) in enumerate(series):
            v = values[s][d] if d < len(values[s]) else 0.0
            h = plot_h * v / ymax
            if stacked:
                x, y = x0 + slot * 0.15, TOP + plot_h - plot_h * base / ymax - h
                base += v
            else:
                x, y = x0 + slot * 0.1 + bar_w * s, TOP + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}"'
                f' fill="{PALETTE[s % len(PALETTE)]}" data-series="{escape(name)}"'
                f' data-label="{escape(label)}" data-value="{escape(_fmt(v))}">'
                f"<title>{escape(name)} {escape(label)}: {escape(_fmt(v))}</title></rect>"
            )
    parts.append("</g></svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece of text above is escaped


def legend(series: Sequence[str]) -> Markup:
    """The series' names with their colours (HTML, escaped)."""
    items = "".join(
        f'<span><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12"'
        f' fill="{PALETTE[i % len(PALETTE)]}"/></svg> {escape(name)}</span>'
        for i, name in enumerate(series)
    )
    return Markup(f'<p class="legend">{items}</p>')  # noqa: S704 - names escaped
