"""Drift, input defense, output hardening and monitor state persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modelshield.serve.monitors import (
    Batch,
    CoverageMonitor,
    DriftMonitor,
    InputDefense,
    InputSchema,
    MahalanobisDetector,
    Monitor,
    PradaMonitor,
    load_state,
    save_state,
)
from modelshield.serve.monitors.drift import mmd2, psi
from modelshield.serve.outputs import OutputHardening


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def ref(breast_cancer, sk_logreg):
    Xtr, Xte, _, _ = breast_cancer
    return Xtr.astype(np.float64), Xte.astype(np.float64), sk_logreg


def _feed(mon, X, model, key="k", step=25):
    alerts = []
    for i in range(0, len(X), step):
        xb = X[i : i + step]
        alerts += mon.update(Batch(X=xb, proba=model.predict_proba(xb), key_id=key))
    return alerts


def test_psi_and_mmd_basics():
    r = np.full((10, 1), 0.1)
    assert psi(r, r)[0] == pytest.approx(0.0)
    c = np.array([[0.5]] + [[0.5 / 9]] * 9)
    assert psi(r, c)[0] > 0.2
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    assert mmd2(a, b, 0.5) < mmd2(a, b + 1.0, 0.5)


def test_drift_quiet_on_same_distribution_and_loud_on_shift(ref):
    Xtr, Xte, model = ref
    mon = DriftMonitor(Xtr, model.predict_proba(Xtr), window=150, every=50)
    assert isinstance(mon, Monitor)
    assert _feed(mon, Xte, model) == []  # held-out data from the same distribution
    assert mon.history and mon.last["psi_max"] < mon.psi_threshold
    shifted = Xte.copy()
    shifted[:, :5] += 1.5  # five features move by 1.5 standard deviations
    alerts = _feed(mon, shifted, model)
    kinds = {a.monitor for a in alerts}
    assert {"drift.psi", "drift.ks", "drift.mmd"} <= kinds
    assert mon.last["psi_max"] > mon.psi_threshold and mon.last["mmd2"] > mon.mmd_threshold
    # one alert per episode: feeding more shifted data does not repeat them
    assert _feed(mon, shifted, model) == []


def test_prediction_drift_alone_is_seen(ref):
    Xtr, Xte, model = ref
    mon = DriftMonitor(Xtr, model.predict_proba(Xtr), window=100, every=50)
    # only malignant-looking rows: the prediction distribution moves
    pos = Xte[model.predict(Xte) == 0]
    _feed(mon, np.vstack([pos, pos]), model)
    assert mon.last["psi_prediction"] > 0.2


def test_monitor_state_round_trips(ref, tmp_path):
    Xtr, Xte, model = ref
    P = model.predict_proba(Xtr)
    mons = [DriftMonitor(Xtr, P, window=100, every=50), PradaMonitor(Xtr), CoverageMonitor(Xtr, P)]
    for m in mons:
        _feed(m, Xte[:150], model)
    save_state(mons, tmp_path / "state.json")
    json.loads((tmp_path / "state.json").read_text())
    fresh = [DriftMonitor(Xtr, P, window=100, every=50), PradaMonitor(Xtr), CoverageMonitor(Xtr, P)]
    assert load_state(fresh, tmp_path / "state.json")
    for a, b in zip(mons, fresh):
        assert json.dumps(a.state(), sort_keys=True) == json.dumps(b.state(), sort_keys=True)
    # and they continue identically
    for a, b in zip(mons, fresh):
        ra = [x.message for x in _feed(a, Xte[150:], model)]
        rb = [x.message for x in _feed(b, Xte[150:], model)]
        assert ra == rb


def test_input_schema_and_ood(ref):
    Xtr, Xte, model = ref
    schema = InputSchema(Xtr)
    assert (schema.violations(Xte) > 0).mean() < 0.05
    bad = Xte[:3].copy()
    bad[0, 0] = np.nan
    bad[1, 2] = schema.high[2] + 1
    assert schema.violations(bad).tolist()[:2] == [1, 1]
    det = MahalanobisDetector().fit(model, Xtr)
    d = InputDefense(schema, {"ood": det}, model=model, X_ref=Xtr, policy="reject", quantile=0.99)
    clean = d.screen(Xte)
    assert clean.flagged.mean() < 0.1
    noise = np.random.default_rng(0).normal(0, 3, size=(20, Xtr.shape[1]))
    s = d.screen(noise)
    assert s.flagged.all() and s.decision == "rejected"
    assert InputDefense(schema, {"ood": det}, model=model, X_ref=Xtr, policy="flag").screen(noise).decision == "flagged"
    assert InputDefense(schema, {"ood": det}, model=model, X_ref=Xtr, policy="log").screen(noise).decision == "ok"


def test_adversarial_detector_from_the_robustness_module_is_used(make_gateway, breast_cancer, sk_logreg):
    pytest.importorskip("modelshield.attacks.detect")
    app, gw, keys = make_gateway()
    assert "adversarial" in gw.defense.detectors and "ood" in gw.defense.detectors
    Xte = breast_cancer[1]
    # inputs moved onto the decision boundary (bisection between differently classified points)
    pred = sk_logreg.predict(Xte)
    a, b = Xte[pred == 0][:20], Xte[pred == 1][:20]
    lo, hi = np.zeros((20, 1)), np.ones((20, 1))
    for _ in range(30):
        mid = (lo + hi) / 2
        same = sk_logreg.predict(a + (b - a) * mid) == 0
        lo, hi = np.where(same[:, None], mid, lo), np.where(same[:, None], hi, mid)
    boundary = a + (b - a) * lo
    s_clean = gw.defense.screen(Xte).scores["adversarial"]
    s_edge = gw.defense.screen(boundary).scores["adversarial"]
    assert np.median(s_edge) > np.quantile(s_clean, 0.9)
    with TestClient(app) as c:
        r = c.post("/v1/predict", json={"inputs": boundary[:5].tolist()}, headers=bearer(keys["predict"]))
        assert r.status_code == 200 and r.headers.get("x-input-flagged") == "1"
    rec = json.loads(gw.audit.recent(1)[0]["scores"])
    assert rec["adversarial_max"] > gw.defense.thresholds["adversarial"]


def test_alerts_reach_the_webhook(make_gateway, breast_cancer):
    import http.server
    import threading

    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        app, _gw, _keys = make_gateway(webhook=f"http://127.0.0.1:{srv.server_port}/hook",
                                     auth={"fail_burst": 3})
        with TestClient(app) as c:
            for _ in range(3):
                c.post("/v1/predict", json={"inputs": [[0.0] * 30]}, headers=bearer("msk_00000000_x"))
            import time

            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        srv.shutdown()
    assert got and got[0]["monitor"] == "auth.burst" and "msk_" not in json.dumps(got)


def test_webhook_must_be_https_or_loopback():
    from modelshield.serve.config import ServeConfig

    with pytest.raises(ValueError, match="https"):
        ServeConfig(webhook="http://example.com/hook")


@pytest.mark.postgres
def test_gateway_with_a_postgres_audit_log(make_gateway, pg_url, breast_cancer):
    url, table = pg_url
    app, _gw, keys = make_gateway(audit={"url": url, "table": table})
    with TestClient(app) as c:
        for i in range(3):
            assert c.post("/v1/predict", json={"inputs": breast_cancer[1][i : i + 1].tolist()},
                          headers=bearer(keys["predict"])).status_code == 200
        v = c.get("/admin/audit/verify", headers=bearer(keys["admin"])).json()
    assert v["ok"] and v["n_records"] == 3  # the three predictions (reads are not logged)
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        n = conn.execute(sa.text(f'SELECT count(*) FROM "{table}" WHERE status = 200')).scalar()
    eng.dispose()
    assert n == 3



def test_categorical_features_are_learned():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 3, 200), rng.normal(size=200)])
    schema = InputSchema(X)
    assert 0 in schema.categories and 1 not in schema.categories
    assert schema.violations(np.array([[1.0, 0.0], [1.5, 0.0], [7.0, 0.0]])).tolist() == [0, 1, 1]


def test_input_policy_through_the_api(make_gateway, breast_cancer):
    Xte = breast_cancer[1]
    noise = np.random.default_rng(1).normal(0, 4, size=(2, Xte.shape[1]))
    app, gw, keys = make_gateway(input={"policy": "reject"})
    with TestClient(app) as c:
        h = bearer(keys["predict"])
        assert c.post("/v1/predict", json={"inputs": noise.tolist()}, headers=h).status_code == 422
        assert c.post("/v1/predict", json={"inputs": [[1.0] * 5]}, headers=h).status_code == 422
        nan_body = '{"inputs": [[' + ", ".join(["NaN"] * 30) + "]]}"
        r = c.post("/v1/predict", content=nan_body, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 422 and "finite" in r.json()["detail"]
    rec = gw.audit.recent(5)
    assert any(r["decision"] == "rejected:input_rejected" and r["scores"] for r in rec)
    app2, _, keys2 = make_gateway(input={"policy": "flag"})
    with TestClient(app2) as c:
        r = c.post("/v1/predict", json={"inputs": noise.tolist()}, headers=bearer(keys2["predict"]))
        assert r.status_code == 200 and r.headers["x-input-flagged"] == "1"


def test_binary_numpy_payload(make_gateway, breast_cancer, sk_logreg):
    import io

    app, _, keys = make_gateway()
    X = breast_cancer[1][:5]
    buf = io.BytesIO()
    np.save(buf, X)
    with TestClient(app) as c:
        r = c.post("/v1/predict", content=buf.getvalue(),
                   headers={**bearer(keys["predict"]), "Content-Type": "application/x-npy"})
        assert r.status_code == 200
        assert r.json()["predictions"] == sk_logreg.predict(X).tolist()
        # pickled object arrays are refused, never loaded
        obj = io.BytesIO()
        np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        r = c.post("/v1/predict", content=obj.getvalue(),
                   headers={**bearer(keys["predict"]), "Content-Type": "application/x-npy"})
        assert r.status_code == 422
        # a header claiming a huge array must not make the server allocate it
        raw = buf.getvalue()
        huge = raw.replace(b"(5, 30)", b"(2000000000, 30)")
        r = c.post("/v1/predict", content=huge,
                   headers={**bearer(keys["predict"]), "Content-Type": "application/x-npy"})
        assert r.status_code == 422 and "size" in r.json()["detail"]
        r = c.post("/v1/predict", content=b'{"inputs": [[1' + b"0" * 400 + b"]]}",
                   headers={**bearer(keys["predict"]), "Content-Type": "application/json"})
        assert r.status_code == 422


def test_output_hardening():
    P = np.array([[0.7, 0.2, 0.1], [0.1, 0.45, 0.45], [0.34, 0.33, 0.33]])
    classes = np.array(["a", "b", "c"])
    body = OutputHardening(top_k=2).body(P, classes)
    assert body["top_k"] == [["a", "b"], ["b", "c"], ["a", "b"]] and "probabilities" not in body
    assert "probabilities" not in OutputHardening(probabilities=False).body(P, classes)
    r = OutputHardening(decimals=1).body(P, classes)["probabilities"]
    assert r[0] == [0.7, 0.2, 0.1]
    big = np.random.default_rng(0).dirichlet(np.ones(3), size=2000)
    noisy = OutputHardening(noise=0.2, seed=0).perturb(big)
    assert (noisy.argmax(1) == big.argmax(1)).all()  # the label never changes
    assert np.allclose(noisy.sum(1), 1.0) and np.abs(noisy - big).mean() > 0.05


def test_output_hardening_through_the_api(make_gateway, breast_cancer, sk_logreg):
    app, _, keys = make_gateway(outputs={"decimals": 2})
    X = breast_cancer[1][:3]
    with TestClient(app) as c:
        body = c.post("/v1/predict", json={"inputs": X.tolist()}, headers=bearer(keys["predict"])).json()
    assert set(body) == {"predictions", "probabilities", "classes"}
    assert np.allclose(body["probabilities"], np.round(sk_logreg.predict_proba(X), 2))


def test_gateway_without_reference_data_still_protects(make_gateway, breast_cancer):
    app, gw, keys = make_gateway(reference=False)
    assert gw.defense is None and gw.monitors == []
    with TestClient(app) as c:
        h = bearer(keys["predict"])
        assert c.post("/v1/predict", json={"inputs": breast_cancer[1][:2].tolist()}, headers=h).status_code == 200
        assert c.post("/v1/predict", json={"inputs": [[0.0] * 7]}, headers=h).status_code == 422
        assert c.post("/v1/predict", json={"inputs": [[0.0] * 30]}).status_code == 401
    assert gw.audit.verify().n_records == 3


def test_ks_statistics_and_min_p_value_match_scipy():
    """The drift monitor's per-column KS statistics (and the one exact p-value of the largest) equal
    scipy's column-by-column test, ties included."""
    from scipy import stats

    from modelshield.serve.monitors.drift import _ks_2samp, ks_statistics

    rng = np.random.default_rng(0)
    for t in range(40):
        n, m, d = rng.integers(20, 400), rng.integers(1 if t % 7 == 0 else 20, 300), rng.integers(1, 6)
        R, W = rng.normal(size=(n, d)), rng.normal(rng.uniform(-0.5, 0.5, d), size=(m, d))
        if t % 3 == 0:  # ties within the window and with the reference
            R, W = np.round(R, 1), np.round(W, 1)
        if t % 5 == 0:  # a constant window column; a reference column of one value
            W[:, 0] = 0.5
            R[:, -1] = 0.5
        ref = stats.ks_2samp(R, W, axis=0)
        D = ks_statistics(np.sort(R, axis=0), W)
        assert np.allclose(D, ref.statistic)
        j = int(np.argmax(D))
        assert np.isclose(stats.ks_2samp(R[:, j], W[:, j]).pvalue, np.min(ref.pvalue))
        assert _ks_2samp(R[:, j], W[:, j]).pvalue == stats.ks_2samp(R[:, j], W[:, j]).pvalue  # unwrapped call



