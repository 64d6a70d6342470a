"""Extraction signals per key, per group of keys and over all traffic (issue 22 A.3-A.5).

:class:`SignalMonitor` gives every *distinct* query three per-query indicators, each with a rate that
natural traffic shows, estimated on the reference data:

* ``boundary``: the model's own top-2 margin is below the ``boundary_quantile`` of the reference's
  margins. Line searches, Jacobian-style augmentation and active-learning thieves query there; natural
  traffic mostly does not.
* ``near_duplicate``: the query lies closer to an earlier query of the same stream (or to a reference row)
  than ``dup_scale`` times the ``dup_quantile`` of natural nearest-neighbour distances, without being an
  exact repeat. Replays with small noise and mixup of a thief's own rows do this; distinct natural rows
  almost never do.
* ``off_manifold``: the Mahalanobis radius (reference covariance) is beyond the ``radius_quantile`` of
  reference radii: isotropic noise on correlated features and synthetic samples land there.

Exact repeats of a stream's earlier queries are counted but get no indicator (a repeated answer teaches
a thief nothing new, and legitimate clients repeat rows). A stream is flagged for a signal when, after
``min_queries`` distinct queries, its share in the last ``window`` distinct queries exceeds
``factor * p0 + z * sqrt(p0 (1 - p0) / n)``.

Streams: every key; every group ``group_of(key_id)`` returns (owner, tenant, client address ...); and
all traffic together. A key below ``min_queries`` still contributes to its group and to the global
stream, so splitting an attack over many keys (Sybil keys) does not hide it. A group or global alert
names the contributing keys and raises one per-key alert for each *blamed* key: a key whose own share
exceeds the threshold at its own query count (no minimum), or, for a group where no key stands out,
every key of the group that contributed a hit.

What this buys, honestly: the alert comes after the queries that raised it were answered. On the
breast-cancer logistic regression a thief's own 85 natural rows already give a 0.98-fidelity copy, so
for simple models detection is an audit trail and a brake on *further* queries (throttle or block),
not protection of the model. See ``docs/extraction.md`` for measured budgets and false-alarm rates.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from modelshield.serve.monitors.base import Alert, Batch
from modelshield.serve.monitors.extraction import ImputationAware

__all__ = ["SIGNALS", "SignalMonitor"]

SIGNALS = ("boundary", "near_duplicate", "off_manifold", "distribution")
_RATE_SIGNALS = SIGNALS[:3]  # per-query indicators; "distribution" is a test of the whole stream
GLOBAL = "*"
NOT_PROTECTION = ("an alert comes after the queries were answered: the copy may already be good; "
                  "it stops further queries, it does not undo what leaked")


def _margin(proba: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1 or p.shape[1] == 1:
        p = p.reshape(len(p), -1)
        p = np.hstack([p, 1.0 - p])
    top2 = -np.sort(-p, axis=1)[:, :2]
    return top2[:, 0] - top2[:, 1]


def _sqdist(A: np.ndarray, B: np.ndarray, obs: np.ndarray | None = None) -> np.ndarray:
    """Squared distances; with ``obs`` (observed cells of ``A``) only over those, rescaled to all features."""
    B = np.asarray(B, dtype=np.float64)  # memory is float32; norms in float32 would blur exact repeats
    # einsum's own loop, not BLAS: these products are small, and a threaded BLAS in a busy process spends far
    # longer waking threads than multiplying (measured 20x slower on a loaded 2-core host)
    if obs is None or obs.all():
        d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * np.einsum("id,kd->ik", A, B)
        return np.maximum(d, 0.0)
    W = obs.astype(np.float64)
    d = ((W * A * A).sum(1)[:, None] + np.einsum("id,kd->ik", W, B * B)
         - 2.0 * np.einsum("id,kd->ik", W * A, B))
    return np.maximum(d, 0.0) * (A.shape[1] / np.maximum(W.sum(1), 1.0))[:, None]


def _own_scale(A: np.ndarray) -> np.ndarray:
    """Each column centred and scaled by its own mean and standard deviation (shape, not location)."""
    s = A.std(0)
    s[s < 1e-12] = 1.0
    return (A - A.mean(0)) / s


def _ks(a: np.ndarray, b_sorted: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``D`` (``b_sorted`` already sorted)."""
    a = np.sort(a)
    x = np.concatenate([a, b_sorted])
    fa = np.searchsorted(a, x, side="right") / len(a)
    fb = np.searchsorted(b_sorted, x, side="right") / len(b_sorted)
    return float(np.abs(fa - fb).max())


