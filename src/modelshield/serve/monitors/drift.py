"""Data and prediction drift over a sliding window against reference data: PSI, KS and MMD.

References
----------
.. [1] Siddiqi, N. (2006). *Credit Risk Scorecards*. Wiley. (Population Stability Index.)
.. [2] Gretton, A., Borgwardt, K., Rasch, M., Schölkopf, B., Smola, A. (2012). A kernel two-sample
   test. JMLR 13, 723-773. (Maximum Mean Discrepancy.)
.. [3] Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing loudly: an empirical study of
   methods for detecting dataset shift. NeurIPS. (Univariate KS with Bonferroni correction.)
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from scipy import stats

from modelshield.errors import UserError
from modelshield.serve.monitors.base import Alert, Batch

__all__ = ["DriftMonitor", "mmd2", "psi"]

_EPS = 1e-4
# the function behind scipy's axis / NaN-policy wrapper (1-D finite columns here; same result, less overhead)
_ks_2samp = getattr(stats.ks_2samp, "__wrapped__", stats.ks_2samp)


def psi(ref_frac: np.ndarray, cur_frac: np.ndarray) -> np.ndarray:
    """Population Stability Index per column of bin fractions, shape ``(bins, d) -> (d,)``."""
    r = np.clip(ref_frac, _EPS, None)
    c = np.clip(cur_frac, _EPS, None)
    return np.sum((c - r) * np.log(c / r), axis=0)


def _rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-gamma * np.maximum(d, 0.0))


def ks_statistics(ref_sorted: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov statistic per column (``ref_sorted``: each column sorted)."""
    # Between two consecutive window values the window's ECDF is flat and the reference's rises, so the
    # largest gap is at a window value (right limits) or just before one (left limits): 2 * m lookups
    # in the reference instead of evaluating both ECDFs at all n + m points (same integers, same result).
    # Columns are searched as contiguous arrays (pass ``ref_sorted`` in Fortran order to skip a copy);
    # the window's own ECDF at its sorted values comes from where its runs of ties start and end, for
    # every column at once.
    n, m = len(ref_sorted), len(W)
    R = np.asfortranarray(ref_sorted)  # no copy when it already is
    Ws = np.sort(np.asarray(W).T, axis=1)  # (d, m): one contiguous row per column
    d = R.shape[1]
    below = np.empty((d, m), dtype=np.intp)  # reference values < each window value
    upto = np.empty((d, m), dtype=np.intp)  # ... and <= it
    for j in range(d):  # a loop over columns, not samples
        below[j] = np.searchsorted(R[:, j], Ws[j], side="left")
        upto[j] = np.searchsorted(R[:, j], Ws[j], side="right")
    starts = np.ones((d, m), dtype=bool)  # first of a run of equal window values
    starts[:, 1:] = Ws[:, 1:] != Ws[:, :-1]
    ends = np.ones((d, m), dtype=bool)  # last of such a run
    ends[:, :-1] = starts[:, 1:]
    idx = np.arange(m)
    w_below = np.maximum.accumulate(np.where(starts, idx, 0), axis=1)  # window values < each (its run's start)
    w_upto = np.minimum.accumulate(np.where(ends, idx + 1, m)[:, ::-1], axis=1)[:, ::-1]  # ... <= it
    return np.maximum(np.abs(upto / n - w_upto / m).max(axis=1), np.abs(below / n - w_below / m).max(axis=1))


def mmd2(X: np.ndarray, Y: np.ndarray, gamma: float) -> float:
    """Biased squared MMD with the RBF kernel ``exp(-gamma * ||x - y||^2)``."""
    return float(_rbf(X, X, gamma).mean() + _rbf(Y, Y, gamma).mean() - 2.0 * _rbf(X, Y, gamma).mean())


