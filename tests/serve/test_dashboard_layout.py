"""Dashboard layout in headless Chromium (issue 15 D.9), against a live gateway stressed on purpose: 40
features (half with long names), keys with long names, a burst of requests inside one minute, several
drift alerts whose thresholds are long floats, and injected alerts with long unbroken tokens.

At three window widths: the page is never wider than the window, no two text boxes overlap (SVG chart
text as oriented boxes through its transform, HTML text as the rectangles of its lines), every chart has
axes with tick labels and a unit, requests-per-minute shows a number, and alert figures are rounded with
the exact value kept in a tooltip. ``test_overlap_probe_can_fail`` shows the probe catches what it claims.
"""

from __future__ import annotations

import math
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
N_FEATURES = 40
WIDTHS = [1400, 1024, 800]
CHARTS = ["chart-traffic", "chart-timeline", "chart-drift", "chart-mmd"]


def _feature_names(n: int) -> list[str]:
    long = ["customer_account_balance_rolling_average_over_{i}_days_in_euro",
            "number of card transactions declined in the last {i} hours (all merchants)",
            "ratio{i}ofchargebackstopurchaseswithoutanyspacesatall"]
    return [long[i % 3].format(i=i) if i % 2 else f"f{i}" for i in range(n)]


_DECIMALS = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?(?![\w.])")


