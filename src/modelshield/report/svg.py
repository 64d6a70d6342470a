"""Render :class:`~modelshield.findings.Figure` data as self-contained inline SVG (no JS, no assets)."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from modelshield.findings import Figure

__all__ = ["render_svg"]

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
W, H = 640, 340
ML, MR, MT, MB = 64, 150, 36, 52  # default margins: left, right (legend), top, bottom
CHAR_W = {11: 7.0, 12: 7.6, 14: 9.0}  # generous average glyph widths (px) of the sans-serif font by size
LEGEND_MAX_CHARS = 30
# presentation attributes inline, so the layout holds without the report's stylesheet (the CSS may restyle)
TICK = 'class="tick" font-size="11" fill="#4b5563"'
LEGEND = 'class="legend" font-size="12" fill="#111827"'
AXIS = 'class="axis-label" font-size="12" fill="#374151"'
TITLE = 'class="chart-title" font-size="14" font-weight="600"'
PLOT_BG = 'class="plot-bg" fill="#fff" stroke="#d1d5db"'
GRID = 'class="grid" stroke="#e5e7eb"'
LEGEND_ROW = 18


def text_width(text: str, size: int = 12) -> float:
    """An upper estimate of the rendered width of ``text`` (no font metrics in a static SVG)."""
    return len(text) * CHAR_W.get(size, size * 0.58)


class _Layout:
    """Canvas size and margins for one figure: the legend gets the width its longest name needs and the
    height its entries need; category labels that would overlap are rotated and get room below."""

    def __init__(self, fig: Figure, legend: list[str], cats: list[str] | None = None) -> None:
        names = [self.legend_label(n) for n in legend]
        widest = max((text_width(n) for n in names), default=0.0)
        self.mr = max(24.0, 40 + widest) if names else 24.0
        self.ml, self.mt = float(ML), float(MT)
        # bars need >= 28 px per category so rotated neighbours (0.64 x slot apart) never touch
        self.w = max(W, self.ml + max(380, 28 * len(cats or ())) + self.mr)
        self.rotate = False
        self.mb = float(MB)
        if cats:
            slot = (self.w - self.ml - self.mr) / len(cats)
            labels = [self.cat_label(c) for c in cats]
            longest = max(text_width(c, 11) for c in labels)
            if longest > slot * 0.9:
                # rotated 40 degrees, anchored at the tick: a label reaches 0.64 x its width below the axis
                # and 0.77 x its width to the left, so the first one needs room on the left too
                self.rotate = True
                self.mb = MB + 0.64 * longest
                self.ml = max(self.ml, 0.77 * text_width(labels[0], 11) - slot / 2 + 8)
                self.w = max(self.w, self.ml + max(380, 28 * len(cats)) + self.mr)
        self.h = max(H, self.mt + self.mb + 180, self.mt + 10 + LEGEND_ROW * len(names) + 10 + self.mb)
        self.title_chars = int((self.w - self.ml - 8) / CHAR_W[14])

    @staticmethod
    def legend_label(name: str) -> str:
        return name if len(name) <= LEGEND_MAX_CHARS else name[:LEGEND_MAX_CHARS - 1] + "…"

    @staticmethod
    def cat_label(name: str) -> str:
        return name if len(name) <= 20 else name[:19] + "…"

    @property
    def pw(self) -> float:
        return self.w - self.ml - self.mr

    @property
    def ph(self) -> float:
        return self.h - self.mt - self.mb


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


def _frame(fig: Figure, lay: _Layout, body: list[str], legend: list[tuple[str, str]]) -> str:
    title = fig.title if len(fig.title) <= lay.title_chars else fig.title[:lay.title_chars - 1] + "…"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {lay.w:.0f} {lay.h:.0f}" width="{lay.w:.0f}" '
        f'height="{lay.h:.0f}" role="img" aria-label="{escape(fig.title)}" class="chart" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">',
        f"<title>{escape(fig.title)}</title>",
        f'<text x="{lay.ml}" y="20" {TITLE}>{escape(title)}</text>',
        *body,
        f'<text x="{lay.ml + lay.pw / 2:.1f}" y="{lay.h - 10:.1f}" text-anchor="middle" {AXIS}>'
        f"{escape(fig.x_label)}</text>",
        f'<text transform="translate(14,{lay.mt + lay.ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'{AXIS}>{escape(fig.y_label)}</text>',
    ]
    for i, (name, color) in enumerate(legend):
        y = lay.mt + 10 + i * LEGEND_ROW
        x = lay.w - lay.mr + 14
        parts.append(f'<rect x="{x:.1f}" y="{y - 9}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{x + 18:.1f}" y="{y + 1}" {LEGEND}>{escape(_Layout.legend_label(name))}'
                     f"<title>{escape(name)}</title></text>")
    parts.append("</svg>")
    return "\n".join(parts)


def _no_data(fig: Figure) -> str:
    lay = _Layout(fig, [])
    return _frame(fig, lay, [f'<text x="{lay.w / 2:.0f}" y="{lay.h / 2:.0f}" text-anchor="middle">no data</text>'],
                  [])


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
        return _no_data(fig)
    lay = _Layout(fig, [s.name for s in fig.series])
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
    ml, mt, pw, ph = lay.ml, lay.mt, lay.pw, lay.ph

    def px(v: float) -> float:
        return ml + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return mt + ph - (v - y0) / (y1 - y0) * ph

    body = [f'<rect x="{ml}" y="{mt}" width="{pw:.1f}" height="{ph:.1f}" {PLOT_BG}/>']
    for t in _ticks(y0, y1, fig.log_y):
        if y0 - 1e-9 <= t <= y1 + 1e-9:
            body.append(f'<line x1="{ml}" x2="{ml + pw:.1f}" y1="{py(t):.1f}" y2="{py(t):.1f}" {GRID}/>')
            body.append(f'<text x="{ml - 6}" y="{py(t) + 4:.1f}" text-anchor="end" {TICK}>'
                        f"{_fmt(t, fig.log_y)}</text>")
    x_ticks = [t for t in _ticks(x0, x1, fig.log_x) if x0 - 1e-9 <= t <= x1 + 1e-9]
    labels = [_fmt(t, fig.log_x) for t in x_ticks]
    # keep every k-th x tick label so neighbours never overlap
    gap = pw / max(1, len(x_ticks) - 1) if len(x_ticks) > 1 else pw
    need = max((text_width(lb, 11) for lb in labels), default=0.0) + 6
    every = max(1, math.ceil(need / gap)) if gap > 0 else 1
    for k, t in enumerate(x_ticks):
        body.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{mt}" y2="{mt + ph:.1f}" {GRID}/>')
        if k % every == 0:
            body.append(f'<text x="{px(t):.1f}" y="{mt + ph + 16:.1f}" text-anchor="middle" {TICK}>'
                        f"{labels[k]}</text>")
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
    return _frame(fig, lay, body, legend)


def _bar(fig: Figure) -> str:
    cats: list[str] = []
    for s in fig.series:
        for x in s.x:
            if str(x) not in cats:
                cats.append(str(x))
    vals = [v for s in fig.series for v in _finite(s.y) + _finite(s.hi) + _finite(s.lo)]
    if not cats or not vals:
        return _no_data(fig)
    lay = _Layout(fig, [s.name for s in fig.series], cats)
    if fig.y_range:
        y0, y1 = fig.y_range
    else:
        y0, y1 = min(0.0, min(vals)), max(vals)
        y1 = y1 if y1 > y0 else y0 + 1
    ml, mt, pw, ph = lay.ml, lay.mt, lay.pw, lay.ph

    def py(v: float) -> float:
        v = min(max(v, y0), y1)
        return mt + ph - (v - y0) / (y1 - y0) * ph

    body = [f'<rect x="{ml}" y="{mt}" width="{pw:.1f}" height="{ph:.1f}" {PLOT_BG}/>']
    for t in _ticks(y0, y1, False):
        body.append(f'<line x1="{ml}" x2="{ml + pw:.1f}" y1="{py(t):.1f}" y2="{py(t):.1f}" {GRID}/>')
        body.append(f'<text x="{ml - 6}" y="{py(t) + 4:.1f}" text-anchor="end" {TICK}>{t:.3g}</text>')
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
            bx = ml + c * slot + slot * 0.1 + i * bw
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
        cx = ml + c * slot + slot / 2
        label = escape(_Layout.cat_label(name))
        y = mt + ph + 16
        if lay.rotate:
            body.append(f'<text x="{cx:.1f}" y="{y:.1f}" text-anchor="end" {TICK} '
                        f'transform="rotate(-40 {cx:.1f} {y - 4:.1f})">{label}<title>{escape(name)}</title></text>')
        else:
            body.append(f'<text x="{cx:.1f}" y="{y:.1f}" text-anchor="middle" {TICK}>{label}'
                        f"<title>{escape(name)}</title></text>")
    return _frame(fig, lay, body, legend)
