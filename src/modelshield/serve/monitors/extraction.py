"""Per-key model-extraction detection: PRADA and a coverage-based detector.

References
----------
.. [1] Juuti, M., Szyller, S., Marchal, S., Asokan, N. (2019). PRADA: Protecting against DNN model
   stealing attacks. IEEE EuroS&P. https://arxiv.org/abs/1805.02628
.. [2] Kesarwani, M., Mukhoty, B., Arya, V., Mehta, S. (2018). Model extraction warning in MLaaS
   paradigm. ACSAC. https://arxiv.org/abs/1711.07221 (coverage of the input space by one user's
   queries as the warning signal).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from modelshield.serve.monitors.base import Alert, Batch

__all__ = ["CoverageMonitor", "ImputationAware", "PradaMonitor"]

# scipy's axis / NaN-policy wrapper around ``stats.shapiro`` costs several times the test itself on the
# 1-D, finite samples PRADA tests (every 10 queries per key); call the function it wraps when available.
_shapiro = getattr(stats.shapiro, "__wrapped__", stats.shapiro)


def shapiro_w(D: np.ndarray) -> float:
    """The Shapiro-Wilk statistic ``W`` of a 1-D finite sample (``scipy.stats.shapiro(D).statistic``)."""
    return float(_shapiro(D)[0])


class _Standardizer:
    def __init__(self, X_ref: np.ndarray) -> None:
        X = np.asarray(X_ref, dtype=np.float64).reshape(len(X_ref), -1)
        self.mu = X.mean(0)
        self.sd = X.std(0)
        self.sd[self.sd < 1e-12] = 1.0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64).reshape(len(X), -1) - self.mu) / self.sd


class ImputationAware:
    """Recognises mean-imputed cells and replaces them by their expectation given the row's other cells.

    Clients fill missing values with the training mean (or the median); a row with a few filled cells sits
    off the correlation structure of natural rows (e.g. a mean radius next to a large perimeter), so
    radius- and cell-based extraction signals took such honest rows for synthetic ones (issue 22 A.5).
    A cell counts as imputed when it equals the reference mean of its feature (standardised value
    within ``tol`` of 0) or the reference median where fewer than ``rare`` of the reference rows take that
    exact value (so a common value of a discrete feature is never taken for a filled one). Filled cells
    get the Gaussian conditional expectation ``S_mo S_oo^-1 z_o``; the Mahalanobis radius of the filled row
    equals the marginal radius over the observed cells.
    """

    def __init__(self, Z_ref: np.ndarray, cov: np.ndarray, med: np.ndarray, *, tol: float = 1e-7,
                 rare: float = 0.05) -> None:
        Z = np.asarray(Z_ref, dtype=np.float64)
        self.cov = cov + 1e-3 * np.eye(cov.shape[0])
        self.tol = tol
        share = (np.abs(Z - med[None, :]) <= tol).mean(0)
        self.med = np.where(share < rare, med, np.nan)  # medians usable as imputation markers

    def mask(self, Z: np.ndarray) -> np.ndarray:
        """Imputed cells (bool, same shape as ``Z``); never a whole row."""
        m = np.abs(Z) <= self.tol
        with np.errstate(invalid="ignore"):
            m |= np.abs(Z - self.med[None, :]) <= self.tol
        m[m.all(1)] = False
        return m

    def fill(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(filled copy, imputed mask)."""
        Z = np.asarray(Z, dtype=np.float64)
        M = self.mask(Z)
        if not M.any():
            return Z, M
        out = Z.copy()
        pats, inv = np.unique(M, axis=0, return_inverse=True)
        for i, pat in enumerate(pats):
            if not pat.any():
                continue
            rows = np.flatnonzero(inv.reshape(-1) == i)
            o, m = ~pat, pat
            gain = self.cov[np.ix_(m, o)] @ np.linalg.pinv(self.cov[np.ix_(o, o)])
            out[np.ix_(rows, np.flatnonzero(m))] = Z[np.ix_(rows, np.flatnonzero(o))] @ gain.T
        return out, M


@dataclass
class _PradaKey:
    growing: dict[int, np.ndarray] = field(default_factory=dict)  # class -> (m, d) growing set G_c
    dg: dict[int, list[float]] = field(default_factory=dict)  # class -> distances that grew G_c
    thr: dict[int, float] = field(default_factory=dict)  # class -> T_c
    dmin: list[float] = field(default_factory=list)  # D: min distance of every query
    n: int = 0
    flagged: bool = False
    last_w: float | None = None