def _significant(number: str) -> int:
    """Significant digits written in a decimal literal ("0.00833" -> 3, "1.7370297088136677" -> 17)."""
    return len(re.sub(r"e.*$", "", number).lstrip("-").replace(".", "").lstrip("0")) or 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory):
    """A gateway in this process (uvicorn on a thread) after a burst of traffic; yields (url, keys, gateway)."""
    import uvicorn
    from sklearn.linear_model import LogisticRegression

    from modelshield import load_model
    from modelshield.serve.app import create_app
    from modelshield.serve.config import ServeConfig
    from modelshield.serve.monitors.base import Alert

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, N_FEATURES))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = load_model(LogisticRegression(max_iter=300).fit(X, y))
    cfg = ServeConfig.model_validate({"state_dir": str(tmp_path_factory.mktemp("dash-state")),
                                      "drift": {"window": 40, "every": 20}})
    app = create_app(model, cfg, reference=X, feature_names=_feature_names(N_FEATURES))
    gw = app.state.gateway
    users = [gw.keys.create(f"client-application-{i}-" + "with-a-really-long-name" * (i % 3), ["predict"])[1]
             for i in range(8)]
    admin = gw.keys.create("ops", ["admin"])[1]
    monitor = gw.keys.create("watch", ["monitor"])[1]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    url = f"http://127.0.0.1:{port}"
    if time.time() % 60 > 40:  # the whole burst inside one minute: the case where requests/min was blank
        time.sleep(60.5 - time.time() % 60)
    with httpx.Client(timeout=10) as c:
        for i in range(36):
            Xq = rng.normal(size=(10, N_FEATURES))
            if (i // 6) % 2:  # alternate drifted and normal stretches: drift alerts fire, re-arm, fire again
                Xq[:, (7 * i) % N_FEATURES] += 6.0
                Xq[:, (7 * i + 3) % N_FEATURES] -= 5.0
            r = c.post(f"{url}/v1/predict", json={"inputs": Xq.tolist()},
                       headers={"Authorization": f"Bearer {users[i % len(users)]}"})
            assert r.status_code == 200, r.text
            # one batch at a time through the monitors, in order: on a loaded machine the monitor thread would
            # otherwise take several batches at once, merged per key, and the drifted stretches would blur
            gw.wait_monitors()
        for i in range(20):  # more keys than the chart has rows for
            extra = gw.keys.create(f"batch-job-{i}", ["predict"])[1]
            assert c.post(f"{url}/v1/predict", json={"inputs": rng.normal(size=(1, N_FEATURES)).tolist()},
                          headers={"Authorization": f"Bearer {extra}"}).status_code == 200
        for u in users[:3]:  # rejected requests (wrong width) for the per-key bars
            assert c.post(f"{url}/v1/predict", json={"inputs": [[1.0, 2.0]]},
                          headers={"Authorization": f"Bearer {u}"}).status_code in (400, 422)
    deadline = time.monotonic() + 20  # the monitors run on a thread: wait for their drift alerts
    while gw.drift.n_seen < 36 * 10 + 20 and time.monotonic() < deadline:  # every accepted row monitored
        time.sleep(0.1)
    for i in range(4):  # alerts with long floats and long unbroken tokens in the message
        v = math.pi * 10 ** (i - 2)
        gw.raise_alert(Alert(monitor=f"inputs.stress{i}", severity="low", value=v, threshold=v / 3.000001,
                             message=f"score {v!r} over {v / 3.000001!r} on " + "unbroken_feature_name_" * 6))
    yield url, {"admin": admin, "monitor": monitor}, gw
    server.should_exit = True
    thread.join(15)


@pytest.fixture(scope="module")
def chrome():
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ms-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


# Every text box on the page, compared pairwise. SVG text: its bbox corners through its transform (oriented
# boxes, separating-axis test). HTML text: the client rectangles of each text node's lines. Two boxes
# overlap when they intersect by more than 1 px on every separating axis. Also SVG text outside its SVG.
_PROBE = """
const quad = (t) => { const b = t.getBBox(), m = t.getScreenCTM();
  return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]].map(([x, y]) => {
    const p = new DOMPoint(x, y).matrixTransform(m); return [p.x, p.y]; }); };
const rq = (r) => [[r.left, r.top], [r.right, r.top], [r.right, r.bottom], [r.left, r.bottom]];
const axes = (q) => [0, 1].map(i => { const dx = q[i + 1][0] - q[i][0], dy = q[i + 1][1] - q[i][1];
  const n = Math.hypot(dx, dy) || 1; return [-dy / n, dx / n]; });
const proj = (q, a) => { const v = q.map(p => p[0] * a[0] + p[1] * a[1]); return [Math.min(...v), Math.max(...v)]; };
const overlap = (q1, q2) => { for (const a of [...axes(q1), ...axes(q2)]) { const [a1, b1] = proj(q1, a), [a2, b2] = proj(q2, a);
  if (Math.min(b1, b2) - Math.max(a1, a2) <= 1) return false; } return true; };
const boxes = [], out = [];
document.querySelectorAll('svg text').forEach((t, k) => { if (t.getBBox().width > 0.5) {
  const q = quad(t); boxes.push({q, id: 's' + k, s: t.textContent.slice(0, 40)});
  const f = t.ownerSVGElement.getBoundingClientRect();
  if (q.some(([x, y]) => x < f.left - 1 || x > f.right + 1 || y < f.top - 1 || y > f.bottom + 1))
    out.push(['outside', t.textContent.slice(0, 40)]); } });
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
let n, k = 0;
while ((n = walk.nextNode())) { k++;
  if (!n.textContent.trim() || n.parentElement.closest('svg, title, script, style')) continue;
  const r = document.createRange(); r.selectNodeContents(n);
  for (const b of r.getClientRects()) if (b.width > 0.5 && b.height > 0.5) boxes.push({q: rq(b), id: 'h' + k, s: n.textContent.slice(0, 40)});
}
for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++)
  if (boxes[i].id !== boxes[j].id && overlap(boxes[i].q, boxes[j].q)) out.push(['overlap', boxes[i].s, boxes[j].s]);
return {problems: out, n: boxes.length};
"""


def _login(drv, url: str, key: str, width: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    drv.set_window_size(width, 1000)
    drv.get(f"{url}/dashboard/")
    drv.find_element(By.ID, "key").send_keys(key)
    drv.find_element(By.ID, "login-button").click()
    wait = WebDriverWait(drv, 30)
    wait.until(ec.visibility_of_element_located((By.ID, "main")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-drift svg polyline"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#table-alerts tbody tr")) >= 7)


def _stressed(gw) -> dict:
    """The gateway's snapshot, after checking the stress is really there: many features among the drift
    points, several alerts, all traffic inside one minute."""
    stats = gw.snapshot()
    assert len({p["psi_feature"] for p in stats["drift"]}) >= 3
    assert sum(a["monitor"].startswith("drift.") for a in stats["alerts"]) >= 3
    assert len(stats["timeline"]) == 1, stats["timeline"]
    return stats


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_page_fits_the_window_and_no_text_overlaps(live_gateway, chrome, width):
    url, keys, gw = live_gateway
    _stressed(gw)
    chrome.get_log("browser")  # only this page's messages below
    _login(chrome, url, keys["admin"], width)
    inner = chrome.execute_script("return window.innerWidth")
    assert inner <= width
    assert chrome.execute_script("return document.documentElement.scrollWidth") <= inner
    wraps = chrome.execute_script("return Array.from(document.querySelectorAll('.table-wrap, .chart'))"
                                  ".map(e => [e.scrollWidth, e.clientWidth])")
    assert all(sw <= cw + 1 for sw, cw in wraps), wraps  # nothing scrolls or is clipped sideways either
    probe = chrome.execute_script(_PROBE)
    assert probe["n"] > 100  # it measured the page (charts, tables, legends)
    assert probe["problems"] == [], probe["problems"][:10]
    logs = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    assert logs == [], logs


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_every_chart_has_axes_with_ticks_and_units(live_gateway, chrome, width):
    url, keys, _ = live_gateway
    _login(chrome, url, keys["admin"], width)
    for cid in CHARTS:
        svgs = chrome.find_elements("css selector", f"#{cid} svg")
        assert svgs, cid
        svg = svgs[0]
        assert len(svg.find_elements("css selector", "line.axis")) >= 2, cid
        assert len(svg.find_elements("css selector", "line.xtick")) >= 2, cid
        assert len(svg.find_elements("css selector", "line.ytick")) >= 2, cid
        assert svg.find_elements("css selector", "text.unit"), cid
        labels = [t.get_attribute("textContent") for t in svg.find_elements("css selector", "text.tick")]
        assert len([t for t in labels if t.strip()]) >= 4, (cid, labels)
    times = [t.get_attribute("textContent") for t in chrome.find_elements("css selector", "#chart-timeline text.tick")]
    assert sum(bool(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t)) for t in times) >= 2, times  # time on x
    units = " ".join(t.get_attribute("textContent") for t in chrome.find_elements("css selector", "text.unit"))
    assert "requests per minute" in units and "time (UTC)" in units and "PSI" in units and "MMD²" in units


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 800])
def test_long_feature_names_in_the_drift_legend_are_shortened_with_a_tooltip(live_gateway, chrome, width):
    url, keys, _ = live_gateway
    _login(chrome, url, keys["admin"], width)
    full = set(_feature_names(N_FEATURES))
    tips = chrome.execute_script(
        "return Array.from(document.querySelectorAll('#chart-drift text')).map(t => "
        "[t.firstChild ? t.firstChild.textContent : '', t.querySelector('title') ? t.querySelector('title').textContent : null])")
    shortened = [(s, tip) for s, tip in tips if tip in full]
    assert shortened, tips
    assert all(s.endswith("…") and tip.startswith(s[:-1]) for s, tip in shortened)


