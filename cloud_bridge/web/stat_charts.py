"""The sales-and-use statistics' pictures as inline SVG drawn on the server: a heatmap
(entries per weekday and hour), horizontal bars (revenue per ticket type) and lines
(active members and those who came again). No script draws anything in the browser.

Every picture is ``role="img"`` with a ``<title>`` and a ``<desc>`` (what it shows and
where the numbers are as a table), and each cell, bar or point has its own ``<title>``
so a pointer or a screen reader can read the value."""

from __future__ import annotations

from markupsafe import Markup, escape

from contracts.i18n import format_number

HEAT_RGB = (31, 102, 160)  # the darkest cell; lighter ones are more transparent
BAR_FILL = "#3d6fa3"
LINE_COLOURS = ("#1f66a0", "#c2571a")
TEXT = 'font-size="11" fill="#334"'


def _open(kind: str, width: int, height: int, title: str, desc: str) -> list[str]:
    return [f'<svg class="chart {kind}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-labelledby="{kind}-t {kind}-d" xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{kind}-t">{escape(title)}</title>',
            f'<desc id="{kind}-d">{escape(desc)}</desc>']


def heatmap(grid: list[list[int]], day_names: list[str], title: str, desc: str,
            cell_label: str) -> Markup:
    """``grid``: 7 rows (Monday first) × 24 hours; ``cell_label`` is a %-format with
    ``day``, ``hour`` and ``n``."""
    left, top, cell_w, cell_h = 44, 22, 27, 22
    width, height = left + 24 * cell_w + 4, top + 7 * cell_h + 6
    highest = max((n for row in grid for n in row), default=0) or 1
    parts = _open("heatmap", width, height, title, desc)
    for h in range(0, 24, 2):
        parts.append(f'<text x="{left + h * cell_w + 3}" y="{top - 7}" {TEXT}>{h:02d}</text>')
    r, g, b = HEAT_RGB
    for d, row in enumerate(grid):
        y = top + d * cell_h
        parts.append(f'<text x="4" y="{y + 15}" {TEXT}>{escape(day_names[d])}</text>')
        for h, n in enumerate(row):
            opacity = 0.06 if n == 0 else 0.2 + 0.8 * n / highest
            label = cell_label % {"day": day_names[d], "hour": f"{h:02d}", "n": n}
            parts.append(f'<rect class="cell" data-day="{d}" data-hour="{h}" data-n="{n}" '
                         f'x="{left + h * cell_w}" y="{y}" width="{cell_w - 2}" '
                         f'height="{cell_h - 2}" fill="rgb({r},{g},{b})" '
                         f'fill-opacity="{opacity:.2f}"><title>{escape(label)}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(items: list[tuple[str, int, str]], title: str, desc: str) -> Markup:
    """Horizontal bars: (label, value, the value as text)."""
    left, right, bar_h, gap = 190, 120, 22, 8
    width = 720
    height = 10 + len(items) * (bar_h + gap) + 4
    highest = max((v for _, v, _ in items), default=0) or 1
    parts = _open("bars", width, max(height, 40), title, desc)
    for i, (label, value, text) in enumerate(items):
        y = 10 + i * (bar_h + gap)
        w = max((width - left - right) * value / highest, 0)
        parts.append(f'<text x="4" y="{y + 15}" {TEXT}>{escape(label)}</text>')
        parts.append(f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" '
                     f'height="{bar_h}" fill="{BAR_FILL}"><title>{escape(label)}: '
                     f'{escape(text)}</title></rect>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" {TEXT}>{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(labels: list[str], series: list[tuple[str, list[int | None]]], title: str,
          desc: str) -> Markup:
    """One line per series over the labels (months); None leaves a point out."""
    left, bottom, top, width, height = 44, 40, 16, 720, 200
    values = [v for _, vs in series for v in vs if v is not None]
    highest = max(values, default=0) or 1
    step = (width - left - 20) / max(len(labels) - 1, 1)
    scale = (height - bottom - top) / highest
    parts = _open("lines", width, height, title, desc)
    base = height - bottom
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" '
                 'stroke="#999"/>')
    parts.append(f'<text x="4" y="{top + 4}" {TEXT}>{escape(format_number(highest))}</text>')
    parts.append(f'<text x="4" y="{base}" {TEXT}>0</text>')
    for i, label in enumerate(labels):
        parts.append(f'<text x="{left + i * step:.1f}" y="{base + 16}" {TEXT} '
                     f'text-anchor="middle">{escape(label)}</text>')
    for s, (name, vs) in enumerate(series):
        colour = LINE_COLOURS[s % len(LINE_COLOURS)]
        points = [(left + i * step, base - v * scale, v, labels[i])
                  for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
        for x, y, v, label in points:
            parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" '
                         f'fill="{colour}"><title>{escape(name)}, {escape(label)}: '
                         f'{escape(format_number(v))}</title></circle>')
        parts.append(f'<rect x="{left + s * 220}" y="{height - 14}" width="12" height="4" '
                     f'fill="{colour}"/><text x="{left + s * 220 + 16}" y="{height - 9}" '
                     f'{TEXT}>{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
