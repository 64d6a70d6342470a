"""Render :class:`~modelshield.findings.Figure` data as self-contained inline SVG (no JS, no assets)."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from modelshield.findings import Figure

__all__ = ["render_svg"]

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
W, H = 640, 340
ML, MR, MT, MB = 64, 150, 36, 52  # margins: left, right (legend), top, bottom


def _finite(vals: Any) -> list[float]:
    out = []
    for v in vals or []:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def _ticks(lo: float, hi: float, log: bool, n: int = 5) -> list[float]:
    if log:
        a, b = math.floor(lo), math.ceil(hi)
        return [float(e) for e in range(a, b + 1)]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    ticks = []
    t = start
    while t <= hi + 1e-12 and len(ticks) < 12:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float, log: bool) -> str:
    if log:
        return f"1e{int(v)}" if v < -2 or v > 3 else f"{10 ** v:g}"
    return f"{v:.3g}"


def render_svg(fig: Figure) -> str:
    """Return an ``<svg>`` element for ``fig`` (line or bar chart)."""
    if fig.kind == "bar":
        return _bar(fig)
    return _line(fig)


def _frame(fig: Figure, body: list[str], legend: list[tuple[str, str]]) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'role="img" aria-label="{escape(fig.title)}" class="chart">',
        f'<text x="{ML}" y="20" class="chart-title">{escape(fig.title)}</text>',
        *body,
        f'<text x="{ML + (W - ML - MR) / 2}" y="{H - 10}" text-anchor="middle" class="axis-label">'
        f"{escape(fig.x_label)}</text>",
        f'<text transform="translate(14,{MT + (H - MT - MB) / 2}) rotate(-90)" text-anchor="middle" '
        f'class="axis-label">{escape(fig.y_label)}</text>',
    ]
    for i, (name, color) in enumerate(legend):
        y = MT + 10 + i * 18
        parts.append(f'<rect x="{W - MR + 14}" y="{y - 9}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{W - MR + 32}" y="{y + 1}" class="legend">{escape(name[:22])}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _line(fig: Figure) -> str:
    def tx(v: float) -> float | None:
        if fig.log_x:
            return math.log10(v) if v > 0 else None
        return v

    def ty(v: float) -> float | None:
        if fig.log_y:
            return math.log10(v) if v > 0 else None
        return v

    pts: list[list[tuple[float, float]]] = []
    for s in fig.series:
        row = []
        for x, y in zip(s.x, s.y):
            try:
                a, b = tx(float(x)), ty(float(y))
            except (TypeError, ValueError):
                continue
            if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
                row.append((a, b))
        pts.append(row)
    xs = [p[0] for row in pts for p in row]
    ys = [p[1] for row in pts for p in row]
    if not xs:
        return _frame(fig, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'], [])
    x0, x1 = min(xs), max(xs)
    if fig.y_range and not fig.log_y:
        y0, y1 = fig.y_range
    else:
        y0, y1 = min(ys), max(ys)
    if fig.diagonal:
        lo, hi = min(x0, y0), max(x1, y1)
        x0, x1, y0, y1 = lo, hi, lo, hi
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pw, ph = W - ML - MR, H - MT - MB

    def px(v: float) -> float:
        return ML + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return MT + ph - (v - y0) / (y1 - y0) * ph

    body = [f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" class="plot-bg"/>']
    for t in _ticks(y0, y1, fig.log_y):
        if y0 - 1e-9 <= t <= y1 + 1e-9:
            body.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>')
            body.append(f'<text x="{ML - 6}" y="{py(t) + 4:.1f}" text-anchor="end" class="tick">'
                        f"{_fmt(t, fig.log_y)}</text>")
    for t in _ticks(x0, x1, fig.log_x):
        if x0 - 1e-9 <= t <= x1 + 1e-9:
            body.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{MT}" y2="{MT + ph}" class="grid"/>')
            body.append(f'<text x="{px(t):.1f}" y="{MT + ph + 16}" text-anchor="middle" class="tick">'
                        f"{_fmt(t, fig.log_x)}</text>")
    if fig.diagonal:
        body.append(f'<line x1="{px(x0):.1f}" y1="{py(y0):.1f}" x2="{px(x1):.1f}" y2="{py(y1):.1f}" '
                    'class="diagonal"/>')
    legend = []
    for i, (s, row) in enumerate(zip(fig.series, pts)):
        color = PALETTE[i % len(PALETTE)]
        legend.append((s.name, color))
        if not row:
            continue
        d = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in row)
        body.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        if len(row) <= 40:
            for a, b in row:
                body.append(f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3" fill="{color}"/>')
    return _frame(fig, body, legend)


def _bar(fig: Figure) -> str:
    cats: list[str] = []
    for s in fig.series:
        for x in s.x:
            if str(x) not in cats:
                cats.append(str(x))
    vals = [v for s in fig.series for v in _finite(s.y) + _finite(s.hi) + _finite(s.lo)]
    if not cats or not vals:
        return _frame(fig, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'], [])
    if fig.y_range:
        y0, y1 = fig.y_range
    else:
        y0, y1 = min(0.0, min(vals)), max(vals)
        y1 = y1 if y1 > y0 else y0 + 1
    pw, ph = W - ML - MR, H - MT - MB

    def py(v: float) -> float:
        v = min(max(v, y0), y1)
        return MT + ph - (v - y0) / (y1 - y0) * ph

    body = [f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" class="plot-bg"/>']
    for t in _ticks(y0, y1, False):
        body.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>')
        body.append(f'<text x="{ML - 6}" y="{py(t) + 4:.1f}" text-anchor="end" class="tick">{t:.3g}</text>')
    ns = max(1, len(fig.series))
    slot = pw / len(cats)
    bw = slot * 0.8 / ns
    legend = []
    for i, s in enumerate(fig.series):
        color = PALETTE[i % len(PALETTE)]
        legend.append((s.name, color))
        for j, (x, y) in enumerate(zip(s.x, s.y)):
            try:
                yv = float(y)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(yv):
                continue
            c = cats.index(str(x))
            bx = ML + c * slot + slot * 0.1 + i * bw
            top, base = py(max(yv, 0) if y0 <= 0 else yv), py(min(max(0.0, y0), y1))
            body.append(f'<rect x="{bx:.1f}" y="{min(top, base):.1f}" width="{bw:.1f}" '
                        f'height="{abs(base - top):.1f}" fill="{color}"><title>{escape(str(x))}: {yv:.4g}'
                        "</title></rect>")
            if s.lo is not None and s.hi is not None and j < len(s.lo) and j < len(s.hi):
                lo, hi = _finite([s.lo[j]]), _finite([s.hi[j]])
                if lo and hi:
                    cx = bx + bw / 2
                    body.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{py(lo[0]):.1f}" y2="{py(hi[0]):.1f}" '
                                'class="errbar"/>')
                    for v in (lo[0], hi[0]):
                        body.append(f'<line x1="{cx - 4:.1f}" x2="{cx + 4:.1f}" y1="{py(v):.1f}" '
                                    f'y2="{py(v):.1f}" class="errbar"/>')
    for c, name in enumerate(cats):
        cx = ML + c * slot + slot / 2
        label = name if len(name) <= 14 else name[:13] + "…"
        body.append(f'<text x="{cx:.1f}" y="{MT + ph + 16}" text-anchor="middle" class="tick">'
                    f"{escape(label)}</text>")
    return _frame(fig, body, legend)