@pytest.mark.browser
@pytest.mark.slow
def test_requests_per_minute_shows_a_number_after_a_burst_within_one_minute(live_gateway, chrome):
    url, keys, gw = live_gateway
    stats = _stressed(gw)
    _login(chrome, url, keys["admin"], 1024)
    rpm = chrome.find_element("css selector", "#rpm")
    assert re.fullmatch(r"\d+(\.\d+)?", rpm.text), rpm.text
    assert float(rpm.text) > 0
    window_s = float(rpm.get_attribute("data-window-s"))
    total = sum(p.get("ok", 0) + p.get("rejected", 0) for p in stats["timeline"])
    if window_s < 60:  # the gateway is younger than a minute: the count is exact, the window stated
        assert float(rpm.get_attribute("data-count")) == total
        assert float(rpm.text) == pytest.approx(total * 60 / window_s, rel=0.02, abs=1)
        assert f"in the last {round(window_s)} s" in chrome.find_element("css selector", "#rpm-window").text
    assert chrome.find_elements("css selector", "#chart-timeline rect.bar")  # the one minute is drawn


@pytest.mark.browser
@pytest.mark.slow
def test_alert_figures_are_rounded_with_the_exact_value_in_a_tooltip(live_gateway, chrome):
    url, keys, gw = live_gateway
    stats = _stressed(gw)
    _login(chrome, url, keys["admin"], 1024)
    assert len(stats["alerts"]) >= 7
    cells = chrome.execute_script(
        "return Array.from(document.querySelectorAll('#table-alerts tbody tr')).map(tr => "
        "Array.from(tr.cells).map(td => [td.textContent, td.getAttribute('title')]))")
    assert len(cells) == len(stats["alerts"])
    n_rounded = 0
    for row in cells:
        msg, msg_title = row[3]
        a = next(a for a in stats["alerts"] if a["monitor"] == row[1][0] and a["message"] == (msg_title or msg))
        assert max(map(_significant, _DECIMALS.findall(msg)), default=0) <= 4, msg  # no long decimals left
        if msg != a["message"]:
            assert msg_title == a["message"]
            n_rounded += 1
        for (txt, title), rawv in ((row[4], a["value"]), (row[5], a["threshold"])):
            if rawv is None:
                continue
            assert _significant(txt) <= 3 or float(txt).is_integer(), (a["monitor"], txt)
            assert float(txt) == pytest.approx(rawv, rel=5e-3)
            if txt != repr(rawv):
                assert title is not None and float(title) == rawv
                n_rounded += 1
    assert n_rounded >= 8  # the stress alerts and the PSI threshold really needed rounding