def test_drift_window_is_the_last_rows_in_order_and_bins_count_exactly():
    """The drift window is a ring: after batches of any size (bigger than the window, wrapping around)
    it holds the last ``window`` rows, oldest first; the decile fractions are plain counts."""
    from collections import deque

    from modelshield.serve.monitors.base import Batch

    rng = np.random.default_rng(4)
    X, P = rng.normal(size=(300, 3)), rng.dirichlet([1, 1], 300)
    mon = DriftMonitor(X, P, window=50, every=10**9)
    ref: deque[np.ndarray] = deque(maxlen=50)
    for n in (1, 7, 49, 50, 51, 120, 3, 0, 49, 2):
        Q, Pq = rng.normal(size=(n, 3)), rng.dirichlet([1, 1], n)
        if n:
            mon.update(Batch(X=Q, proba=Pq, key_id="k"))
        ref.extend(np.hstack([Q, Pq]))
        assert np.array_equal(mon._window(), np.asarray(ref).reshape(-1, 5))
    W = mon._window()
    bins = (W[None, :, :] > mon._edges[:, None, :]).sum(0)
    assert np.array_equal(mon._fractions(W), np.stack([(bins == b).mean(0) for b in range(10)]))


def test_screening_reuses_the_detectors_clean_probabilities(make_gateway, breast_cancer, served_model):
    _, gw, _ = make_gateway()
    X = np.asarray(breast_cancer[1][:5], dtype=np.float64)
    scr = gw.defense.screen(X)
    assert scr.proba is not None and np.allclose(scr.proba, served_model.predict_proba(X), atol=1e-12)
    _, _, proba = gw.screen_and_predict(X)
    assert np.allclose(proba, served_model.predict_proba(X), atol=1e-12)
    # a batch that does not begin with the screened rows is never reused
    shared = gw.defense._shared
    shared.predict_proba(X[::-1].copy())
    assert shared.take(X) is None