@dataclass
class _Stream:
    rows: np.ndarray  # (m, d) the last distinct queries, standardised (near-duplicate / repeat memory)
    cls: list[int] = field(default_factory=list)  # predicted class of each row in ``rows``
    keys: list[str] = field(default_factory=list)  # window: the key of each distinct query
    bits: list[int] = field(default_factory=list)  # window: indicator bits of each distinct query
    n: int = 0  # all queries, repeats included
    distinct: int = 0
    flagged: list[str] = field(default_factory=list)  # signals this stream alerted on

    def shares(self) -> dict[str, float]:
        b = np.asarray(self.bits, dtype=np.int64)
        if not len(b):
            return {s: 0.0 for s in SIGNALS}
        return {s: float(((b >> i) & 1).mean()) for i, s in enumerate(_RATE_SIGNALS)}


class SignalMonitor:
    """Boundary, near-duplicate and off-manifold shares per key, per group and over all traffic.

    ``group_of(key_id)`` maps a key to its group (owner, tenant, client address) or ``None``; the
    gateway passes its owner lookup. Parameters are documented in the module docstring; defaults were
    calibrated on honest traffic families (held-out rows, mean-imputed features, sorted order, one
    class, repeated rows) in ``benchmarks/extraction``.
    """

    name = "extraction.signals"

    def __init__(self, X_ref: np.ndarray, proba_ref: np.ndarray, *,
                 group_of: Callable[[str], str | None] | None = None, aggregate: bool = True,
                 min_queries: int = 50, window: int = 1000, global_window: int = 3000, memory: int = 300,
                 factor: float = 2.0, z: float = 4.0, every: int = 10, boundary_quantile: float = 0.05,
                 dup_quantile: float = 0.01, dup_scale: float = 1.0, radius_quantile: float = 0.99,
                 exact_tol: float = 1e-4, dist_threshold: float = 0.95, dist_min: int = 100, dist_every: int = 50,
                 signals: tuple[str, ...] = SIGNALS, max_keys: int = 2_000, seed: int = 0) -> None:
        X = np.asarray(X_ref, dtype=np.float64).reshape(len(X_ref), -1)
        if len(X) < 20:
            raise ValueError("SignalMonitor needs at least 20 reference rows")
        unknown = set(signals) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown extraction signal(s) {sorted(unknown)}; known: {', '.join(SIGNALS)}")
        self.mu = X.mean(0)
        sd = X.std(0)
        sd[sd < 1e-12] = 1.0
        self.sd = sd
        Z = (X - self.mu) / sd
        self._ref = Z
        cov = np.cov(Z, rowvar=False).reshape(Z.shape[1], Z.shape[1])
        self._prec = np.linalg.pinv(cov + 1e-3 * np.eye(Z.shape[1]))
        self._imp = ImputationAware(Z, cov, np.median(Z, axis=0))
        # distribution: per predicted class, each feature's reference values (sorted) for a KS test
        ref_cls = np.argmax(np.asarray(proba_ref, dtype=np.float64).reshape(len(Z), -1), axis=1)
        self._ref_cls = ref_cls
        self._ref_sorted = {int(c): np.sort(_own_scale(Z[ref_cls == c]), axis=0) for c in np.unique(ref_cls)
                            if (ref_cls == c).sum() >= 20}
        self.dist_threshold, self.dist_min, self.dist_every = dist_threshold, dist_min, dist_every
        self.group_of, self.aggregate = group_of, aggregate
        self.min_queries, self.window, self.global_window, self.memory = min_queries, window, global_window, memory
        self.factor, self.z, self.every, self.exact_tol = factor, z, every, exact_tol
        self.enabled = tuple(s for s in SIGNALS if s in signals)
        self.max_keys = max_keys
        # boundary: the reference's own margin quantile
        m = _margin(proba_ref)
        self.margin_cut = float(np.quantile(m, boundary_quantile))
        # near duplicate: leave-one-out nearest-neighbour distances among distinct reference rows
        Zu = np.unique(np.round(Z, 9), axis=0)
        D = _sqdist(Zu, Zu)
        np.fill_diagonal(D, np.inf)
        nn = np.sqrt(D.min(1))
        self.dup_cut = float(dup_scale * np.quantile(nn, dup_quantile))
        # off manifold: radius quantile estimated on one half and rated on the other (honest rows are not
        # the reference rows themselves)
        r = self._radius(Z)
        rng = np.random.default_rng(seed)
        rates = []
        for _ in range(10):
            perm = rng.permutation(len(r))
            a, b = r[perm[: len(r) // 2]], r[perm[len(r) // 2:]]
            rates.append(float((b > np.quantile(a, radius_quantile)).mean()))
        self.radius_cut = float(np.quantile(r, radius_quantile))
        self.p0 = {
            "boundary": max(float((m < self.margin_cut).mean()), 1.0 / len(m)),
            "near_duplicate": max(float((nn < self.dup_cut).mean()), 1.0 / len(nn)),
            "off_manifold": max(float(np.mean(rates)), 1.0 / len(r)),
        }
        self.streams: OrderedDict[str, _Stream] = OrderedDict()
        self.group_errors = 0  # group_of lookups that raised (the query still counts for its key and all traffic)

    # -- per query ------------------------------------------------------------------------------
    def _radius(self, Z: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, self._prec, Z), 0.0))

    def threshold(self, signal: str, n: int) -> float:
        p0 = self.p0[signal]
        return self.factor * p0 + self.z * float(np.sqrt(p0 * (1.0 - p0) / max(n, 1)))

    def _stream(self, sid: str) -> _Stream:
        st = self.streams.get(sid)
        if st is None:
            st = self.streams[sid] = _Stream(rows=np.zeros((0, len(self.mu)), dtype=np.float32))
            if len(self.streams) > self.max_keys:
                for old in self.streams:  # evict the least recently used key stream, never the global one
                    if old != GLOBAL:
                        del self.streams[old]
                        break
        else:
            self.streams.move_to_end(sid)
        return st

    def _indicators(self, st: _Stream, Z: np.ndarray, obs: np.ndarray, margin: np.ndarray,
                    radius: np.ndarray, d_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distinct mask, bits) for the rows of one batch against one stream's memory."""
        n = len(Z)
        d_hist = np.sqrt(_sqdist(Z, st.rows, obs).min(1)) if len(st.rows) else np.full(n, np.inf)
        intra = np.sqrt(_sqdist(Z, Z, obs))
        intra[np.triu_indices(n)] = np.inf  # only earlier rows of the same batch
        d_own = np.minimum(d_hist, intra.min(1) if n else d_hist)
        repeat = d_own <= self.exact_tol
        # an exact repeat of an exact repeat is still a repeat; earlier duplicates within the batch count once
        distinct = ~repeat
        d = np.minimum(d_own, d_ref)
        near = (d > self.exact_tol) & (d < self.dup_cut)
        bits = ((margin < self.margin_cut).astype(np.int64) * (1 << SIGNALS.index("boundary"))
                + near.astype(np.int64) * (1 << SIGNALS.index("near_duplicate"))
                + (radius > self.radius_cut).astype(np.int64) * (1 << SIGNALS.index("off_manifold")))
        return distinct, bits

    def update(self, batch: Batch) -> list[Alert]:
        X = np.asarray(batch.X, dtype=np.float64).reshape(len(batch.X), -1)
        if not len(X):
            return []
        Z, imputed = self._imp.fill((X - self.mu) / self.sd)  # mean/median-filled cells: their expectation
        obs = ~imputed
        margin = _margin(batch.proba)
        pred = np.argmax(np.asarray(batch.proba).reshape(len(X), -1), axis=1)
        radius = self._radius(Z)
        d_ref = np.sqrt(_sqdist(Z, self._ref, obs).min(1))
        key = batch.key_id
        sids = [f"key:{key}"]
        if self.aggregate:
            group = None
            if self.group_of is not None:
                try:
                    group = self.group_of(key)
                except Exception:  # a failing owner lookup must not blind the key and global streams
                    self.group_errors += 1
            if group is not None:
                sids.append(f"group:{group}")
            sids.append(GLOBAL)
        alerts: list[Alert] = []
        for sid in sids:
            st = self._stream(sid)
            distinct, bits = self._indicators(st, Z, obs, margin, radius, d_ref)
            st.n += len(Z)
            new = Z[distinct]
            if len(new):
                cap = self.memory if sid.startswith("key:") else self.global_window
                st.rows = np.vstack([st.rows, new.astype(np.float32)])[-cap:]
                st.cls = (st.cls + pred[distinct].tolist())[-cap:]
                before = st.distinct
                st.distinct += len(new)
                st.bits.extend(bits[distinct].tolist())
                st.keys.extend([key] * len(new))
                win = self.window if sid.startswith("key:") else self.global_window
                if len(st.bits) > win:
                    del st.bits[: len(st.bits) - win]
                    del st.keys[: len(st.keys) - win]
                if st.distinct >= self.min_queries and (st.distinct // self.every > before // self.every
                                                         or before < self.min_queries):
                    alerts.extend(self._test(sid, st, batch))
                if (sid != GLOBAL and "distribution" in self.enabled and "distribution" not in st.flagged
                        and st.distinct // self.dist_every > before // self.dist_every):
                    alerts.extend(self._test_distribution(sid, st, batch))
        return alerts

    def distribution_score(self, st: _Stream) -> float | None:
        """Median over features of the scaled KS statistic ``sqrt(n m / (n + m)) D`` between the *shape* of
        the stream's distinct queries of a predicted class and the reference rows of that class (each
        column centred and scaled by its own mean and standard deviation, so a sorted or one-class slice
        of natural rows, whose location differs, is not taken for synthesis); the largest over classes
        with at least ``dist_min`` queries; ``None`` before that. Synthetic queries (a fitted Gaussian,
        mixup, noisy replays, line searches) lose the skew of natural tabular features; natural rows of
        one class, sorted, or mean-imputed (filled cells use their conditional expectation) keep it."""
        if not len(st.rows):
            return None
        cls = np.asarray(st.cls)
        best: float | None = None
        for c, ref in self._ref_sorted.items():
            A = st.rows[cls == c]
            if len(A) < self.dist_min:
                continue
            A = _own_scale(A)
            if not np.isfinite(A).all():
                continue
            ne = len(A) * len(ref) / (len(A) + len(ref))
            v = float(np.median([_ks(A[:, j], ref[:, j]) for j in range(A.shape[1])]) * np.sqrt(ne))
            best = v if best is None else max(best, v)
        return best

    def exposure(self, stream: str) -> float | None:
        """What a stream's queries already revealed: agreement with the model, on the reference rows, of a
        logistic-regression surrogate fit on the stream's remembered distinct queries and the model's labels.
        ``stream``: ``key:<id>``, ``group:<name>`` or ``*``. Computed on demand (alerts carry it); on simple
        models honest traffic reaches high values too, so it measures leakage, not intent."""
        st = self.streams.get(stream)
        if st is None or not len(st.rows):
            return None
        cls = np.asarray(st.cls)
        if len(np.unique(cls)) < 2:
            return float((self._ref_cls == cls[0]).mean())
        sub = LogisticRegression(max_iter=500).fit(st.rows, cls)
        return float((sub.predict(self._ref) == self._ref_cls).mean())

    def _leak(self, sid: str) -> str:
        e = self.exposure(sid)
        return "" if e is None else (f"; a linear surrogate fit on these queries already agrees with the model "
                                     f"on {e:.0%} of reference rows")

    def _test_distribution(self, sid: str, st: _Stream, batch: Batch) -> list[Alert]:
        v = self.distribution_score(st)
        if v is None or v <= self.dist_threshold:
            return []
        st.flagged.append("distribution")
        base = (f"the distribution of {len(st.rows)} distinct queries differs from natural rows of the same "
                f"predicted class (median scaled KS {v:.2f} > {self.dist_threshold}); likely synthetic queries "
                f"for model extraction{self._leak(sid)}; {NOT_PROTECTION}")
        if sid.startswith("key:"):
            key = sid[4:]
            return [Alert(monitor=self.name, severity="high", key_id=key, value=v, threshold=self.dist_threshold,
                          time=batch.time, message=f"key {key}: {base}",
                          data={"signal": "distribution", "stream": sid, "queries": st.n})]
        keys = sorted(set(st.keys))
        out = [Alert(monitor=self.name, severity="high", key_id=None, value=v, threshold=self.dist_threshold,
                     time=batch.time, message=f"{sid.replace(':', ' ', 1)}: {base}; keys blamed: {', '.join(keys)}",
                     data={"signal": "distribution", "stream": sid, "blamed": keys, "contributors": keys})]
        for key in keys:
            kst = self.streams.get(f"key:{key}")
            if kst is not None and "distribution" in kst.flagged:
                continue
            if kst is not None:
                kst.flagged.append("distribution")
            out.append(Alert(monitor=self.name, severity="high", key_id=key, value=v, threshold=self.dist_threshold,
                             time=batch.time, message=f"key {key}: part of a split extraction over {sid}: {base}",
                             data={"signal": "distribution", "stream": sid, "blamed": keys}))
        return out

    # -- tests and blame ------------------------------------------------------------------------
    def _test(self, sid: str, st: _Stream, batch: Batch) -> list[Alert]:
        alerts: list[Alert] = []
        shares = st.shares()
        n = len(st.bits)
        for i, sig in enumerate(_RATE_SIGNALS):
            if sig not in self.enabled or (sig in st.flagged and sid.startswith("key:")):
                continue
            thr = self.threshold(sig, n)
            already = sig in st.flagged  # a flagged group/global stream: blame keys that joined since
            if shares[sig] <= thr and not already:
                continue
            if not already:
                st.flagged.append(sig)
            what = {"boundary": "sit on the model's decision boundary",
                    "near_duplicate": "are near-duplicates (replays with small changes) of earlier queries",
                    "off_manifold": "lie off the reference data's manifold"}[sig]
            base = (f"{shares[sig]:.0%} of the last {n} distinct queries {what} "
                    f"(natural traffic about {self.p0[sig]:.1%}, threshold {thr:.1%}); likely model extraction"
                    f"{self._leak(sid) if not already else ''}; {NOT_PROTECTION}")
            if sid.startswith("key:"):
                key = sid[4:]
                alerts.append(Alert(monitor=self.name, severity="high", key_id=key, value=shares[sig], threshold=thr,
                                    time=batch.time, message=f"key {key}: {base}",
                                    data={"signal": sig, "stream": sid, "queries": st.n}))
                continue
            blamed, contributors = self._blame(sid, st, i, sig)
            label = "all traffic" if sid == GLOBAL else sid.replace(":", " ", 1)
            names = ", ".join(blamed or contributors[:10])
            if not already:
                alerts.append(Alert(monitor=self.name, severity="high", key_id=None, value=shares[sig], threshold=thr,
                                    time=batch.time,
                                    message=f"{label}: {base}; keys {'blamed' if blamed else 'contributing'}: {names}",
                                    data={"signal": sig, "stream": sid, "blamed": blamed,
                                          "contributors": contributors}))
            # blame from all traffic mixes every client's queries: it is recorded as "<signal>@*" (an alert for a
            # human, not a flag the gateway acts on or re-applies after a restart); a group's blame is a flag
            tag = f"{sig}@{GLOBAL}" if sid == GLOBAL else sig
            for key in blamed:
                kst = self.streams.get(f"key:{key}")
                if kst is not None and (sig in kst.flagged or tag in kst.flagged):
                    continue
                if kst is not None:
                    kst.flagged.append(tag)
                alerts.append(Alert(monitor=self.name, severity="high", key_id=key, value=shares[sig], threshold=thr,
                                    time=batch.time,
                                    message=f"key {key}: part of a split extraction over {label}: {base}",
                                    data={"signal": sig, "stream": sid, "blamed": blamed}))
        return alerts

    def _blame(self, sid: str, st: _Stream, bit: int, sig: str) -> tuple[list[str], list[str]]:
        keys = np.asarray(st.keys)
        hit = (np.asarray(st.bits, dtype=np.int64) >> bit) & 1
        contributors: list[tuple[int, str]] = []
        blamed: list[str] = []
        for k in np.unique(keys).tolist():
            sel = keys == k
            h, n = int(hit[sel].sum()), int(sel.sum())
            if h == 0:
                continue
            contributors.append((h, k))
            if h >= 3 and h / n > self.threshold(sig, n):
                blamed.append(k)
        contributors.sort(reverse=True)
        names = [k for _, k in contributors]
        if not blamed and sid.startswith("group:"):  # one owner's keys: the group is accountable
            blamed = names
        return sorted(blamed), names

    # -- reporting and state --------------------------------------------------------------------
    def scores(self) -> dict[str, dict[str, Any]]:
        """Per key (what the gateway's re-evaluation reads): queries, shares, flagged signals."""
        out: dict[str, dict[str, Any]] = {}
        for sid, st in self.streams.items():
            if sid.startswith("key:"):
                out[sid[4:]] = {"queries": st.n, "distinct": st.distinct, **{f"{k}_share": v for k, v in
                                                                             st.shares().items()},
                                "flagged": any(not f.endswith(f"@{GLOBAL}") for f in st.flagged),
                                "signals": list(st.flagged)}
        return out

    def groups(self) -> dict[str, dict[str, Any]]:
        """Per group and for all traffic (``"*"``): queries, shares, flagged signals, contributing keys."""
        return {sid: {"queries": st.n, "distinct": st.distinct, **{f"{k}_share": v for k, v in st.shares().items()},
                      "flagged": bool(st.flagged), "signals": list(st.flagged), "keys": sorted(set(st.keys))}
                for sid, st in self.streams.items() if not sid.startswith("key:")}

    def state(self) -> dict[str, Any]:
        return {sid: {"rows": np.round(st.rows.astype(np.float64), 6).tolist(), "cls": st.cls, "keys": st.keys,
                      "bits": st.bits, "n": st.n,
                      "distinct": st.distinct, "flagged": st.flagged} for sid, st in self.streams.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        streams: OrderedDict[str, _Stream] = OrderedDict()
        for sid, s in state.items():
            rows = np.asarray(s["rows"], dtype=np.float32).reshape(-1, len(self.mu))
            keys, bits = [str(k) for k in s["keys"]], [int(b) for b in s["bits"]]
            if len(keys) != len(bits):
                raise ValueError(f"extraction.signals state for {sid!r}: keys and bits differ in length")
            cls = [int(c) for c in s["cls"]]
            if len(cls) != len(rows):
                raise ValueError(f"extraction.signals state for {sid!r}: rows and classes differ in length")
            streams[str(sid)] = _Stream(rows=rows, cls=cls, keys=keys, bits=bits, n=int(s["n"]),
                                        distinct=int(s["distinct"]),
                                        flagged=[str(f) for f in s["flagged"] if f in SIGNALS])
        self.streams = streams