@pytest.mark.browser
@pytest.mark.slow
def test_layout_redraws_on_resize_and_works_with_a_monitor_key(live_gateway, chrome):
    """A monitor key sees every chart; shrinking the window redraws at the new width, still without overlap."""
    url, keys, _ = live_gateway
    _login(chrome, url, keys["monitor"], 1400)
    wide = chrome.execute_script("return document.querySelector('#chart-traffic svg').getAttribute('width')")
    chrome.set_window_size(800, 1000)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(chrome, 10).until(lambda d: d.execute_script(
        "return document.querySelector('#chart-traffic svg').getAttribute('width')") != wide)
    assert chrome.execute_script("return document.documentElement.scrollWidth") <= \
        chrome.execute_script("return window.innerWidth")
    assert chrome.execute_script(_PROBE)["problems"] == []
    chrome.find_element("css selector", "#verify-button").click()  # chain verification stays admin-only
    WebDriverWait(chrome, 10).until(lambda d: "needs an admin key" in d.find_element("css selector", "#audit-status").text)
    assert chrome.find_element("css selector", "#main").is_displayed()


@pytest.mark.browser
@pytest.mark.slow
def test_overlap_probe_fails_on_the_live_page_when_a_label_is_moved(live_gateway, chrome):
    """The probe must catch an overlap on the real page: move one legend entry onto another."""
    url, keys, _ = live_gateway
    _login(chrome, url, keys["admin"], 1024)
    assert chrome.execute_script(_PROBE)["problems"] == []
    chrome.execute_script("const t = document.querySelectorAll('#chart-drift text.legend');"
                          "t[1].setAttribute('x', +t[0].getAttribute('x') + 3); t[1].setAttribute('y', t[0].getAttribute('y'));")
    kinds = [p[0] for p in chrome.execute_script(_PROBE)["problems"]]
    assert "overlap" in kinds


