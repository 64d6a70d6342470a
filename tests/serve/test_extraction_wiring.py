"""The gateway runs the aggregate extraction signals (issue 22 A.3): keys of one owner are watched together,
so Sybil keys that each stay below the per-key minimum are throttled; an owner's daily row budget is shared
by all its keys; honest owners are left alone."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import CLI


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def boundary_points(model, X: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Line search between rows of different predicted classes down to the decision boundary (the
    classic extraction query set: a copy learns the boundary from few queries)."""
    pred = model.predict(X)
    a_rows, b_rows = X[pred == pred[0]], X[pred != pred[0]]
    out = []
    for _ in range(n):
        a = a_rows[rng.integers(len(a_rows))].astype(np.float64)
        b = b_rows[rng.integers(len(b_rows))].astype(np.float64)
        for _ in range(12):
            m = (a + b) / 2
            if model.predict(m[None])[0] == pred[0]:
                a = m
            else:
                b = m
        out.append((a + b) / 2 + rng.normal(0, 1e-3, a.shape))
    return np.asarray(out, dtype=np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_sybil_keys_of_one_owner_are_throttled_and_an_honest_owner_is_not(make_gateway, breast_cancer, seed):
    app, gw, _ = make_gateway(extraction={"signals_min_queries": 50})
    assert gw.signals is not None and gw.signals in gw.monitors
    rng = np.random.default_rng(seed)
    sybils = [gw.keys.create(f"sybil-{i}", ["predict"], owner="mallory")[1] for i in range(10)]
    honest = [gw.keys.create(f"team-{i}", ["predict"], owner="analytics")[1] for i in range(3)]
    points = boundary_points(gw.model, breast_cancer[1], 900, rng)
    held_out = breast_cancer[1]
    refused = 0
    honest_codes = []
    with TestClient(app) as c:
        for rnd in range(9):  # each Sybil key sends 90 rows in all, below the per-key minimum of 100
            for i, k in enumerate(sybils):
                rows = points[(i * 9 + rnd) * 10:(i * 9 + rnd + 1) * 10]
                r = c.post("/v1/predict", json={"inputs": rows.tolist()}, headers=bearer(k))
                refused += r.status_code == 429
            for j, k in enumerate(honest):
                rows = held_out[rng.integers(0, len(held_out), 10)]
                honest_codes.append(c.post("/v1/predict", json={"inputs": rows.tolist()}, headers=bearer(k)).status_code)
        stats = c.get("/admin/stats", headers=bearer(gw.keys.create("ops", ["admin"])[1])).json()
    throttled = set(gw.limiter.throttled)
    sybil_ids = {k.split("_")[1] for k in sybils}
    assert sybil_ids <= throttled, (sybil_ids - throttled)  # every Sybil key named and throttled
    assert refused > 0
    honest_ids = {k.split("_")[1] for k in honest}
    why = [(a["monitor"], a["key_id"], a["message"][:150]) for a in gw.alerts if a.get("key_id") in honest_ids]
    assert not (honest_ids & throttled) and set(honest_codes) == {200}, why
    assert "mallory" in json.dumps(stats["extraction"]["groups"])
    alerts = [a for a in gw.alerts if a["monitor"] == "extraction.signals"]
    assert alerts and any("mallory" in a["message"] for a in alerts)


def test_owner_daily_budget_is_shared_by_all_its_keys(make_gateway, breast_cancer):
    app, gw, _ = make_gateway(limits={"owner_daily_rows": 25})
    keys = [gw.keys.create(f"k{i}", ["predict"], owner="acme")[1] for i in range(3)]
    other = gw.keys.create("solo", ["predict"])[1]
    X = breast_cancer[1][:5].tolist()
    with TestClient(app) as c:
        codes = [c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys[i % 3])).status_code for i in range(7)]
        assert codes == [200] * 5 + [429, 429]  # 25 rows across three keys, then the owner's budget is spent
        r = c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys[0]))
        assert "owner" in r.json()["detail"]
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(other)).status_code == 200  # no owner


def test_keys_create_owner_from_the_cli(tmp_path):
    state = tmp_path / "state"
    out = subprocess.run([*CLI, "keys", "create", "--name", "bot", "--owner", "tenant-7", "--state-dir", str(state),
                          "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["meta"] == {"owner": "tenant-7"} and "hash" not in rec
    bad = subprocess.run([*CLI, "keys", "create", "--name", "bot", "--owner", "x" * 101, "--state-dir", str(state)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "owner" in bad.stderr and "Traceback" not in bad.stderr