class PradaMonitor:
    """PRADA (Juuti et al. 2019): flags a key whose queries' minimum-distance distribution is not normal.

    For each query ``x`` with predicted class ``c``, ``d = min ||x - g||`` over the key's growing set
    ``G_c`` (features standardised on the reference data) is added to ``D``; ``x`` joins ``G_c`` when
    ``d > T_c`` and ``T_c = max(T_c, mean(D_Gc) - std(D_Gc))``. Once ``|D| >= min_queries`` the
    Shapiro-Wilk statistic ``W`` of ``D`` is computed every ``every`` queries; ``W < delta`` raises
    an alert for the key (once). Synthetic queries made by perturbing or line-searching between a few
    samples give many near-zero distances, far from the roughly normal distances of natural data.

    The per-query update is sequential by definition (each query may grow ``G_c``); distances are
    vectorised over ``G_c`` and ``G_c`` is capped at ``max_memory`` rows per class.

    Calibration: natural data is not always normal in this sense (skewed tabular features give
    ``W`` well below the paper's 0.9-0.96). With ``predict`` and ``calibrate`` streams, the threshold
    becomes ``min(delta, 0.97 * min W)`` over every check made on ``calibrate`` random orderings of
    the reference data, so natural traffic does not raise false alarms; ``delta`` stays an upper
    bound.
    """

    name = "extraction.prada"

    def __init__(self, X_ref: np.ndarray, *, delta: float = 0.9, min_queries: int = 100, every: int = 10,
                 max_memory: int = 3000, max_keys: int = 10_000, predict: Any = None, calibrate: int = 10,
                 seed: int = 0) -> None:
        self._std = _Standardizer(X_ref)
        self.delta, self.min_queries, self.every = delta, min_queries, every
        self.max_memory, self.max_keys = max_memory, max_keys
        self.keys: OrderedDict[str, _PradaKey] = OrderedDict()
        self.calibration_w: list[float] = []
        if predict is not None and calibrate > 0:
            X = np.asarray(X_ref, dtype=np.float64).reshape(len(X_ref), -1)
            rng = np.random.default_rng(seed)
            n = min(len(X), 300)
            labels = np.argmax(np.asarray(predict(X)), axis=1)
            for i in range(calibrate):
                idx = rng.permutation(len(X))[:n]
                probe = PradaMonitor(X[:2], delta=0.0, min_queries=n + 1, max_memory=max_memory)
                probe._std = self._std
                onehot = np.eye(int(labels.max()) + 1)[labels[idx]]
                probe.update(Batch(X=X[idx], proba=onehot, key_id=f"calibration-{i}"))
                D = np.asarray(probe.keys[f"calibration-{i}"].dmin)
                for k in range(min_queries, len(D) + 1, every):  # every check PRADA would make
                    if np.ptp(D[:k]) > 0:
                        self.calibration_w.append(shapiro_w(D[:k]))
            if self.calibration_w:
                self.delta = min(delta, 0.97 * min(self.calibration_w))

    def _key(self, key_id: str) -> _PradaKey:
        st = self.keys.get(key_id)
        if st is None:
            st = self.keys[key_id] = _PradaKey()
            if len(self.keys) > self.max_keys:
                self.keys.popitem(last=False)
        else:
            self.keys.move_to_end(key_id)
        return st

    def update(self, batch: Batch) -> list[Alert]:
        st = self._key(batch.key_id)
        Z = self._std(batch.X)
        preds = batch.pred
        alerts: list[Alert] = []
        for z, c in zip(Z, preds.tolist()):
            G = st.growing.get(c)
            st.n += 1
            if G is None:
                st.growing[c] = z[None, :]
                st.dg[c] = []
                st.thr[c] = 0.0
            else:
                d = float(np.sqrt(((G - z) ** 2).sum(1).min()))
                st.dmin.append(d)
                if len(st.dmin) > self.max_memory:
                    del st.dmin[: len(st.dmin) - self.max_memory]
                if d > st.thr[c] and len(G) < self.max_memory:
                    st.growing[c] = np.vstack([G, z])
                    st.dg[c].append(d)
                    arr = np.asarray(st.dg[c])
                    st.thr[c] = max(st.thr[c], float(arr.mean() - arr.std()))
            if len(st.dmin) >= self.min_queries and st.n % self.every == 0:
                alerts.extend(self._test(st, batch))
        return alerts

    def _test(self, st: _PradaKey, batch: Batch) -> list[Alert]:
        D = np.asarray(st.dmin[-5000:])
        w = 1.0 if np.ptp(D) == 0 else shapiro_w(D)
        st.last_w = w
        if w < self.delta and not st.flagged:
            st.flagged = True
            return [Alert(monitor=self.name, severity="high", key_id=batch.key_id, value=w,
                          threshold=self.delta, time=batch.time,
                          message=f"key {batch.key_id}: query distances are not normal "
                                  f"(Shapiro-Wilk W={w:.3f} < {self.delta}); likely model extraction")]
        return []

    def scores(self) -> dict[str, dict[str, Any]]:
        return {k: {"queries": s.n, "W": s.last_w, "flagged": s.flagged} for k, s in self.keys.items()}

    def state(self) -> dict[str, Any]:
        return {k: {"growing": {str(c): g.tolist() for c, g in s.growing.items()},
                    "dg": {str(c): v for c, v in s.dg.items()}, "thr": {str(c): v for c, v in s.thr.items()},
                    "dmin": s.dmin, "n": s.n, "flagged": s.flagged, "last_w": s.last_w}
                for k, s in self.keys.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.keys.clear()
        for k, s in state.items():
            self.keys[k] = _PradaKey(
                growing={int(c): np.asarray(g, dtype=np.float64) for c, g in s["growing"].items()},
                dg={int(c): list(v) for c, v in s["dg"].items()},
                thr={int(c): float(v) for c, v in s["thr"].items()},
                dmin=list(s["dmin"]), n=int(s["n"]), flagged=bool(s["flagged"]), last_w=s.get("last_w"))


class CoverageMonitor:
    """Flags a key whose queries cover regions of the input space that natural traffic never reaches.

    Cells combine where a query lies and how the model sees it: the first two principal components
    of the standardised reference data (``bins`` quantile bins plus one open cell on each side), the
    Mahalanobis radius (reference quartiles plus one cell beyond the reference maximum) and the
    model's margin between its two top probabilities (``< 0.2``, ``0.2-0.8``, ``>= 0.8``). Natural
    traffic stays in the cells the reference data occupies (dense regions, confident predictions);
    extraction attacks that synthesise queries - uniform sampling, perturbing a few seeds, line
    searches towards the decision boundary - land in cells no reference row reaches.

    The share of a key's queries in reference-empty cells is compared with the share natural data
    shows, ``r0``, estimated by splitting the reference in halves (rows of one half falling in cells
    the other half leaves empty). A key with at least ``min_queries`` queries is flagged when its
    share exceeds ``factor * r0 + 3 * sqrt(r0 (1 - r0) / n)``. Distinct cells visited against the
    number natural traffic would visit, ``E(n) = sum_c 1 - (1 - p_c) ** n``, is reported as
    ``coverage_ratio``. In the spirit of Kesarwani et al. (2018), who warn when one user's queries
    cover too much of the model's feature space.
    """

    name = "extraction.coverage"
    MARGINS = (0.2, 0.8)

    def __init__(self, X_ref: np.ndarray, proba_ref: np.ndarray, *, bins: int = 6, factor: float = 1.6,
                 min_queries: int = 100, alpha: float = 0.01, max_keys: int = 10_000, seed: int = 0,
                 impute_aware: bool = True) -> None:
        self._std = _Standardizer(X_ref)
        Z = self._std(X_ref)
        cov = np.cov(Z, rowvar=False).reshape(Z.shape[1], Z.shape[1])
        self._imp = ImputationAware(Z, cov, np.median(Z, axis=0)) if impute_aware else None
        _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues: the last columns are the top components
        self._proj = vecs[:, ::-1][:, : min(2, Z.shape[1])]
        P = Z @ self._proj
        self._edges = np.quantile(P, np.linspace(0, 1, bins + 1), axis=0)  # (bins+1, k); outer = range
        self._prec = np.linalg.pinv(cov + 1e-6 * np.eye(Z.shape[1]))
        r = self._radius(Z)
        self._r_edges = np.append(np.quantile(r, [0.25, 0.5, 0.75]), r.max())
        self.n_axis = bins + 2
        self.n_cells = self.n_axis ** P.shape[1] * (len(self._r_edges) + 1) * (len(self.MARGINS) + 1)
        cells = self._cells(Z, np.asarray(proba_ref, dtype=np.float64))
        counts = np.bincount(cells, minlength=self.n_cells).astype(np.float64)
        self._p = (counts + alpha) / (counts.sum() + alpha * self.n_cells)
        self._empty = counts == 0
        rng = np.random.default_rng(seed)
        rates = []
        for _ in range(10):
            perm = rng.permutation(len(cells))
            a, b = cells[perm[: len(cells) // 2]], cells[perm[len(cells) // 2 :]]
            seen = np.zeros(self.n_cells, dtype=bool)
            seen[a] = True
            rates.append(float((~seen[b]).mean()))
        self.r0 = max(float(np.mean(rates)), 1.0 / len(cells))
        self.factor, self.min_queries, self.max_keys = factor, min_queries, max_keys
        self.keys: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def threshold(self, n: int) -> float:
        r0 = self.r0
        return self.factor * r0 + 3.0 * float(np.sqrt(r0 * (1 - r0) / max(n, 1)))

    def _radius(self, Z: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, self._prec, Z), 0.0))

    def _cells(self, Z: np.ndarray, proba: np.ndarray) -> np.ndarray:
        P = Z @ self._proj
        idx = 1 + (P[None, :, :] > self._edges[1:-1][:, None, :]).sum(0)
        idx[P < self._edges[0]] = 0
        idx[P > self._edges[-1]] = self.n_axis - 1
        cell = (idx * self.n_axis ** np.arange(P.shape[1])).sum(1)
        r = np.searchsorted(self._r_edges, self._radius(Z))
        top2 = -np.sort(-proba, axis=1)[:, :2] if proba.shape[1] > 1 else np.hstack([proba, 1 - proba])
        margin = np.searchsorted(np.asarray(self.MARGINS), top2[:, 0] - top2[:, 1], side="right")
        cell = cell * (len(self._r_edges) + 1) + r
        return cell * (len(self.MARGINS) + 1) + margin

    def cells(self, X: np.ndarray, proba: np.ndarray) -> np.ndarray:
        Z = self._std(X)
        if self._imp is not None:  # mean/median-imputed cells: their expectation given the rest of the row
            Z = self._imp.fill(Z)[0]
        return self._cells(Z, np.asarray(proba, dtype=np.float64))

    def expected_cells(self, n: int | np.ndarray) -> np.ndarray:
        n = np.atleast_1d(np.asarray(n, dtype=np.float64))
        return (1.0 - (1.0 - self._p[None, :]) ** n[:, None]).sum(1)

    def update(self, batch: Batch) -> list[Alert]:
        st = self.keys.get(batch.key_id)
        if st is None:
            st = self.keys[batch.key_id] = {"visited": np.zeros(self.n_cells, dtype=bool), "n": 0, "rare": 0,
                                            "flagged": False, "ratio": None, "rare_share": None}
            if len(self.keys) > self.max_keys:
                self.keys.popitem(last=False)
        else:
            self.keys.move_to_end(batch.key_id)
        cells = self.cells(batch.X, batch.proba)
        st["visited"][cells] = True
        st["n"] += len(batch.X)
        st["rare"] += int(self._empty[cells].sum())
        n = st["n"]
        if n < self.min_queries:
            return []
        st["ratio"] = int(st["visited"].sum()) / float(self.expected_cells(n)[0])
        share = st["rare"] / n
        st["rare_share"] = share
        thr = self.threshold(n)
        if share > thr and not st["flagged"]:
            st["flagged"] = True
            return [Alert(monitor=self.name, severity="high", key_id=batch.key_id, value=share, threshold=thr,
                          time=batch.time,
                          message=f"key {batch.key_id}: {share:.0%} of {n} queries fall where natural data "
                                  f"never goes (expected about {self.r0:.0%}); likely model extraction")]
        return []

    def scores(self) -> dict[str, dict[str, Any]]:
        return {k: {"queries": s["n"], "coverage_ratio": s["ratio"], "rare_share": s["rare_share"],
                    "flagged": s["flagged"]} for k, s in self.keys.items()}

    def state(self) -> dict[str, Any]:
        return {k: {"visited": np.flatnonzero(s["visited"]).tolist(), "n": s["n"], "rare": s["rare"],
                    "flagged": s["flagged"], "ratio": s["ratio"], "rare_share": s["rare_share"]}
                for k, s in self.keys.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.keys.clear()
        for k, s in state.items():
            v = np.zeros(self.n_cells, dtype=bool)
            v[np.asarray(s["visited"], dtype=np.int64)] = True
            self.keys[k] = {"visited": v, "n": int(s["n"]), "rare": int(s["rare"]), "flagged": bool(s["flagged"]),
                            "ratio": s["ratio"], "rare_share": s["rare_share"]}