@pytest.mark.browser
def test_overlap_probe_can_fail(tmp_path, chrome):
    """On a page built to be wrong: overlapping SVG labels, overlapping HTML text, a label outside its SVG,
    a page wider than its window. A clean copy of the same elements passes."""
    bad = ('<html><body><svg width="300" height="100"><text x="10" y="50">overlapping label</text>'
           '<text x="20" y="52">overlapping label</text><text x="290" y="50">outside</text>'
           '<text x="10" y="90" transform="rotate(-30 10 90)">slanted label here</text></svg>'
           '<div style="position:relative"><span style="position:absolute;left:0">first text</span>'
           '<span style="position:absolute;left:8px">second text</span></div>'
           '<div style="width:3000px">wide</div></body></html>')
    good = ('<html><body><svg width="300" height="100"><text x="10" y="20">label one</text>'
            '<text x="10" y="50">label two</text></svg><p>first text</p><p>second text</p></body></html>')
    chrome.set_window_size(1000, 800)
    (tmp_path / "bad.html").write_text(bad)
    chrome.get((tmp_path / "bad.html").as_uri())
    problems = chrome.execute_script(_PROBE)["problems"]
    kinds = [p[0] for p in problems]
    assert "outside" in kinds
    assert ["overlap", "overlapping label", "overlapping label"] in problems
    assert ["overlap", "first text", "second text"] in problems
    assert chrome.execute_script("return document.documentElement.scrollWidth") > 1000
    (tmp_path / "good.html").write_text(good)
    chrome.get((tmp_path / "good.html").as_uri())
    assert chrome.execute_script(_PROBE)["problems"] == []
    assert chrome.execute_script("return document.documentElement.scrollWidth") <= 1000


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("value,digits", [(1.7370297088136677, "1.74"), (7.865255759497734e-23, "7.87e-23"),
                                          (0.00832706597395334, "0.00833"), (123456.789, "123000"), (3.14159e7, "3.14e+7"),
                                          (0.0313, "0.0313"), (42.0, "42"), (0.0, "0")])
def test_sig_rounds_to_three_significant_digits(tmp_path, chrome, value, digits, live_gateway):
    url, _, _ = live_gateway
    chrome.get(f"{url}/dashboard/")
    assert chrome.execute_script("return window.msDashboard.sig(arguments[0], 3)", value) == digits
    msg = f"PSI 1.915 on f22 exceeds {value!r}"
    out = chrome.execute_script("return window.msDashboard.roundNumbersIn(arguments[0])", msg)
    assert "1.915" in out and max(map(_significant, _DECIMALS.findall(out))) <= 4, out



@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_requests_per_minute_is_a_number_for_any_timeline(live_gateway, chrome, seed):
    """Generated per-minute timelines, gateway young or old, 'now' anywhere in its minute: the rate is a
    number whenever there was traffic in the last minute; the count lies between the current minute's
    and the sum of the buckets that overlap the window, and is exact when the gateway is younger than it."""
    url, _, _ = live_gateway
    chrome.get(f"{url}/dashboard/")
    rng = np.random.default_rng(seed)
    for _ in range(20):
        now = 1_800_000_000 + float(rng.uniform(0, 600))
        minute = math.floor(now / 60) * 60
        age = float(rng.choice([rng.uniform(0.5, 59), rng.uniform(60, 3600)]))
        started = now - age
        tl = [{"minute": m, "ok": int(rng.integers(0, 50)), "rejected": int(rng.integers(0, 5))}
              for m in range(minute - 180, minute + 1, 60) if m + 60 > started]
        tl[-1]["ok"] += 1  # traffic in the current minute
        r = chrome.execute_script("return window.msDashboard.recentRate(arguments[0], arguments[1], arguments[2])",
                                  tl, now, started)
        assert r["perMin"] is not None and math.isfinite(r["perMin"]) and r["perMin"] > 0, (tl, now, started, r)
        assert r["span"] == pytest.approx(min(60.0, age))
        cur = tl[-1]["ok"] + tl[-1]["rejected"]
        overlapping = sum(p["ok"] + p["rejected"] for p in tl if p["minute"] + 60 > now - 60)
        assert cur - 1e-9 <= r["count"] <= overlapping + 1e-9
        if age < 60:
            assert r["count"] == pytest.approx(sum(p["ok"] + p["rejected"] for p in tl))
            assert not r["estimated"]


