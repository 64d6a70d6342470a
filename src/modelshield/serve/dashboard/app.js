// modelshield dashboard: no external code, no inline script; the key lives only in this page's memory.
// Charts are SVG drawn at the container's pixel width (redrawn on resize), so text keeps its size and
// every label can be measured: legends flow into rows and long names are shortened (full name as a
// tooltip), axes carry ticks and units, tick labels are spaced by their measured width.
"use strict";
(function () {
  var key = null;
  var timer = null;
  var last = null;  // the last snapshot, redrawn on resize
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f"];
  var LINE = 16, GAP = 6, LEGEND_MAX = 240;  // a legend entry is at most this wide (px)

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) { node.textContent = String(text); }
    return node;
  }

  function api(path) {
    return fetch(path, { headers: { "Authorization": "Bearer " + key }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { var e = new Error("HTTP " + r.status); e.status = r.status; throw e; }
        return r.json();
      });
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  // -- numbers -------------------------------------------------------------------------------------
  // a number for display: `digits` significant digits, no exponent between 1e-3 and 1e6
  function sig(v, digits) {
    if (v === null || v === undefined || v === "") { return "-"; }
    var x = Number(v);
    if (!isFinite(x)) { return String(v); }
    if (x === 0) { return "0"; }
    var a = Math.abs(x);
    if (a >= 1e-3 && a < 1e6) { return String(Number(x.toPrecision(digits || 3))); }
    return x.toExponential((digits || 3) - 1).replace(/\.?0+e/, "e");
  }

  // a message with long decimals in it ("exceeds 1.7370297088136677") rounded to 4 significant digits;
  // integers and short decimals ("p=7.87e-23", "0.0313") are left as written
  var DECIMAL = /(^|[^\w.])(-?\d+\.\d+(?:e[-+]?\d+)?)(?![\w.])/g;
  function significant(num) { return num.replace(/e.*$/, "").replace(/[-.]/g, "").replace(/^0+/, "").length; }
  function roundNumbersIn(text) {
    return String(text).replace(DECIMAL, function (m, pre, num) {
      return pre + (significant(num) > 4 ? sig(Number(num), 4) : num);
    });
  }

  // "nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    var raw = (hi - lo) / Math.max(1, count), p = Math.pow(10, Math.floor(Math.log10(raw))), step = p;
    [1, 2, 5, 10].some(function (m) { step = m * p; return m * p >= raw; });
    var start = Math.floor(lo / step + 1e-9) * step, ticks = [];
    for (var t = start; t <= hi + step * 1e-6 && ticks.length < 50; t += step) { ticks.push(Number(t.toPrecision(12))); }
    if (ticks[ticks.length - 1] < hi) { ticks.push(Number((start + ticks.length * step).toPrecision(12))); }
    return ticks;
  }

  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  function clock(t, withSeconds) {
    var s = new Date(t * 1000).toISOString();
    return withSeconds ? s.slice(11, 19) : s.slice(11, 16);
  }

  // -- measured text -------------------------------------------------------------------------------
  function width(node) { return node.getComputedTextLength(); }

  // a text node no wider than maxW: shortened with an ellipsis, the full text kept as a tooltip
  function fit(node, full, maxW) {
    node.textContent = full;
    if (width(node) <= maxW) { return node; }
    var lo = 0, hi = full.length;
    while (lo < hi) {  // the longest prefix that fits with the ellipsis
      var mid = Math.ceil((lo + hi) / 2);
      node.textContent = full.slice(0, mid) + "…";
      if (width(node) <= maxW) { lo = mid; } else { hi = mid - 1; }
    }
    node.textContent = full.slice(0, lo) + "…";
    node.appendChild(el("title", {}, full));
    return node;
  }

  function text(svg, x, y, s, attrs) {
    var a = Object.assign({ x: x, y: y, class: "tick" }, attrs || {});
    var node = el("text", a, s);
    svg.appendChild(node);
    return node;
  }

  // legend entries laid out left to right, wrapping into rows; no entry wider than LEGEND_MAX or the chart.
  // Returns the height used. Each entry's box is kept on the svg for the layout tests.
  function legend(svg, entries, x0, y0, maxW) {
    var x = x0, y = y0, rows = entries.length ? 1 : 0, boxes = [];
    entries.forEach(function (e) {
      var t = text(svg, 0, 0, "", { class: "legend" });
      fit(t, e.name, Math.max(20, Math.min(maxW, LEGEND_MAX) - 14));
      var w = 14 + width(t);
      if (x > x0 && x + w > x0 + maxW) { x = x0; y += LINE; rows += 1; }
      var sw = e.dash ? el("line", { x1: x, y1: y + 5, x2: x + 10, y2: y + 5, stroke: e.color, "stroke-width": 2,
        "stroke-dasharray": "4 2" }) : el(e.marker ? "circle" : "rect", e.marker
        ? { cx: x + 5, cy: y + 5, r: 4, fill: e.color } : { x: x, y: y, width: 10, height: 10, fill: e.color });
      svg.insertBefore(sw, t);
      t.setAttribute("x", x + 14); t.setAttribute("y", y + 9);
      boxes.push([x, y, w, 12]);
      x += w + 12;
    });
    svg.__legendBoxes = boxes;
    return rows * LINE;
  }

  function frame(container, title, height) {
    clear(container);
    var W = Math.max(200, Math.floor(container.clientWidth));
    var svg = el("svg", { width: W, height: height || 240, role: "img", "aria-label": title, class: "plot" });
    container.appendChild(svg);
    return { svg: svg, W: W };
  }

  // a y axis with ticks (labels measured for the left margin); returns {left, scale}
  function yAxis(svg, lo, hi, top, h, unit, W) {
    var ticks = niceTicks(lo, hi, Math.max(2, Math.floor(h / 36)));
    var ymin = ticks[0], ymax = ticks[ticks.length - 1];
    var labels = ticks.map(function (v) { return text(svg, 0, 0, sig(v, 3), { "text-anchor": "end" }); });
    var left = 8 + Math.max.apply(null, labels.map(width).concat([8])) + 6;
    var scale = function (v) { return top + h - ((v - ymin) / (ymax - ymin)) * h; };
    ticks.forEach(function (v, i) {
      var y = scale(v);
      labels[i].setAttribute("x", left - 6); labels[i].setAttribute("y", y + 4);
      svg.appendChild(el("line", { x1: left - 4, y1: y, x2: left, y2: y, stroke: "#888", class: "ytick" }));
      svg.appendChild(el("line", { x1: left, y1: y, x2: W - 8, y2: y, stroke: "#eef0f3" }));
    });
    svg.appendChild(el("line", { x1: left, y1: top, x2: left, y2: top + h, stroke: "#888", class: "axis" }));
    fit(text(svg, 2, top - 12, "", { class: "unit" }), unit, W - 4);
    return { left: left, scale: scale, max: ymax };
  }

  // an x axis of times (UTC): the step is the smallest whose labels do not touch
  function timeAxis(svg, t0, t1, left, right, y, unit) {
    var span = Math.max(1e-9, t1 - t0), px = right - left;
    var probe = text(svg, 0, 0, "00:00:00"), lw = width(probe); svg.removeChild(probe);
    var step = TIME_STEPS[TIME_STEPS.length - 1];
    TIME_STEPS.some(function (s) { step = s; return (s / span) * px >= lw + 10; });
    var withSeconds = step < 60;
    var scale = function (t) { return left + ((t - t0) / span) * px; };
    svg.appendChild(el("line", { x1: left, y1: y, x2: right, y2: y, stroke: "#888", class: "axis" }));
    for (var t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
      var x = scale(t), lab = clock(t, withSeconds);
      var tw = withSeconds ? lw : lw * 5 / 8;
      if (x - tw / 2 < 2 || x + tw / 2 > right + 29) { continue; }  // labels stay inside the svg
      svg.appendChild(el("line", { x1: x, y1: y, x2: x, y2: y + 4, stroke: "#888", class: "xtick" }));
      text(svg, x, y + 17, lab, { "text-anchor": "middle" });
    }
    var u = text(svg, right, y + 34, "", { "text-anchor": "end", class: "unit" });
    fit(u, unit, right - left);
    return scale;
  }

  // a numeric x axis (counts): ticks spaced by their measured labels
  function valueAxis(svg, hi, left, right, y, unit, W) {
    var n = Math.max(2, Math.floor((right - left) / 60)), ticks = niceTicks(0, Math.max(hi, 1), n);
    var xmax = ticks[ticks.length - 1];
    var scale = function (v) { return left + (v / xmax) * (right - left); };
    svg.appendChild(el("line", { x1: left, y1: y, x2: right, y2: y, stroke: "#888", class: "axis" }));
    var lastRight = -Infinity;
    ticks.forEach(function (v) {
      var x = scale(v), t = text(svg, x, y + 17, sig(v, 3), { "text-anchor": "middle" }), w = width(t);
      var lx = Math.min(x - w / 2, W - 2 - w);  // the last label ends at the svg's edge, not past it
      if (lx < lastRight + 6) { svg.removeChild(t); return; }
      if (lx < x - w / 2) { t.setAttribute("text-anchor", "end"); t.setAttribute("x", W - 2); }
      lastRight = lx + w;
      svg.appendChild(el("line", { x1: x, y1: y, x2: x, y2: y + 4, stroke: "#888", class: "xtick" }));
    });
    fit(text(svg, right, y + 34, "", { "text-anchor": "end", class: "unit" }), unit, right - left);
    return scale;
  }

  // -- charts --------------------------------------------------------------------------------------
  // traffic per key: one horizontal stacked bar per key (keys on y, requests on x): any number of keys
  function trafficChart(container, labels, groups, title) {
    var rowH = 18, n = labels.length;
    var f = frame(container, title, 0), svg = f.svg, W = f.W;
    var lh = legend(svg, groups.map(function (g) { return { name: g.name, color: g.color }; }), 4, 4, W - 8);
    var top = 4 + lh + GAP;
    if (n === 0) {
      text(svg, 4, top + 14, "no traffic yet", { class: "legend" });
      svg.setAttribute("height", top + 24);
      return;
    }
    var names = labels.map(function (lab) { return text(svg, 0, 0, "", { "text-anchor": "end" }); });
    var maxLabel = Math.max(60, Math.floor(W * 0.35));
    names.forEach(function (t, i) { fit(t, String(labels[i]), maxLabel); });
    var left = 6 + Math.max.apply(null, names.map(width)) + 8, right = W - 16;
    var totals = labels.map(function (_, i) { return groups.reduce(function (s, g) { return s + (g.values[i] || 0); }, 0); });
    var bottom = top + n * rowH;
    var scale = valueAxis(svg, Math.max.apply(null, totals), left, right, bottom, "requests since start", W);
    svg.appendChild(el("line", { x1: left, y1: top, x2: left, y2: bottom, stroke: "#888", class: "axis" }));
    labels.forEach(function (lab, i) {
      var y = top + i * rowH, x = left;
      names[i].setAttribute("x", left - 6); names[i].setAttribute("y", y + rowH / 2 + 4);
      svg.appendChild(el("line", { x1: left - 4, y1: y + rowH / 2, x2: left, y2: y + rowH / 2, stroke: "#888", class: "ytick" }));
      groups.forEach(function (g) {
        var v = g.values[i] || 0, w = scale(v) - left;
        var r = el("rect", { x: x, y: y + 3, width: Math.max(0, w), height: rowH - 6, fill: g.color, class: "bar" });
        r.appendChild(el("title", {}, g.name + " " + lab + ": " + v));
        svg.appendChild(r);
        x += w;
      });
    });
    svg.setAttribute("height", bottom + 40);
  }

  // requests per minute: stacked bars per minute bucket, time (UTC) on x; the current minute is partial
  function timelineChart(container, tl, now, title) {
    var f = frame(container, title, 0), svg = f.svg, W = f.W, h = 140;
    var lh = legend(svg, [{ name: "accepted", color: COLORS[0] }, { name: "rejected", color: COLORS[1] }], 4, 4, W - 8);
    var top = 4 + lh + GAP + 20;
    var max = Math.max.apply(null, tl.map(function (p) { return (p.ok || 0) + (p.rejected || 0); }).concat([1]));
    var y = yAxis(svg, 0, max, top, h, "requests per minute", W);
    var right = W - 30, t1 = Math.ceil(now / 60) * 60;
    var t0 = Math.min(t1 - 10 * 60, tl.length ? tl[0].minute : t1);
    var xs = timeAxis(svg, t0, t1, y.left, right, top + h, "time (UTC), one bar per minute");
    var bw = Math.max(1, xs(t0 + 60) - xs(t0) - 2);
    tl.forEach(function (p) {
      var base = top + h;
      [["accepted", p.ok || 0, COLORS[0]], ["rejected", p.rejected || 0, COLORS[1]]].forEach(function (s) {
        var yy = y.scale(s[1]) - (top + h - base);
        var r = el("rect", { x: xs(p.minute) + 1, y: yy, width: bw, height: Math.max(0, base - yy), fill: s[2], class: "bar" });
        var partial = p.minute + 60 > now ? " (current minute, " + Math.round(now - p.minute) + " s so far)" : "";
        r.appendChild(el("title", {}, s[0] + " " + clock(p.minute, false) + ": " + s[1] + partial));
        svg.appendChild(r);
        base = yy;
      });
    });
    if (!tl.length) { text(svg, y.left + 10, top + h / 2, "no requests yet", { class: "legend" }); }
    svg.setAttribute("height", top + h + 40);
  }

  // one drift statistic over time (UTC) with its alert threshold; optional coloured markers per category
  function driftChart(container, pts, opts) {
    var f = frame(container, opts.title, 0), svg = f.svg, W = f.W, h = 120;
    var entries = opts.series.map(function (s) { return { name: s.name, color: s.color }; });
    if (opts.threshold !== null && opts.threshold !== undefined) {
      entries.push({ name: "alert threshold " + sig(opts.threshold, 3), color: "#6b7280", dash: true });
    }
    (opts.markers || []).forEach(function (m) { entries.push({ name: m.name, color: m.color, marker: true }); });
    var lh = legend(svg, entries, 4, 4, W - 8);
    var top = 4 + lh + GAP + 20;
    if (!pts.length) {
      text(svg, 4, top + 4, "waiting for data (one point per drift evaluation)", { class: "legend" });
      svg.setAttribute("height", top + 14);
      return;
    }
    var hi = opts.threshold || 0;
    opts.series.forEach(function (s) { pts.forEach(function (p) { hi = Math.max(hi, s.get(p) || 0); }); });
    var y = yAxis(svg, 0, hi > 0 ? hi : 1, top, h, opts.unit, W);
    var right = W - 30, t0 = pts[0].time, t1 = pts[pts.length - 1].time, pad = Math.max(0, 2 - (t1 - t0)) / 2;
    t0 -= pad; t1 += pad;  // at least two seconds wide, the points centred
    var xs = timeAxis(svg, t0, t1, y.left, right, top + h, "time (UTC) of each drift evaluation");
    if (opts.threshold !== null && opts.threshold !== undefined) {
      var ty = y.scale(opts.threshold);
      svg.appendChild(el("line", { x1: y.left, y1: ty, x2: right, y2: ty, stroke: "#6b7280", "stroke-dasharray": "4 2" }));
    }
    opts.series.forEach(function (s) {
      var d = pts.map(function (p) { return xs(p.time).toFixed(1) + "," + y.scale(s.get(p) || 0).toFixed(1); });
      svg.appendChild(el("polyline", { points: d.join(" "), fill: "none", stroke: s.color, "stroke-width": 2 }));
    });
    if (opts.markerOf) {
      pts.forEach(function (p) {
        var m = opts.markerOf(p), c = el("circle", { cx: xs(p.time), cy: y.scale(opts.series[0].get(p) || 0), r: 3, fill: m.color });
        c.appendChild(el("title", {}, m.label + ": " + sig(opts.series[0].get(p), 4) + " at " + clock(p.time, true)));
        svg.appendChild(c);
      });
    }
    svg.setAttribute("height", top + h + 40);
  }

  // -- requests per minute as a number ---------------------------------------------------------------
  // requests in the last 60 s (or since start when the gateway is younger), from per-minute buckets:
  // a bucket wholly inside the window counts fully, one that straddles its start counts pro rata
  function recentRate(tl, now, started) {
    var w0 = Math.max(now - 60, started || now - 60), span = now - w0, n = 0, estimated = false;
    tl.forEach(function (p) {
      var a = Math.max(p.minute, started || p.minute), b = Math.min(p.minute + 60, now);
      var c = (p.ok || 0) + (p.rejected || 0);
      if (b <= a) { n += p.minute >= w0 ? c : 0; return; }
      var frac = Math.max(0, Math.min(b, now) - Math.max(a, w0)) / (b - a);
      if (frac > 0 && frac < 1) { estimated = true; }
      n += c * Math.min(1, frac);
    });
    return { count: n, span: span, estimated: estimated, perMin: span >= 1 ? (n * 60) / span : null };
  }

  function showRate(tl, now, started) {
    var r = recentRate(tl, now, started), out = $("rpm"), note = $("rpm-window");
    var secs = Math.max(0, Math.round(r.span));
    if (r.perMin === null) {
      out.textContent = sig(Math.round(r.count), 3);
      note.textContent = "requests so far (gateway started under a second ago)";
    } else {
      out.textContent = sig(r.perMin, 3);
      note.textContent = "requests/min — " + (r.estimated ? "≈" : "") + Math.round(r.count) + " requests in the last " +
        secs + " s" + (secs < 60 ? " (since the gateway started; rate over those seconds)" : "");
    }
    out.setAttribute("data-count", String(r.count));
    out.setAttribute("data-window-s", String(r.span));
  }

  // -- tables ----------------------------------------------------------------------------------------
  function row(tbody, cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (c) {
      var td = document.createElement("td");
      if (c !== null && typeof c === "object") {
        td.textContent = c.text;
        if (c.title !== undefined && c.title !== c.text) { td.title = c.title; }
        if (c.cls) { td.className = c.cls; }
      } else { td.textContent = c; }
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }

  function num(v, digits) {  // a rounded number whose raw value stays in the title
    return (v === null || v === undefined) ? { text: "-" } : { text: sig(v, digits), title: String(v), cls: "num" };
  }

  // -- the page --------------------------------------------------------------------------------------
  var MAX_KEYS = 15;  // the busiest keys get a bar each, the rest share one ("N other keys")
  function total(t) {
    var n = 0;
    Object.keys(t).forEach(function (k) { if (k !== "key" && k !== "name") { n += t[k] || 0; } });
    return n;
  }
  function topKeys(traffic, max) {
    if (traffic.length <= max) { return traffic; }
    var sorted = traffic.slice().sort(function (a, b) { return total(b) - total(a); });
    var rest = sorted.slice(max - 1), other = { key: "", name: rest.length + " other keys" };
    rest.forEach(function (t) {
      Object.keys(t).forEach(function (k) { if (k !== "key" && k !== "name") { other[k] = (other[k] || 0) + t[k]; } });
    });
    return sorted.slice(0, max - 1).concat([other]);
  }

  function render(s) {
    last = s;
    $("model").textContent = (s.model.framework || "") + " " + (s.model.adapter || "");
    var traffic = topKeys(s.traffic || [], MAX_KEYS);
    var labels = traffic.map(function (t) { return t.name; });
    var ok = traffic.map(function (t) { return (t.ok || 0) + (t.flagged || 0); });
    var rej = traffic.map(function (t) {
      var n = 0;
      Object.keys(t).forEach(function (k) { if (["key", "name", "ok", "flagged"].indexOf(k) < 0) { n += t[k]; } });
      return n;
    });
    trafficChart($("chart-traffic"), labels, [{ name: "accepted", values: ok, color: COLORS[0] },
      { name: "rejected", values: rej, color: COLORS[1] }], "traffic per key");
    var tl = s.timeline || [];
    showRate(tl, s.now, s.started);
    timelineChart($("chart-timeline"), tl, s.now, "requests per minute");
    var dr = s.drift || [];
    var feats = [], colorOf = {};
    dr.forEach(function (p) { if (!(p.psi_feature in colorOf)) { colorOf[p.psi_feature] = null; feats.push(p.psi_feature); } });
    var shown = feats.slice(-6);  // the six most recent most-drifted features get a colour, the rest one grey
    shown.forEach(function (f, i) { colorOf[f] = COLORS[(i + 2) % COLORS.length]; });
    var markers = shown.map(function (f) { return { name: f, color: colorOf[f] }; });
    if (feats.length > shown.length) { markers.push({ name: (feats.length - shown.length) + " other features", color: "#9ca3af" }); }
    var thr = s.drift_thresholds || {};
    driftChart($("chart-drift"), dr, {
      title: "PSI over time", unit: "PSI (largest over the input features)",
      series: [{ name: "PSI, most-drifted feature", color: "#1d2330", get: function (p) { return p.psi_max; } },
               { name: "PSI of the predictions", color: COLORS[0], get: function (p) { return p.psi_prediction; } }],
      threshold: thr.psi === undefined ? null : thr.psi, markers: markers,
      markerOf: function (p) { return { color: colorOf[p.psi_feature] || "#9ca3af", label: p.psi_feature }; },
    });
    driftChart($("chart-mmd"), dr, {
      title: "MMD² over time", unit: "MMD² (standardised features)",
      series: [{ name: "MMD² of the window", color: COLORS[3], get: function (p) { return p.mmd2; } }],
      threshold: thr.mmd2 !== undefined ? thr.mmd2 : (dr.length ? dr[dr.length - 1].mmd2_threshold : null),
    });
    var ex = $("table-extraction").tBodies[0]; clear(ex);
    var pr = s.extraction.prada || {}, cv = s.extraction.coverage || {};
    Object.keys(Object.assign({}, pr, cv)).forEach(function (k) {
      var p = pr[k] || {}, c = cv[k] || {};
      row(ex, [k, p.queries || c.queries || 0, num(p.W, 3), num(c.coverage_ratio, 3),
        (p.flagged || c.flagged) ? "yes" : "no"]);
    });
    var al = $("table-alerts").tBodies[0]; clear(al);
    (s.alerts || []).slice().reverse().forEach(function (a) {
      var msg = roundNumbersIn(a.message);
      row(al, [{ text: new Date(a.time * 1000).toISOString().slice(11, 19), cls: "time" }, a.monitor, a.key_id || "",
        { text: msg, title: a.message, cls: "msg" }, num(a.value, 3), num(a.threshold, 3), a.action || ""]);
    });
    var au = s.audit || {};
    $("audit-counts").textContent = "records written since start: " + au.written + ", failed writes: " + au.failed;
    if (au.last_verify) { showVerify(au.last_verify); }
  }

  function showVerify(v) {
    var p = $("audit-status");
    p.className = v.ok ? "ok" : "bad";
    p.textContent = v.ok ? "intact: " + v.n_records + " records, head " + String(v.head_hash).slice(0, 12) +
      (v.anchor ? " (reaches the anchored record " + v.anchor.seq + ")" : " (no anchored head yet)")
      : "BROKEN: " + v.reason;
  }

  function verifyNow() {  // a full chain walk needs an admin key: a monitor key still sees the dashboard
    return api("/admin/audit/verify").then(showVerify).catch(function (e) {
      var p = $("audit-status");
      p.className = "";
      p.textContent = e.status === 403 ? "verifying the chain needs an admin key"
        : "verification failed (HTTP " + (e.status || "?") + ")";
    });
  }

  function refresh() {
    return api("/admin/stats").then(render).catch(function (e) {
      if (e.status === 401 || e.status === 403) { logout("key rejected (HTTP " + e.status + ")"); }
    });
  }

  function logout(msg) {
    key = null; last = null;
    if (timer) { clearInterval(timer); timer = null; }
    $("main").hidden = true; $("login").hidden = false;
    $("login-error").textContent = msg || "";
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    if (resizeTimer) { clearTimeout(resizeTimer); }
    resizeTimer = setTimeout(function () { if (last && !$("main").hidden) { render(last); } }, 100);
  });

  // for the layout tests: the helpers above, and a redraw of the last snapshot now
  window.msDashboard = { sig: sig, roundNumbersIn: roundNumbersIn, niceTicks: niceTicks, recentRate: recentRate,
    render: render,
    redraw: function () { if (last) { render(last); } return !!last; } };

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    key = $("key").value.trim();
    $("key").value = "";
    api("/admin/stats").then(function (s) {
      $("login").hidden = true; $("main").hidden = false; $("login-error").textContent = "";
      render(s);
      timer = setInterval(refresh, 5000);
      verifyNow();
    }).catch(function (e) { logout(e.status ? "key rejected (HTTP " + e.status + ")" : "cannot reach the gateway"); });
  });
  $("verify-button").addEventListener("click", verifyNow);
  $("logout-button").addEventListener("click", function () { logout(""); });
}());
