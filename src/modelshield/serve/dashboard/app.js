// modelshield dashboard: no external code, no inline script; the key lives only in this page's memory.
"use strict";
(function () {
  var key = null;
  var timer = null;
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2"];

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

  function frame(container, title) {
    clear(container);
    var svg = el("svg", { viewBox: "0 0 480 220", role: "img", "aria-label": title });
    container.appendChild(svg);
    return svg;
  }

  function barChart(container, labels, groups, title) {
    var svg = frame(container, title);
    var n = labels.length;
    var max = 1;
    groups.forEach(function (g) { g.values.forEach(function (v) { max = Math.max(max, v); }); });
    var left = 40, top = 20, w = 430, h = 160;
    svg.appendChild(el("line", { x1: left, y1: top + h, x2: left + w, y2: top + h, stroke: "#888" }));
    svg.appendChild(el("text", { x: 2, y: top + 8, class: "legend" }, max));
    if (n === 0) { svg.appendChild(el("text", { x: 200, y: 110 }, "no traffic yet")); return; }
    var slot = w / n, bw = Math.max(2, (slot * 0.8) / groups.length);
    labels.forEach(function (lab, i) {
      groups.forEach(function (g, j) {
        var v = g.values[i] || 0, bh = (v / max) * h;
        var r = el("rect", { x: left + i * slot + j * bw + 2, y: top + h - bh, width: bw - 1, height: bh, fill: g.color });
        r.appendChild(el("title", {}, g.name + " " + lab + ": " + v));
        svg.appendChild(r);
      });
      svg.appendChild(el("text", { x: left + i * slot + 2, y: top + h + 14, class: "legend" }, String(lab).slice(0, 12)));
    });
    groups.forEach(function (g, j) {
      svg.appendChild(el("rect", { x: left + 10 + j * 90, y: 4, width: 10, height: 10, fill: g.color }));
      svg.appendChild(el("text", { x: left + 24 + j * 90, y: 13, class: "legend" }, g.name));
    });
  }

  function lineChart(container, xs, series, title) {
    var svg = frame(container, title);
    var left = 40, top = 20, w = 430, h = 160;
    svg.appendChild(el("line", { x1: left, y1: top + h, x2: left + w, y2: top + h, stroke: "#888" }));
    svg.appendChild(el("line", { x1: left, y1: top, x2: left, y2: top + h, stroke: "#888" }));
    if (xs.length === 0) { svg.appendChild(el("text", { x: 160, y: 110 }, "waiting for data")); return; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (x1 === x0) { x1 = x0 + 1; }
    series.forEach(function (s, j) {
      var max = Math.max.apply(null, s.values.concat([s.ref || 0, 1e-9]));
      var pts = s.values.map(function (v, i) {
        return (left + ((xs[i] - x0) / (x1 - x0)) * w).toFixed(1) + "," + (top + h - (v / max) * h).toFixed(1);
      });
      svg.appendChild(el("polyline", { points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": 2 }));
      if (s.ref) {
        var y = top + h - (s.ref / max) * h;
        svg.appendChild(el("line", { x1: left, y1: y, x2: left + w, y2: y, stroke: s.color, "stroke-dasharray": "4 3" }));
      }
      svg.appendChild(el("rect", { x: left + 10 + j * 140, y: 4, width: 10, height: 10, fill: s.color }));
      svg.appendChild(el("text", { x: left + 24 + j * 140, y: 13, class: "legend" }, s.name + " (max " + max.toPrecision(3) + ")"));
    });
  }

  function row(tbody, cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (c) { var td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
    tbody.appendChild(tr);
  }

  function fmt(v, d) { return (v === null || v === undefined) ? "-" : Number(v).toFixed(d); }

  function render(s) {
    $("model").textContent = (s.model.framework || "") + " " + (s.model.adapter || "");
    var traffic = s.traffic || [];
    var labels = traffic.map(function (t) { return t.name; });
    var ok = traffic.map(function (t) { return (t.ok || 0) + (t.flagged || 0); });
    var rej = traffic.map(function (t) {
      var n = 0;
      Object.keys(t).forEach(function (k) { if (["key", "name", "ok", "flagged"].indexOf(k) < 0) { n += t[k]; } });
      return n;
    });
    barChart($("chart-traffic"), labels, [{ name: "accepted", values: ok, color: COLORS[0] },
      { name: "rejected", values: rej, color: COLORS[1] }], "traffic per key");
    var tl = s.timeline || [];
    lineChart($("chart-timeline"), tl.map(function (p) { return p.minute; }),
      [{ name: "accepted", values: tl.map(function (p) { return p.ok || 0; }), color: COLORS[0] },
       { name: "rejected", values: tl.map(function (p) { return p.rejected || 0; }), color: COLORS[1] }], "requests per minute");
    var dr = s.drift || [];
    lineChart($("chart-drift"), dr.map(function (p) { return p.n_seen; }),
      [{ name: "PSI (max feature)", values: dr.map(function (p) { return p.psi_max; }), color: COLORS[2], ref: 0.2 },
       { name: "MMD²", values: dr.map(function (p) { return p.mmd2; }), color: COLORS[3],
         ref: dr.length ? dr[dr.length - 1].mmd2_threshold : 0 }], "drift");
    var ex = $("table-extraction").tBodies[0]; clear(ex);
    var pr = s.extraction.prada || {}, cv = s.extraction.coverage || {};
    Object.keys(Object.assign({}, pr, cv)).forEach(function (k) {
      var p = pr[k] || {}, c = cv[k] || {};
      row(ex, [k, p.queries || c.queries || 0, fmt(p.W, 3), fmt(c.coverage_ratio, 2),
        (p.flagged || c.flagged) ? "yes" : "no"]);
    });
    var al = $("table-alerts").tBodies[0]; clear(al);
    (s.alerts || []).slice().reverse().forEach(function (a) {
      row(al, [new Date(a.time * 1000).toISOString().slice(11, 19), a.monitor, a.key_id || "", a.message, a.action || ""]);
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
    key = null;
    if (timer) { clearInterval(timer); timer = null; }
    $("main").hidden = true; $("login").hidden = false;
    $("login-error").textContent = msg || "";
  }

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