@pytest.mark.browser
@pytest.mark.slow
def test_drift_reference_lines_are_the_thresholds_in_force(live_gateway, chrome):
    """The dashed PSI line is the monitor's threshold (raised by the bootstrap well above 0.2 here), not 0.2."""
    url, keys, gw = live_gateway
    thr = gw.snapshot()["drift_thresholds"]
    assert thr == {"psi": gw.drift.psi_threshold, "mmd2": gw.drift.mmd_threshold}
    assert thr["psi"] > 0.25  # 40 features, a 40-row window: the raised threshold differs from the default
    _login(chrome, url, keys["admin"], 1024)
    for cid, value in (("chart-drift", thr["psi"]), ("chart-mmd", thr["mmd2"])):
        shown = chrome.execute_script("return window.msDashboard.sig(arguments[0], 3)", value)
        legends = [t.get_attribute("textContent") for t in chrome.find_elements("css selector", f"#{cid} text.legend")]
        assert f"alert threshold {shown}" in legends, (cid, legends)


@pytest.mark.browser
@pytest.mark.slow
def test_traffic_chart_keeps_the_busiest_keys_and_counts_the_rest(live_gateway, chrome):
    url, keys, gw = live_gateway
    traffic = gw.snapshot()["traffic"]
    assert len(traffic) >= 28
    _login(chrome, url, keys["admin"], 1024)
    labels = chrome.execute_script("return Array.from(document.querySelectorAll('#chart-traffic text.tick[text-anchor=end]'))"
                                   ".map(t => t.firstChild.textContent)")
    assert len(labels) == 15 and labels[-1] == f"{len(traffic) - 14} other keys", labels
    titles = [t.get_attribute("textContent") for t in chrome.find_elements("css selector", "#chart-traffic rect title")]
    shown = sum(int(t.rsplit(": ", 1)[1]) for t in titles)
    assert shown == sum(v for t in traffic for k, v in t.items() if k not in ("key", "name"))  # nothing dropped