class DriftMonitor:
    """Compare the last ``window`` accepted rows (features and predicted probabilities) to reference.

    Every ``every`` new rows (once ``window`` rows are seen) it computes per-column PSI on reference
    deciles, two-sample KS p-values (Bonferroni over columns) and the RBF-kernel MMD² on
    standardised features, whose threshold comes from reference-vs-reference resamples (Gaussian
    approximation of the null at level ``mmd_alpha``). The PSI threshold is raised to the largest
    maximum PSI of 50 bootstrap windows drawn from the reference, when that is higher (small windows,
    many columns). One alert per test when drift starts; the
    test re-arms when the window is back under its threshold.
    """

    name = "drift"

    def __init__(self, X_ref: np.ndarray, proba_ref: np.ndarray, *, window: int = 500, every: int = 100,
                 psi_threshold: float = 0.2, ks_alpha: float = 0.001, mmd_alpha: float = 0.001,
                 mmd_samples: int = 200, feature_names: list[str] | None = None, seed: int = 0,
                 history: int = 500) -> None:
        if window < 2 or every < 1:
            raise UserError(f"drift window must be >= 2 and every >= 1 (got {window}, {every})")
        rng = np.random.default_rng(seed)
        X_ref = np.asarray(X_ref, dtype=np.float64).reshape(len(X_ref), -1)
        P_ref = np.asarray(proba_ref, dtype=np.float64)
        self.n_features = X_ref.shape[1]
        names = list(feature_names or [f"x{i}" for i in range(self.n_features)])
        self.columns = names + [f"p[{j}]" for j in range(P_ref.shape[1])]
        R = np.hstack([X_ref, P_ref])
        if len(R) > 5000:
            R = R[rng.choice(len(R), 5000, replace=False)]
        self._ref = R
        self._ref_sorted = np.asfortranarray(np.sort(R, axis=0))  # contiguous columns for ks_statistics
        qs = np.quantile(R, np.linspace(0, 1, 11)[1:-1], axis=0)  # (9, d) inner decile edges
        self._edges = qs
        self._ref_frac = self._fractions(R)
        self.window, self.every = window, every
        self.psi_threshold, self.ks_alpha, self.mmd_alpha = psi_threshold, ks_alpha, mmd_alpha
        self.mmd_samples = mmd_samples
        # MMD on standardised features, median-heuristic bandwidth, null from reference resamples
        self._mu = X_ref.mean(0)
        self._sd = X_ref.std(0) + 1e-9
        Z = (X_ref - self._mu) / self._sd
        self._Zref = Z[rng.choice(len(Z), min(len(Z), 1000), replace=False)]
        sub = self._Zref[: min(200, len(self._Zref))]
        d2 = ((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1)
        med = float(np.median(d2[np.triu_indices(len(sub), 1)])) if len(sub) > 1 else 1.0
        self.gamma = 1.0 / max(med, 1e-9)
        m = min(mmd_samples, len(self._Zref) // 2)
        K = _rbf(self._Zref, self._Zref, self.gamma)  # one kernel matrix serves every null resample
        null = []
        for _ in range(30):
            idx = rng.permutation(len(self._Zref))
            a, b = idx[:m], idx[m : 2 * m]
            null.append(float(K[np.ix_(a, a)].mean() + K[np.ix_(b, b)].mean() - 2.0 * K[np.ix_(a, b)].mean()))
        z = float(stats.norm.ppf(1 - mmd_alpha))
        self.mmd_threshold = float(np.mean(null) + z * np.std(null))
        # PSI has a small-sample bias (about (bins - 1) / window per column) and we take the max over
        # columns: raise the threshold to what same-distribution windows reach (bootstrap max).
        boot = [float(psi(self._ref_frac, self._fractions(R[rng.integers(0, len(R), window)])).max())
                for _ in range(50)]
        self.psi_null_max = max(boot)
        self.psi_threshold = max(psi_threshold, self.psi_null_max)
        self._rng = rng
        # the window: a ring of the last ``window`` rows (features, then probabilities); ``_n_buf`` rows filled
        self._buf = np.empty((window, R.shape[1]))
        self._n_buf = 0
        self._pos = 0  # where the next row goes
        self.n_seen = 0
        self._since = 0
        self._active = {"psi": False, "ks": False, "mmd": False}
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self.last: dict[str, Any] = {}

    def _fractions(self, M: np.ndarray) -> np.ndarray:
        # bin index per value and column, vectorised over columns; one bincount of (column, bin) pairs
        idx = (M[None, :, :] > self._edges[:, None, :]).sum(0)  # (n, d) in 0..9
        d = idx.shape[1]
        counts = np.bincount((idx + 10 * np.arange(d)).ravel(), minlength=10 * d).reshape(d, 10)
        counts = np.ascontiguousarray(counts.T)  # (10, d), laid out as before: sums over bins in the same order
        return counts / max(len(M), 1)

    def update(self, batch: Batch) -> list[Alert]:
        X = np.asarray(batch.X, dtype=np.float64).reshape(len(batch.X), -1)
        P = np.asarray(batch.proba, dtype=np.float64)
        self._push(X, P)
        self.n_seen += len(X)
        self._since += len(X)
        if self._n_buf < self.window or self._since < self.every:
            return []
        self._since = 0
        return self._evaluate(batch.time)

    def _push(self, X: np.ndarray, P: np.ndarray) -> None:
        """Append rows to the ring (only the last ``window`` of a big batch matter)."""
        w, d = self.window, self.n_features
        if len(X) > w:
            X, P = X[-w:], P[-w:]
        k, pos = len(X), self._pos
        first = min(k, w - pos)  # rows up to the end of the ring, then the rest from its start
        self._buf[pos : pos + first, :d] = X[:first]
        self._buf[pos : pos + first, d:] = P[:first]
        if k > first:
            self._buf[: k - first, :d] = X[first:]
            self._buf[: k - first, d:] = P[first:]
        self._pos = (pos + k) % w
        self._n_buf = min(w, self._n_buf + k)

    def _window(self) -> np.ndarray:
        """The window's rows, oldest first."""
        if self._n_buf < self.window:
            return self._buf[: self._n_buf]
        return np.concatenate([self._buf[self._pos :], self._buf[: self._pos]])

    def _evaluate(self, now: float) -> list[Alert]:
        W = self._window()
        p = psi(self._ref_frac, self._fractions(W))
        # the KS p-value falls as the statistic grows (same sample sizes in every column), so the
        # smallest p-value is the one of the largest statistic: one exact scipy test, not one per column
        D = ks_statistics(self._ref_sorted, W)
        j_ks = int(np.argmax(D))
        ks_p = float(_ks_2samp(self._ref[:, j_ks], W[:, j_ks]).pvalue)
        n_cols = len(D)
        m = min(self.mmd_samples, len(W))
        Zw = (W[-m:, : self.n_features] - self._mu) / self._sd
        Zr = self._Zref[self._rng.choice(len(self._Zref), min(m, len(self._Zref)), replace=False)]
        mmd = mmd2(Zr, Zw, self.gamma)
        d = self.n_features
        rec = {
            "time": now, "n_seen": self.n_seen,
            "psi_max": float(p[:d].max()), "psi_feature": self.columns[int(np.argmax(p[:d]))],
            "psi_prediction": float(p[d:].max()),
            "ks_min_p": ks_p, "ks_column": self.columns[j_ks],
            "mmd2": mmd, "mmd2_threshold": self.mmd_threshold,
        }
        self.history.append(rec)
        self.last = rec
        alerts: list[Alert] = []
        tests = {
            "psi": (float(p.max()), self.psi_threshold, float(p.max()) > self.psi_threshold,
                    f"PSI {p.max():.3f} on {self.columns[int(np.argmax(p))]} exceeds {self.psi_threshold:.3g}"),
            "ks": (ks_p, self.ks_alpha / n_cols, bool(ks_p < self.ks_alpha / n_cols),
                   f"KS test rejects on {rec['ks_column']} (p={ks_p:.2e}, Bonferroni)"),
            "mmd": (mmd, self.mmd_threshold, mmd > self.mmd_threshold,
                    f"MMD² {mmd:.4f} exceeds {self.mmd_threshold:.4f}"),
        }
        for kind, (value, thr, hit, msg) in tests.items():
            if hit and not self._active[kind]:
                alerts.append(Alert(monitor=f"drift.{kind}", message=msg, severity="medium",
                                    value=value, threshold=thr, time=now))
            self._active[kind] = hit
        return alerts

    def state(self) -> dict[str, Any]:
        return {"buf": self._window().tolist(), "n_seen": self.n_seen, "since": self._since,
                "active": dict(self._active), "history": list(self.history)}

    def load_state(self, state: dict[str, Any]) -> None:
        self._n_buf = self._pos = 0
        buf = np.asarray(state.get("buf", []), dtype=np.float64).reshape(-1, self._buf.shape[1])
        self._push(buf[:, : self.n_features], buf[:, self.n_features :])
        self.n_seen = int(state.get("n_seen", 0))
        self._since = int(state.get("since", 0))
        self._active.update(state.get("active", {}))
        self.history.clear()
        self.history.extend(state.get("history", []))
        self.last = self.history[-1] if self.history else {}
