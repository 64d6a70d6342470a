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

__all__ = ["CoverageMonitor", "PradaMonitor"]


class _Standardizer:
    def __init__(self, X_ref: np.ndarray) -> None:
        X = np.asarray(X_ref, dtype=np.float64).reshape(len(X_ref), -1)
        self.mu = X.mean(0)
        self.sd = X.std(0)
        self.sd[self.sd < 1e-12] = 1.0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64).reshape(len(X), -1) - self.mu) / self.sd


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
    """

    name = "extraction.prada"

    def __init__(self, X_ref: np.ndarray, *, delta: float = 0.9, min_queries: int = 100, every: int = 10,
                 max_memory: int = 3000, max_keys: int = 10_000) -> None:
        self._std = _Standardizer(X_ref)
        self.delta, self.min_queries, self.every = delta, min_queries, every
        self.max_memory, self.max_keys = max_memory, max_keys
        self.keys: OrderedDict[str, _PradaKey] = OrderedDict()

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
        w = 1.0 if np.ptp(D) == 0 else float(stats.shapiro(D).statistic)
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
    """Flags a key whose queries cover far more of the input space than natural traffic would.

    The space is the reference data's first ``n_components`` principal components (standardised
    features), each cut into ``bins`` reference quantile bins plus one open cell below and one above
    the reference range: ``(bins + 2) ** n_components`` cells with reference probabilities ``p_c``
    (add-half smoothing). After ``n`` queries from natural traffic the expected number of distinct
    cells is ``E(n) = sum_c 1 - (1 - p_c) ** n``; a key with at least ``min_queries`` queries and
    more than ``factor * E(n)`` distinct cells is mapping the input space, as extraction attacks that
    synthesise queries do (in the spirit of Kesarwani et al. 2018, who track the feature-space
    coverage of a user's queries).
    """

    name = "extraction.coverage"

    def __init__(self, X_ref: np.ndarray, *, n_components: int = 3, bins: int = 6, factor: float = 1.6,
                 min_queries: int = 100, max_keys: int = 10_000) -> None:
        self._std = _Standardizer(X_ref)
        Z = self._std(X_ref)
        k = max(1, min(n_components, Z.shape[1], len(Z) - 1))
        _, _, vt = np.linalg.svd(Z - Z.mean(0), full_matrices=False)
        self._proj = vt[:k].T
        P = Z @ self._proj
        self._edges = np.quantile(P, np.linspace(0, 1, bins + 1), axis=0)  # (bins+1, k), outer = range
        self.n_cells_axis = bins + 2
        self.n_cells = self.n_cells_axis**k
        cells = self._cells_of_projected(P)
        counts = np.bincount(cells, minlength=self.n_cells).astype(np.float64)
        self._p = (counts + 0.5) / (counts.sum() + 0.5 * self.n_cells)
        self.factor, self.min_queries, self.max_keys = factor, min_queries, max_keys
        self.keys: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _cells_of_projected(self, P: np.ndarray) -> np.ndarray:
        inner = self._edges[1:-1]  # (bins-1, k)
        idx = 1 + (P[None, :, :] > inner[:, None, :]).sum(0)  # 1..bins inside
        idx[P < self._edges[0]] = 0
        idx[P > self._edges[-1]] = self.n_cells_axis - 1
        mult = self.n_cells_axis ** np.arange(P.shape[1])
        return (idx * mult).sum(1)

    def cells(self, X: np.ndarray) -> np.ndarray:
        return self._cells_of_projected(self._std(X) @ self._proj)

    def expected_cells(self, n: int | np.ndarray) -> np.ndarray:
        n = np.atleast_1d(np.asarray(n, dtype=np.float64))
        return (1.0 - (1.0 - self._p[None, :]) ** n[:, None]).sum(1)

    def update(self, batch: Batch) -> list[Alert]:
        st = self.keys.get(batch.key_id)
        if st is None:
            st = self.keys[batch.key_id] = {"visited": np.zeros(self.n_cells, dtype=bool), "n": 0,
                                            "flagged": False, "ratio": None}
            if len(self.keys) > self.max_keys:
                self.keys.popitem(last=False)
        st["visited"][self.cells(batch.X)] = True
        st["n"] += len(batch.X)
        if st["n"] < self.min_queries:
            return []
        covered = int(st["visited"].sum())
        expected = float(self.expected_cells(st["n"])[0])
        ratio = covered / expected
        st["ratio"] = ratio
        if ratio > self.factor and not st["flagged"]:
            st["flagged"] = True
            return [Alert(monitor=self.name, severity="high", key_id=batch.key_id, value=ratio,
                          threshold=self.factor, time=batch.time,
                          message=f"key {batch.key_id}: {covered} input-space cells covered after {st['n']} "
                                  f"queries, {ratio:.1f}x what natural traffic covers; likely model extraction")]
        return []

    def scores(self) -> dict[str, dict[str, Any]]:
        return {k: {"queries": s["n"], "coverage_ratio": s["ratio"], "flagged": s["flagged"]}
                for k, s in self.keys.items()}

    def state(self) -> dict[str, Any]:
        return {k: {"visited": np.flatnonzero(s["visited"]).tolist(), "n": s["n"], "flagged": s["flagged"],
                    "ratio": s["ratio"]} for k, s in self.keys.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.keys.clear()
        for k, s in state.items():
            v = np.zeros(self.n_cells, dtype=bool)
            v[np.asarray(s["visited"], dtype=np.int64)] = True
            self.keys[k] = {"visited": v, "n": int(s["n"]), "flagged": bool(s["flagged"]), "ratio": s["ratio"]}
