"""Extraction detection end to end: real attacks through the HTTP API (RemoteModel) vs normal traffic.

Prints a table (``pytest -s``): per session, queries answered, PRADA W, rare-cell share, which
detector fired, and the stolen substitute's agreement with the victim on held-out data.
"""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelshield.errors import UserError
from modelshield.models.remote import RemoteModel
from modelshield.serve.auth import KeyStore

N_QUERIES = 300
BATCH = 10


class Budgeted:
    """The attacker's view of the API: stops when the gateway starts refusing (throttled)."""

    def __init__(self, url, key):
        self.remote = RemoteModel(f"{url}/v1/predict", headers={"Authorization": f"Bearer {key}"},
                                  batch_size=BATCH, timeout=10)
        self.X, self.y = [], []
        self.refused = False

    def label(self, X):
        if self.refused:
            return None
        try:
            y = self.remote.predict(np.asarray(X))
        except UserError:  # HTTP 429 after the detector throttled the key
            self.refused = True
            return None
        self.X.append(np.asarray(X))
        self.y.append(y)
        return y

    @property
    def n(self):
        return sum(len(x) for x in self.X)


def uniform_attack(api, rng, lo, hi, d):
    """Tramèr et al. (2016) retraining with uniformly random queries in the feature box."""
    while api.n < N_QUERIES and api.label(rng.uniform(lo, hi, (BATCH, d))) is not None:
        pass


def perturb_attack(api, rng, seeds, step=0.3):
    """Synthetic queries by random walks from a few natural seeds."""
    cur = seeds.copy()
    while api.n < N_QUERIES:
        cur = cur + rng.normal(0, step, cur.shape)
        if api.label(cur) is None:
            return


def linesearch_attack(api, rng, pool):
    """Map the decision boundary: bisect between natural points of different labels (Tramèr et al. 2016)."""
    y0 = api.label(pool[:BATCH])
    if y0 is None:
        return
    a, b = pool[:BATCH][y0 == y0[0]], pool[:BATCH][y0 != y0[0]]
    if len(b) == 0:
        b = pool[BATCH : 2 * BATCH]
    lo = a[rng.integers(0, len(a), BATCH)]
    hi = b[rng.integers(0, len(b), BATCH)]
    t_lo, t_hi = np.zeros((BATCH, 1)), np.ones((BATCH, 1))
    while api.n < N_QUERIES:
        mid = (t_lo + t_hi) / 2
        y = api.label(lo + (hi - lo) * mid)
        if y is None:
            return
        same = (y == y0[0])[:, None]
        t_lo, t_hi = np.where(same, mid, t_lo), np.where(same, t_hi, mid)
        if float((t_hi - t_lo).max()) < 1e-3:  # converged: new pairs
            lo, hi = a[rng.integers(0, len(a), BATCH)], b[rng.integers(0, len(b), BATCH)]
            t_lo, t_hi = np.zeros((BATCH, 1)), np.ones((BATCH, 1))


def jbda_attack(api, rng, seeds, lam=0.1):
    """Papernot et al. (2017) Jacobian-based augmentation with a logistic-regression substitute."""
    S = seeds.copy()
    y = api.label(S)
    if y is None:
        return
    Y = y
    while api.n < N_QUERIES:
        if len(np.unique(Y)) > 1:
            w = LogisticRegression(max_iter=300).fit(S, Y).coef_[0]
        else:
            w = rng.normal(size=S.shape[1])
        grad = np.where((Y == Y.max())[:, None], w, -w)
        new = (S + lam * np.sign(grad))[-BATCH:]
        yn = api.label(new)
        if yn is None:
            return
        S, Y = np.vstack([S, new]), np.concatenate([Y, yn])