def _snapshot(seed: int) -> dict:
    """A generated /admin/stats answer: any number of keys, minutes, drift points (over any time span),
    features with long or short names, and alerts with long floats."""
    rng = np.random.default_rng(seed)
    now = 1_800_000_000 + float(rng.uniform(0, 3600))
    names = _feature_names(60)
    n_keys = int(rng.integers(1, 40))
    traffic = [{"key": f"{i:08x}", "name": f"key-{i}-" + "x" * int(rng.integers(0, 80)),
                "ok": int(rng.integers(0, 10 ** int(rng.integers(1, 6)))), "flagged": int(rng.integers(0, 20)),
                "rate_limited": int(rng.integers(0, 50))} for i in range(n_keys)]
    minute = math.floor(now / 60) * 60
    n_min = int(rng.integers(1, 120))
    timeline = [{"minute": minute - 60 * k, "ok": int(rng.integers(0, 5000)), "rejected": int(rng.integers(0, 300))}
                for k in range(n_min)][::-1]
    span = float(rng.choice([0.0, 0.3, 5.0, 120.0, 3 * 3600.0]))
    n_pts = int(rng.integers(1, 200))
    ts = np.sort(now - rng.uniform(0, span, n_pts)) if span else np.full(n_pts, now)
    drift = [{"time": float(t), "n_seen": 100 * (i + 1), "psi_max": float(rng.uniform(0, 5)),
              "psi_feature": names[int(rng.integers(0, len(names)))], "psi_prediction": float(rng.uniform(0, 3)),
              "ks_min_p": float(rng.uniform(0, 1e-3)), "ks_column": "p[0]", "mmd2": float(rng.uniform(0, 2)),
              "mmd2_threshold": 0.0083270659} for i, t in enumerate(ts)]
    alerts = [{"monitor": f"drift.m{i}", "message": f"value {rng.uniform(0, 10)!r} on {names[i % len(names)]}",
               "severity": "medium", "key_id": None, "value": float(rng.uniform(0, 10)) * 10.0 ** int(rng.integers(-8, 8)),
               "threshold": float(rng.uniform(0, 1)), "time": now - i, "data": {}, "action": ""}
              for i in range(int(rng.integers(0, 60)))]
    return {"now": now, "started": now - float(rng.uniform(1, 7200)), "model": {"framework": "sklearn", "adapter": "x"},
            "traffic": traffic, "timeline": timeline, "alerts": alerts, "drift": drift,
            "drift_thresholds": {"psi": float(rng.uniform(0.2, 3)), "mmd2": 0.0083270659},
            "extraction": {"prada": {}, "coverage": {}}, "audit": {"written": 1, "failed": 0, "last_verify": None}}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_generated_snapshots_keep_the_layout(live_gateway, chrome, seed):
    """The layout rules hold for generated data (drawn through the page's own render), not only for the
    one live burst: at each width, no overflow, no overlapping text, and ticks on both axes of every chart."""
    url, _, _ = live_gateway
    chrome.get(f"{url}/dashboard/")
    snap = _snapshot(seed)
    for width in WIDTHS:
        chrome.set_window_size(width, 1000)
        chrome.execute_script("document.getElementById('login').hidden = true;"
                              "document.getElementById('main').hidden = false; window.msDashboard.render(arguments[0])",
                              snap)
        assert chrome.execute_script("return document.documentElement.scrollWidth") <= \
            chrome.execute_script("return window.innerWidth"), (seed, width)
        probe = chrome.execute_script(_PROBE)
        assert probe["problems"] == [], (seed, width, probe["problems"][:6])
        for cid in CHARTS:
            ticks = chrome.execute_script(
                "const s = document.querySelector(arguments[0] + ' svg');"
                "return [s.querySelectorAll('line.xtick').length, s.querySelectorAll('line.ytick').length]", f"#{cid}")
            rows = min(len(snap["traffic"]), 15)  # the traffic chart's y axis has one tick per key row
            assert ticks[0] >= 2 and ticks[1] >= (rows if cid == "chart-traffic" else 2), (seed, width, cid, ticks)
        assert re.fullmatch(r"[\d.e+-]+", chrome.find_element("css selector", "#rpm").text)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("drift", [None, []])
def test_a_gateway_with_no_traffic_and_no_drift_monitor_renders_cleanly(live_gateway, chrome, drift):
    url, _, _ = live_gateway
    chrome.get(f"{url}/dashboard/")
    chrome.get_log("browser")  # only this page's messages below (the monitor-key test logs expected 403s)
    snap = {**_snapshot(0), "traffic": [], "timeline": [], "alerts": [], "drift": [],
            "drift_thresholds": None if drift is None else {"psi": 0.2, "mmd2": 0.01}}
    for width in WIDTHS:
        chrome.set_window_size(width, 1000)
        chrome.execute_script("document.getElementById('login').hidden = true;"
                              "document.getElementById('main').hidden = false; window.msDashboard.render(arguments[0])",
                              snap)
        assert chrome.execute_script("return document.documentElement.scrollWidth") <= \
            chrome.execute_script("return window.innerWidth")
        assert chrome.execute_script(_PROBE)["problems"] == []
        assert chrome.find_element("css selector", "#rpm").text == "0"
        assert "no traffic yet" in chrome.find_element("css selector", "#chart-traffic").text
        assert "waiting for data" in chrome.find_element("css selector", "#chart-drift").text
        assert len(chrome.find_elements("css selector", "#chart-timeline line.ytick")) >= 2  # axes even when empty
    assert [e for e in chrome.get_log("browser") if e["level"] == "SEVERE"] == []