def test_small_fast_requests_run_inline_and_slow_ones_in_threads(make_gateway, breast_cancer):
    X = np.asarray(breast_cancer[1][:2], dtype=np.float64)
    _, gw, _ = make_gateway()
    gw.screen_and_predict(X)
    assert gw.run_inline(2) and not gw.run_inline(17)  # batches over 16 rows always go to a thread
    gw.inline_cost_s = 1.0  # a slow model: off the event loop
    assert not gw.run_inline(1)
    _, gw0, _ = make_gateway(inline_max_s=0)
    assert not gw0.run_inline(1)


def test_monitors_batch_by_interval_and_wait_drains(make_gateway, breast_cancer):
    _, gw, _ = make_gateway(monitor_interval_s=5)  # the thread would sleep 5 s; wait_monitors wakes it
    X = np.asarray(breast_cancer[1][:3], dtype=np.float64)
    for i in range(5):
        gw.enqueue_monitors(Batch(X=X, proba=gw.model.predict_proba(X), key_id="k", time=float(i)))
    gw.wait_monitors(10)
    assert gw._m_done == 5 and gw.coverage.scores()["k"]["queries"] == 15


def test_gateway_noise_detector_scores_equal_the_robustness_detector(breast_cancer, served_model):
    """The detector keeps the noise draw of small batches; a long-lived (gateway) detector must score
    exactly as a fresh one, whose cache is empty."""
    from modelshield.attacks.detect import NoiseConsistencyDetector
    from modelshield.serve.monitors.inputs import default_detectors

    X = np.asarray(breast_cancer[0], dtype=np.float64)
    ours = default_detectors()["adversarial"][0].fit(served_model, X)
    theirs = NoiseConsistencyDetector().fit(served_model, X)
    assert isinstance(ours, NoiseConsistencyDetector)
    assert np.array_equal(ours.reference_scores_, theirs.reference_scores_)
    rng = np.random.default_rng(3)
    for n in [*range(1, 20), 1, 2, 16, 17, 1]:  # cached sizes, repeats, and the uncached path
        Z = X[rng.integers(0, len(X), n)] + rng.normal(0, 0.5, (n, X.shape[1]))
        fresh = NoiseConsistencyDetector().fit(served_model, X)
        assert np.array_equal(ours.score(Z), fresh.score(Z)), n
        assert np.array_equal(ours.score(Z), theirs.score(Z)), n