@pytest.mark.slow
def test_extraction_attacks_are_detected_and_normal_traffic_is_not(server_setup, breast_cancer, sk_logreg, tmp_path):
    Xtr, Xte, _, _ = breast_cancer
    pool = np.vstack([Xtr, Xte]).astype(np.float64)
    srv = server_setup({"limits": {"rate_per_s": 2000, "burst": 2000}, "auth": {"reload_every_s": 0},
                        "extraction": {"action": "throttle", "throttle_rate_per_s": 0.05, "min_queries": 100},
                        "drift": {"enabled": False}})
    ks = KeyStore(tmp_path / "state")
    _, admin = ks.create("admin", ["admin"])
    srv.start()
    lo, hi = Xtr.min(0), Xtr.max(0)
    sessions = []
    for s in range(6):  # normal users: natural rows, in their own random order
        rec, key = ks.create(f"benign-{s}", ["predict"])
        api = Budgeted(srv.url, key)
        rows = pool[np.random.default_rng(s).choice(len(pool), 200, replace=False)]
        for i in range(0, len(rows), BATCH):
            api.label(rows[i : i + BATCH])
        sessions.append(("benign", rec.id, api))
    attacks = {
        "uniform": lambda api, rng: uniform_attack(api, rng, lo, hi, Xtr.shape[1]),
        "perturb": lambda api, rng: perturb_attack(api, rng, Xte[rng.choice(len(Xte), BATCH, replace=False)]),
        "linesearch": lambda api, rng: linesearch_attack(api, rng, Xte[rng.permutation(len(Xte))]),
        "jbda": lambda api, rng: jbda_attack(api, rng, Xte[rng.choice(len(Xte), BATCH, replace=False)]),
    }
    for name, attack in attacks.items():
        for s in range(2):
            rec, key = ks.create(f"{name}-{s}", ["predict"])
            api = Budgeted(srv.url, key)
            attack(api, np.random.default_rng(100 + s))
            sessions.append((name, rec.id, api))

    h = {"Authorization": f"Bearer {admin}"}
    expected = {kid: api.n for _, kid, api in sessions}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # monitors run in the background: wait until they saw everything
        resp = httpx.get(f"{srv.url}/admin/stats", headers=h, timeout=10)
        assert resp.status_code == 200, resp.text[:500]
        stats = resp.json()
        seen = stats["extraction"]["coverage"]
        if all(seen.get(k, {}).get("queries", 0) >= n for k, n in expected.items()):
            break
        time.sleep(0.2)
    prada, cov = stats["extraction"]["prada"], stats["extraction"]["coverage"]
    signals = stats["extraction"].get("signals", {})  # boundary/near-duplicate/off-manifold signals

    victim = sk_logreg
    rows, out = [], {}
    for kind, kid, api in sessions:
        p, c, sg = prada.get(kid, {}), cov.get(kid, {}), signals.get(kid, {})
        agree = float("nan")
        if api.n and len(np.unique(np.concatenate(api.y))) > 1:
            sub = LogisticRegression(max_iter=500).fit(np.vstack(api.X), np.concatenate(api.y))
            agree = float((sub.predict(Xte) == victim.predict(Xte)).mean())
        rows.append((kind, kid, api.n, api.refused, p.get("W"), c.get("rare_share"), bool(p.get("flagged")),
                     bool(c.get("flagged")) or bool(sg.get("flagged")), agree))
        out.setdefault(kind, []).append(rows[-1])
    print("\nkind        key       answered throttled PRADA-W  rare-share prada cover|signals  substitute-agreement")
    for r in rows:
        print(f"{r[0]:<11} {r[1]} {r[2]:>8} {r[3]!s:>9} {r[4] if r[4] is None else round(r[4], 3)!s:>8} "
              f"{r[5] if r[5] is None else round(r[5], 3)!s:>10} {r[6]!s:>5} {r[7]!s:>5}  {r[8]:.3f}")

    benign = out["benign"]
    attacks_main = out["uniform"] + out["perturb"] + out["linesearch"]
    cov_fa = sum(r[7] for r in benign) / len(benign)
    prada_fa = sum(r[6] for r in benign) / len(benign)
    cov_det = sum(r[7] for r in attacks_main) / len(attacks_main)
    any_det = sum(r[6] or r[7] for r in attacks_main) / len(attacks_main)
    jbda_det = sum(r[6] or r[7] for r in out["jbda"]) / len(out["jbda"])
    print(f"coverage: detection {cov_det:.0%} (uniform/perturb/linesearch), false alarms {cov_fa:.0%}; "
          f"PRADA false alarms {prada_fa:.0%}; any detector {any_det:.0%}; JbDA detected {jbda_det:.0%}")
    assert all(r[2] >= 100 for r in benign) and not any(r[3] for r in benign)  # normal users are never throttled
    assert cov_fa == 0.0
    assert cov_det >= 5 / 6
    # detected attackers were throttled before they got their full query budget
    assert sum(r[3] for r in attacks_main if r[7]) >= 4
    # the attacks are real: substitutes trained on the answers agree with the victim
    assert np.nanmax([r[8] for r in out["linesearch"] + out["uniform"]]) > 0.8
    events = httpx.get(f"{srv.url}/admin/alerts", headers=h, timeout=10).json()["alerts"]
    assert any(a["monitor"] in ("extraction.coverage", "extraction.signals") and a["action"] == "throttle"
               for a in events)
