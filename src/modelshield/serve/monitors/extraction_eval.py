"""Generated extraction-attack and honest-traffic families for measuring extraction detectors offline.

Used by ``tests/serve/test_extraction_adversaries.py`` and ``benchmarks/extraction/bench.py``. Every
family is a function ``(scenario, rng, budget) -> list[(key_id, rows)]`` giving the batches in the order
they reach the gateway; adaptive attacks query the victim through ``scenario.proba`` (answers before
output hardening; hardening changes what the thief can *fit*, see :func:`fidelity`).

The thief starts from ``scenario.seeds`` (85 natural rows of its own, never in the reference) and, for the
synthesis families, first queries those rows. Fidelity is measured on the scenario's natural rows the
thief never queried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelshield.serve.monitors.base import Alert, Batch, Monitor

__all__ = ["ATTACKS", "HONEST", "Scenario", "attack_sybil", "breast_cancer_scenario", "fidelity", "replay"]

BATCH = 10
Batches = list[tuple[str, np.ndarray]]


@dataclass
class Scenario:
    X_ref: np.ndarray  # the gateway's reference rows (the victim's training rows)
    pool: np.ndarray  # natural rows (reference + held-out) honest users draw from
    seeds: np.ndarray  # the thief's own natural rows (held-out, not in the reference)
    held_out: np.ndarray  # natural rows that are not reference rows (including the seeds)
    model: Any  # predict_proba

    def proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(np.asarray(X, dtype=np.float64)), dtype=np.float64)

    def label(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.proba(X), axis=1)


def breast_cancer_scenario(seed: int = 0, n_seeds: int = 85) -> Scenario:
    """scikit-learn's breast-cancer set, standardised, logistic regression (the README's served model)."""
    # lazy: sklearn.datasets is slow to import; only this scenario needs it
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
    model = LogisticRegression(max_iter=500).fit(Xtr, ytr)
    rng = np.random.default_rng(seed)
    seeds = Xte[rng.choice(len(Xte), n_seeds, replace=False)]
    return Scenario(X_ref=Xtr, pool=np.vstack([Xtr, Xte]), seeds=seeds, held_out=Xte, model=model)


def _batches(key: str, rows: np.ndarray) -> Batches:
    return [(key, rows[i: i + BATCH]) for i in range(0, len(rows), BATCH)]


# -- attack families --------------------------------------------------------------------------------
def _boundary_points(sc: Scenario, rng: np.random.Generator, n: int, steps: int = 10) -> np.ndarray:
    """Tramèr et al. (2016) line search: bisect between seeds of different labels, ``steps`` queries per pair."""
    y = sc.label(sc.seeds)
    a, b = sc.seeds[y == 0], sc.seeds[y == 1]
    out: list[np.ndarray] = []
    while sum(len(o) for o in out) < n:
        lo, hi = a[rng.integers(len(a))], b[rng.integers(len(b))]
        t0, t1 = 0.0, 1.0
        for _ in range(steps):
            t = (t0 + t1) / 2
            x = lo + (hi - lo) * t
            out.append(x[None, :])
            if sc.label(x[None, :])[0] == 0:
                t0 = t
            else:
                t1 = t
    return np.vstack(out)[:n]


def attack_random(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    lo, hi = sc.X_ref.min(0), sc.X_ref.max(0)
    return _batches("thief", rng.uniform(lo, hi, (budget, sc.X_ref.shape[1])))


def attack_boundary(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    return _batches("thief", _boundary_points(sc, rng, budget))


def attack_jacobian(sc: Scenario, rng: np.random.Generator, budget: int, lam: float = 0.1) -> Batches:
    """Papernot et al. (2017) Jacobian-based augmentation with a logistic-regression substitute."""
    S = sc.seeds[:BATCH].copy()
    Y = sc.label(S)
    rows = [S]
    while sum(len(r) for r in rows) < budget:
        w = (LogisticRegression(max_iter=300).fit(S, Y).coef_[0] if len(np.unique(Y)) > 1
             else rng.normal(size=S.shape[1]))
        grad = np.where((Y == 1)[:, None], w, -w)
        new = (S + lam * np.sign(grad))[-BATCH:]
        rows.append(new)
        S, Y = np.vstack([S, new]), np.concatenate([Y, sc.label(new)])
    return _batches("thief", np.vstack(rows)[:budget])


def attack_sybil(sc: Scenario, rng: np.random.Generator, budget: int, keys: int = 10) -> Batches:
    """Boundary line search split over ``keys`` keys of one owner, batches interleaved."""
    pts = _boundary_points(sc, rng, budget)
    per = -(-budget // keys)
    parts = [_batches(f"sybil-{i}", pts[i * per: (i + 1) * per]) for i in range(keys)]
    out: Batches = []
    for j in range(max(len(p) for p in parts)):
        out += [p[j] for p in parts if j < len(p)]
    return out


def _seeds_first(sc: Scenario, rows: np.ndarray) -> Batches:
    return _batches("thief", np.vstack([sc.seeds, rows]))


def attack_replay_noise(sc: Scenario, rng: np.random.Generator, budget: int, sigma: float = 0.05) -> Batches:
    """Replays of the thief's own rows with small Gaussian noise (``sigma`` in reference standard deviations)."""
    n = max(budget - len(sc.seeds), 0)
    base = sc.seeds[rng.integers(len(sc.seeds), size=n)]
    return _seeds_first(sc, base + rng.normal(0, sigma, base.shape) * sc.X_ref.std(0))


