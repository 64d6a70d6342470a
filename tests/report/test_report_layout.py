"""HTML report layout in Chromium: the page never grows wider than the window and no two text boxes
overlap (chart titles, tick labels, legends, rotated category labels), whatever the data: many groups,
long group and series names, wide tables, a run that scanned files only (issue 15 D.9)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import modelshield as ms
from modelshield.findings import Figure, Series
from modelshield.report.html import render_html
from modelshield.report.svg import render_svg


def _names(rng, n: int, long: bool) -> list[str]:
    base = ["Female", "Male", "White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Never-married",
            "Married-civ-spouse", "Self-emp-not-inc"]
    out = []
    for i in range(n):
        a, b = base[i % len(base)], base[(i * 3 + 1) % len(base)]
        out.append(f"{a}&{b}&group-{i}" if long else f"{a[:3]}{i}")
    return out


def _figures(seed: int) -> list[Figure]:
    rng = np.random.default_rng(seed)
    figs = []
    for n_groups, long in ((2, False), (8, True), (17, True), (30, False), (40, True)):
        groups = _names(rng, n_groups, long)
        series = []
        for name in ("selection rate", "true positive rate of the positive class (95% interval)", "accuracy"):
            y = rng.uniform(0.05, 0.95, n_groups)
            series.append(Series(name=name, x=groups, y=list(y), lo=list(y - 0.05), hi=list(y + 0.05)))
        figs.append(Figure(title=f"Per-group rates by sex&race&marital-status&workclass ({n_groups} groups, "
                                 "95% intervals from 1000 bootstrap resamples)", kind="bar", series=tuple(series),
                           x_label="group", y_label="rate", y_range=(0.0, 1.0)))
    budgets = [10, 30, 100, 300, 1000, 3000, 10000]
    figs.append(Figure(title="Extraction fidelity vs. query budget", kind="line", log_x=True, series=tuple(
        Series(name=f"{kind} surrogate trained on {src} queries with labels and probabilities", x=budgets,
               y=list(rng.uniform(0.5, 1, len(budgets))))
        for kind in ("logistic-regression", "gradient-boosting", "mlp-64x64") for src in ("random", "boundary"))))
    figs.append(Figure(title="Robust accuracy vs eps", kind="line", series=(
        Series(name="pgd", x=list(np.linspace(0.001, 0.5, 25)), y=list(np.linspace(1, 0, 25))),)))
    return figs


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    rep = ms.audit(model, ms.Dataset(X=X, y=y, name="synthetic"), checks=["baseline"], label="wide")
    res = rep.runs[0].result("baseline")
    res.figures.extend(_figures(0))
    res.tables["fairness.groups"] = [
        {"attribute": "sex&race&marital-status", "group": g, **{f"metric_{k}_with_a_long_name": float(rng.uniform())
                                                              for k in range(16)},
         "path": "/a/very/long/path/without/any/spaces/" * 6}
        for g in _names(rng, 17, True)]
    res.tables["fairness.groups_detail"] = [{"group": "x", "selection_rate_lo": 0.1}]
    # a run that only scanned files (no model), as the demo's downloaded-artifacts run
    tmp = tmp_path_factory.mktemp("arts")
    art = tmp / "weights.pkl"
    art.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    files_only = ms.audit(None, None, artifacts=[art], checks=["artifact"], label="downloaded-artifacts")
    rep.runs.extend(files_only.runs)
    return rep


_OVERLAPS = """
// every text's oriented box (its bbox corners through its transform, in page pixels), so slanted labels
// are compared as drawn; two boxes overlap when no separating axis exists (SAT)
const quad = (t) => {
  const b = t.getBBox(), m = t.getScreenCTM();
  return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]].map(([x, y]) => {
    const p = new DOMPoint(x, y).matrixTransform(m); return [p.x, p.y]; });
};
const axes = (q) => [0, 1].map(i => { const dx = q[i + 1][0] - q[i][0], dy = q[i + 1][1] - q[i][1];
  const n = Math.hypot(dx, dy) || 1; return [-dy / n, dx / n]; });
const proj = (q, a) => { const v = q.map(p => p[0] * a[0] + p[1] * a[1]); return [Math.min(...v), Math.max(...v)]; };
const overlap = (q1, q2) => { for (const a of [...axes(q1), ...axes(q2)]) { const [a1, b1] = proj(q1, a), [a2, b2] = proj(q2, a);
  if (Math.min(b1, b2) - Math.max(a1, a2) <= 1) return false; } return true; };
const out = [];
for (const svg of document.querySelectorAll('svg.chart')) {
  const ts = Array.from(svg.querySelectorAll('text')).filter(t => t.getBBox().width > 0.5);
  const qs = ts.map(quad); const f = svg.getBoundingClientRect();
  const label = (svg.getAttribute('aria-label') || '').slice(0, 30);
  qs.forEach((q, i) => { if (q.some(([x, y]) => x < f.left - 1 || x > f.right + 1 || y < f.top - 1 || y > f.bottom + 1))
    out.push(['outside', label, ts[i].textContent.slice(0, 40)]); });
  for (let i = 0; i < qs.length; i++) for (let j = i + 1; j < qs.length; j++)
    if (overlap(qs[i], qs[j])) out.push(['overlap', label, ts[i].textContent.slice(0, 40), ts[j].textContent.slice(0, 40)]);
}
return out;
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 1024, 800])
def test_page_never_wider_than_the_window_and_no_text_overlaps(wide_report, tmp_path, browser, width):
    page = tmp_path / "report.html"
    page.write_text(render_html(wide_report))
    browser.set_window_size(width, 1000)
    browser.get(page.as_uri())
    inner = browser.execute_script("return window.innerWidth")
    scroll = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= inner, (scroll, inner)
    assert len(browser.find_elements("css selector", "svg.chart")) == len(_figures(0)) + 1  # + reliability
    assert browser.execute_script(_OVERLAPS) == []


@pytest.mark.browser
def test_overlap_probe_can_fail(tmp_path, browser):
    """The probe above must be able to fail: two labels at one spot, and a page wider than its window."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><svg class="chart" aria-label="bad" width="300" height="100">'
                    '<text x="10" y="50">overlapping label</text><text x="20" y="52">overlapping label</text>'
                    '<text x="290" y="50">outside</text></svg><div style="width:3000px">wide</div></body></html>')
    browser.set_window_size(1000, 800)
    browser.get(page.as_uri())
    kinds = [o[0] for o in browser.execute_script(_OVERLAPS)]
    assert "overlap" in kinds and "outside" in kinds
    assert browser.execute_script("return document.documentElement.scrollWidth") > 1000


def test_detail_tables_and_files_only_runs(wide_report):
    html = render_html(wide_report)
    assert "selection_rate_lo" not in html  # the *_detail table is in the JSON report only
    assert "every per-group statistic with its interval bounds is in the JSON report" in html
    assert "files scanned, no model loaded" in html and "this run scanned files only" in html
    assert " · </div>" not in html  # no empty "framework · format" line


@pytest.mark.parametrize("seed", [0, 1])
def test_svg_layout_gives_legends_and_labels_room(seed):
    for fig in _figures(seed):
        svg = render_svg(fig)
        width = float(svg.split('width="', 1)[1].split('"', 1)[0])
        assert width >= 640
        if fig.kind == "bar" and len(fig.series[0].x) >= 17:
            assert "rotate(-40" in svg  # crowded category labels are slanted, not overprinted
        if any(len(s.name) > 30 for s in fig.series):
            assert "…<title>" in svg  # long legend names are shortened, the full name kept as a tooltip