def test_prada_shapiro_statistic_equals_scipy():
    """PRADA calls the function behind scipy's axis/NaN wrapper; its W must be scipy's."""
    from scipy import stats

    from modelshield.serve.monitors.extraction import shapiro_w

    rng = np.random.default_rng(5)
    for n in (3, 10, 100, 999, 3000):
        for D in (rng.normal(size=n), rng.exponential(size=n), np.round(rng.normal(size=n), 1)):
            assert shapiro_w(D) == float(stats.shapiro(D).statistic)


def test_predict_is_a_lean_route_and_still_documented(make_gateway, breast_cancer):
    from fastapi.routing import APIRoute

    app, _, keys = make_gateway()
    served = [r for r in app.router.routes if getattr(r, "path", None) == "/v1/predict"]
    assert len(served) == 1 and not isinstance(served[0], APIRoute)  # registered once, a plain route
    op = app.openapi()["paths"]["/v1/predict"]["post"]
    assert set(op["requestBody"]["content"]) == {"application/json", "application/x-npy"}
    assert {"200", "401", "413", "422", "429", "503"} <= set(op["responses"])
    with TestClient(app) as c:
        X = np.asarray(breast_cancer[1][:2], dtype=np.float64).tolist()
        r = c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["predict"]))
        assert r.status_code == 200 and r.headers["x-audit-seq"]
        assert c.get("/v1/predict", headers=bearer(keys["predict"])).status_code == 405


@pytest.mark.parametrize("interval", [0.0005, None])
def test_the_gil_switch_interval_is_set_while_the_app_runs_and_restored(make_gateway, interval):
    import sys

    before = sys.getswitchinterval()
    app, _, _ = make_gateway(gil_switch_interval_s=interval)
    with TestClient(app):
        assert sys.getswitchinterval() == pytest.approx(before if interval is None else interval)
    assert sys.getswitchinterval() == before