def attack_mixup(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    """Mixup of two same-class rows of the thief's own data, lambda ~ U(0, 1)."""
    y = sc.label(sc.seeds)
    n = max(budget - len(sc.seeds), 0)
    out = np.empty((n, sc.seeds.shape[1]))
    for i in range(n):
        c = sc.seeds[y == y[rng.integers(len(y))]]
        a, b = c[rng.integers(len(c))], c[rng.integers(len(c))]
        lam = rng.uniform()
        out[i] = lam * a + (1 - lam) * b
    return _seeds_first(sc, out)


def attack_gaussian(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    """Samples of a one-component Gaussian fitted to the thief's own rows."""
    n = max(budget - len(sc.seeds), 0)
    cov = np.cov(sc.seeds, rowvar=False) + 1e-6 * np.eye(sc.seeds.shape[1])
    return _seeds_first(sc, rng.multivariate_normal(sc.seeds.mean(0), cov, size=n))


def attack_dilution(sc: Scenario, rng: np.random.Generator, budget: int, sigma: float = 0.05) -> Batches:
    """2 boundary queries in every 10, the other 8 replays of the thief's rows (small noise)."""
    n = max(budget - len(sc.seeds), 0)
    nb = -(-n * 2 // 10)
    bnd = _boundary_points(sc, rng, nb)
    rep = sc.seeds[rng.integers(len(sc.seeds), size=n)]
    rep = rep + rng.normal(0, sigma, rep.shape) * sc.X_ref.std(0)
    rows, j = [], 0
    for i in range(n):
        if i % 10 < 2 and j < len(bnd):
            rows.append(bnd[j])
            j += 1
        else:
            rows.append(rep[i])
    return _seeds_first(sc, np.vstack(rows) if rows else np.zeros((0, sc.seeds.shape[1])))


ATTACKS: dict[str, Callable[[Scenario, np.random.Generator, int], Batches]] = {
    "random": attack_random,
    "boundary": attack_boundary,
    "jacobian": attack_jacobian,
    "sybil_split": attack_sybil,
    "replay_noise": attack_replay_noise,
    "mixup": attack_mixup,
    "gaussian": attack_gaussian,
    "dilution": attack_dilution,
}


# -- honest families ----------------------------------------------------------------------------------
def honest_random(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    return _batches("user", sc.pool[rng.choice(len(sc.pool), min(budget, len(sc.pool)), replace=False)])


def honest_held_out(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    rows = sc.held_out[rng.permutation(len(sc.held_out))]
    return _batches("user", rows[:budget])


def honest_imputed(sc: Scenario, rng: np.random.Generator, budget: int, k: int = 3) -> Batches:
    """Natural rows with ``k`` features (fixed per client) replaced by the reference mean (missing values)."""
    rows = sc.pool[rng.choice(len(sc.pool), min(budget, len(sc.pool)), replace=False)].copy()
    cols = rng.choice(rows.shape[1], k, replace=False)
    rows[:, cols] = sc.X_ref.mean(0)[cols]
    return _batches("user", rows)


def honest_imputed_median(sc: Scenario, rng: np.random.Generator, budget: int, k: int = 3) -> Batches:
    """Natural rows with ``k`` features per row (chosen per row) replaced by the reference median."""
    rows = sc.pool[rng.choice(len(sc.pool), min(budget, len(sc.pool)), replace=False)].copy()
    med = np.median(sc.X_ref, axis=0)
    for r in rows:
        cols = rng.choice(rows.shape[1], k, replace=False)
        r[cols] = med[cols]
    return _batches("user", rows)


def honest_sorted(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    rows = sc.pool[rng.choice(len(sc.pool), min(budget, len(sc.pool)), replace=False)]
    return _batches("user", rows[np.argsort(rows[:, rng.integers(rows.shape[1])])])


def honest_single_class(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    y = sc.label(sc.pool)
    c = sc.pool[y == rng.integers(2)]
    return _batches("user", c[rng.choice(len(c), min(budget, len(c)), replace=False)])


def honest_repeated(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
    """A client that re-sends a small set of legitimate rows (polling, retries)."""
    base = sc.pool[rng.choice(len(sc.pool), 20, replace=False)]
    return _batches("user", base[rng.integers(len(base), size=budget)])


def honest_many_users(sc: Scenario, rng: np.random.Generator, budget: int, users: int = 10) -> Batches:
    """Several honest keys (same owner) with natural rows, interleaved: the aggregate must stay quiet."""
    out: Batches = []
    per = -(-budget // users)
    parts = [_batches(f"user-{u}", sc.pool[rng.choice(len(sc.pool), per, replace=False)]) for u in range(users)]
    for j in range(max(len(p) for p in parts)):
        out += [p[j] for p in parts if j < len(p)]
    return out


HONEST: dict[str, Callable[[Scenario, np.random.Generator, int], Batches]] = {
    "random_rows": honest_random,
    "held_out": honest_held_out,
    "imputed_3": honest_imputed,
    "imputed_median_3": honest_imputed_median,
    "sorted": honest_sorted,
    "single_class": honest_single_class,
    "repeated_rows": honest_repeated,
    "many_users": honest_many_users,
}


# -- running and scoring -------------------------------------------------------------------------------
def replay(sc: Scenario, monitors: Sequence[Monitor], batches: Batches,
           key_filter: Callable[[str], bool] | None = None) -> tuple[dict[str, int | None], list[Alert]]:
    """Feed the batches to the monitors; per monitor, the number of rows sent when it first alerted
    (``None``: never). ``key_filter`` restricts which per-key alerts count (default: any alert)."""
    first: dict[str, int | None] = {m.name: None for m in monitors}
    sent = 0
    alerts: list[Alert] = []
    for t, (key, rows) in enumerate(batches):
        sent += len(rows)
        b = Batch(X=rows, proba=sc.proba(rows), key_id=key, time=float(t))
        for m in monitors:
            got = m.update(b)
            alerts += got
            if first[m.name] is None and any(key_filter is None or a.key_id is None or key_filter(a.key_id)
                                             for a in got):
                first[m.name] = sent
    return first, alerts


def fidelity(sc: Scenario, queried: np.ndarray, output: str = "proba") -> float:
    """Agreement of the thief's surrogate with the victim on natural rows the thief never queried.

    ``output``: ``proba`` (full probabilities: the thief regresses the logit, Tramèr et al. 2016's equation
    solving), ``rounded`` (probabilities to 2 decimals: logistic regression on the soft labels), ``labels``
    (labels only: logistic regression on the labels)."""
    Q = np.asarray(queried, dtype=np.float64)
    pool = sc.pool
    d = ((pool[:, None, :] - sc.seeds[None, :, :]) ** 2).sum(-1).min(1) if len(sc.seeds) else np.ones(len(pool))
    ev = pool[d > 1e-12]
    truth = sc.label(ev)
    p = sc.proba(Q)[:, 1]
    if output == "proba":
        p = np.clip(p, 1e-9, 1 - 1e-9)
        sub = LinearRegression().fit(Q, np.log(p / (1 - p)))
        pred = (sub.predict(ev) > 0).astype(int)
    elif output == "rounded":  # soft-label logistic regression: each row twice, weights 1 - p and p
        p = np.round(p, 2)
        Xs, ys, ws = np.vstack([Q, Q]), np.r_[np.zeros(len(Q)), np.ones(len(Q))], np.r_[1 - p, p]
        keep = ws > 0
        if len(np.unique(ys[keep])) < 2:
            pred = np.full(len(ev), int(ys[keep][0]))
        else:
            pred = LogisticRegression(max_iter=1000).fit(Xs[keep], ys[keep], sample_weight=ws[keep]).predict(ev)
    else:
        y = (p > 0.5).astype(int)
        if len(np.unique(y)) < 2:
            pred = np.full(len(ev), y[0])
        else:
            pred = LogisticRegression(max_iter=1000).fit(Q, y).predict(ev)
    return float((pred == truth).mean())
