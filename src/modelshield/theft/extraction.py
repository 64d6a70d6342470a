"""Model-extraction simulation: copy a classifier through its prediction API and measure the copy.

The attacker is query-only: it sends inputs to ``model.predict_proba`` (or ``model.predict`` when the
model serves labels only), records the answers as the API would return them, and trains a
surrogate on those pairs. Two query distributions are simulated:

``random``
    uniform draws inside the feature bounds (``Dataset.lower``/``upper``), respecting feature types
    (integers rounded, binary features 0/1, categorical features drawn from the observed values):
    an attacker who knows only the input schema.
``knockoff``
    rows of a public, related data set, bootstrapped and perturbed (Orekondy et al.'s Knockoff Nets
    with a natural-data pool): an attacker with samples from the same population but no labels.

Output hardening is shown by post-processing the same answers as a hardened API would return them:
``probabilities`` (full scores), ``top1`` (the label only) and ``rounded`` (scores rounded to
``decimals`` places). Fidelity is the agreement of the surrogate with the victim on held-out data;
accuracy is the surrogate's accuracy on the true labels.

References
----------
.. [1] F. Tramèr, F. Zhang, A. Juels, M. Reiter, T. Ristenpart. "Stealing Machine Learning Models via
   Prediction APIs". USENIX Security 2016.
.. [2] T. Orekondy, B. Schiele, M. Fritz. "Knockoff Nets: Stealing Functionality of Black-Box Models".
   CVPR 2019.
.. [3] M. Jagielski et al. "High Accuracy and High Fidelity Extraction of Neural Networks".
   USENIX Security 2020 (fidelity vs. accuracy as extraction goals).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.data.dataset import Dataset
from modelshield.errors import UserError
from modelshield.models.base import BaseModel, Capability
from modelshield.theft.torchutil import few_threads, make_mlp, train_soft

__all__ = [
    "OUTPUT_MODES",
    "STRATEGIES",
    "ExtractionPoint",
    "ExtractionResult",
    "Surrogate",
    "harden_outputs",
    "knockoff_queries",
    "query_victim",
    "random_queries",
    "simulate_extraction",
    "train_surrogate",
]

#: How the simulated API returns its answers.
OUTPUT_MODES = ("probabilities", "top1", "rounded")
#: How the simulated attacker picks its queries.
STRATEGIES = ("random", "knockoff")
SURROGATES = ("auto", "mlp", "gbt")

OUTPUT_LABELS = {"probabilities": "full probabilities", "top1": "top-1 label only", "rounded": "rounded"}


def _flat_bounds(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    flat = data.X.reshape(len(data.X), -1).astype(np.float64)
    lo = np.asarray(data.lower, dtype=np.float64) if data.lower is not None else flat.min(axis=0)
    hi = np.asarray(data.upper, dtype=np.float64) if data.upper is not None else flat.max(axis=0)
    return lo.reshape(-1), hi.reshape(-1)


def _types(data: Dataset, d: int) -> list[str]:
    t = data.feature_types
    return list(t) if t is not None and len(t) == d else ["continuous"] * d


def random_queries(data: Dataset, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform random rows inside ``data``'s bounds, respecting its feature types.

    Integer features are rounded, binary features drawn from {0, 1}, categorical features drawn from
    the values seen in ``data``. Returns shape ``(n, n_features)`` (flattened rows).
    """
    lo, hi = _flat_bounds(data)
    d = lo.size
    Q = rng.uniform(0.0, 1.0, size=(n, d)) * (hi - lo) + lo
    types = _types(data, d)
    flat = data.X.reshape(len(data.X), -1).astype(np.float64)
    for j, t in enumerate(types):
        if t == "integer":
            Q[:, j] = np.clip(np.round(Q[:, j]), np.ceil(lo[j]), np.floor(hi[j]))
        elif t == "binary":
            Q[:, j] = rng.integers(0, 2, size=n)
        elif t == "categorical":
            Q[:, j] = rng.choice(np.unique(flat[:, j]), size=n)
    return Q


def knockoff_queries(
    data: Dataset, n: int, rng: np.random.Generator, *, noise: float = 0.1, swap: float = 0.1
) -> np.ndarray:
    """``n`` Knockoff-style queries: bootstrapped rows of the public ``data``, perturbed.

    Continuous and integer features get Gaussian noise of ``noise`` times the feature's spread
    (integers re-rounded); binary and categorical features are swapped with probability ``swap``
    for the value of another random row. Rows are clipped to the bounds.
    """
    flat = data.X.reshape(len(data.X), -1).astype(np.float64)
    if len(flat) == 0:
        raise UserError("the knockoff attacker needs a non-empty public data pool")
    lo, hi = _flat_bounds(data)
    scale = np.asarray(data.scale, dtype=np.float64).reshape(-1)
    Q = flat[rng.integers(0, len(flat), size=n)]
    types = np.array(_types(data, Q.shape[1]))
    numeric = (types == "continuous") | (types == "integer")
    Q[:, numeric] += rng.normal(0.0, 1.0, size=(n, int(numeric.sum()))) * noise * scale[numeric]
    ints = types == "integer"
    Q[:, ints] = np.round(Q[:, ints])
    discrete = ~numeric
    if discrete.any():
        donors = flat[rng.integers(0, len(flat), size=n)]
        mask = (rng.uniform(size=(n, Q.shape[1])) < swap) & discrete[None, :]
        Q[mask] = donors[mask]
    return np.clip(Q, lo, hi)


def harden_outputs(proba: np.ndarray, mode: str, decimals: int = 1) -> np.ndarray:
    """What a hardened API returns for scores ``proba`` (rows sum to 1), as soft targets.

    ``probabilities``: unchanged; ``top1``: one-hot of the arg-max; ``rounded``: rounded to
    ``decimals`` places (rows that round to all zeros fall back to the arg-max), renormalised.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if mode == "probabilities":
        return proba
    onehot = np.eye(proba.shape[1])[np.argmax(proba, axis=1)]
    if mode == "top1":
        return onehot
    if mode == "rounded":
        r = np.round(proba, int(decimals))
        s = r.sum(axis=1, keepdims=True)
        return np.where(s > 0, r / np.where(s > 0, s, 1.0), onehot)
    raise UserError(f"unknown output mode {mode!r}; expected one of: {', '.join(OUTPUT_MODES)}")


def query_victim(model: BaseModel, Q: np.ndarray) -> tuple[np.ndarray, bool]:
    """Query the victim once: ``(scores, has_probabilities)``. Label-only models give one-hot rows."""
    if Capability.PROBABILITIES in model.capabilities:
        return model.predict_proba(Q), True
    idx = model.label_index(model.predict(Q))
    return np.eye(model.n_classes)[idx], False


@dataclass
class Surrogate:
    """A trained copy: ``predict_index(X)`` gives class indices in the victim's class order."""

    kind: str
    predictor: Callable[[np.ndarray], np.ndarray]

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        return self.predictor(np.asarray(X).reshape(len(X), -1))


def train_surrogate(
    Q: np.ndarray, targets: np.ndarray, n_classes: int, *, kind: str = "mlp", seed: int = 0,
    steps: int | None = None,
) -> Surrogate:
    """Fit a surrogate on queries ``Q`` and the API's answers ``targets`` (soft rows).

    ``mlp``: a 64-64 ReLU network trained with soft-label cross-entropy on standardised inputs.
    ``gbt``: scikit-learn histogram gradient boosting, regressing the centred log-probabilities when
    the answers are soft, classifying the labels when they are one-hot (suits tabular data with
    discrete features). Both use everything the API leaks.
    """
    Q = np.asarray(Q, dtype=np.float64).reshape(len(Q), -1)
    targets = np.asarray(targets, dtype=np.float64)
    hard = np.argmax(targets, axis=1)
    if kind == "gbt":
        return _train_gbt(Q, targets, hard, n_classes, seed)
    if kind != "mlp":
        raise UserError(f"unknown surrogate {kind!r}; expected one of: {', '.join(SURROGATES)}")
    import torch  # lazy: torch is heavy; imported only where it runs

    mu = Q.mean(axis=0)
    sd = Q.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    n_steps = steps if steps is not None else int(np.clip(len(Q) // 4, 200, 600))
    with few_threads():
        net = make_mlp(Q.shape[1], n_classes, seed=seed)
        train_soft(net, (Q - mu) / sd, targets, steps=n_steps, seed=seed)

    def predict(X: np.ndarray) -> np.ndarray:
        with few_threads(), torch.no_grad():
            out = net(torch.as_tensor(((X - mu) / sd).astype(np.float32)))
        return out.argmax(dim=1).numpy()

    return Surrogate(kind, predict)


def _train_gbt(Q: np.ndarray, targets: np.ndarray, hard: np.ndarray, n_classes: int, seed: int) -> Surrogate:
    """Gradient boosting: a classifier on one-hot answers, or (soft answers) one regressor per class
    on the centred log-probabilities (a single logit regressor for two classes)."""
    # lazy: scikit-learn is slow to import; only this path needs it
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    if len(np.unique(hard)) < 2:
        const = int(hard[0])
        return Surrogate("gbt", lambda X: np.full(len(X), const, dtype=np.int64))
    soft = not np.all((targets == 0.0) | (targets == 1.0))
    with threadpool_limits(1):  # tiny fits: OpenMP thread start-up costs more than it saves
        if not soft:
            clf = HistGradientBoostingClassifier(max_iter=60, random_state=seed).fit(Q, hard)
            cls = clf.classes_.astype(np.int64)

            def predict_hard(X: np.ndarray) -> np.ndarray:
                with threadpool_limits(1):
                    return cls[np.argmax(clf.predict_proba(X), axis=1)]

            return Surrogate("gbt", predict_hard)
        logp = np.log(np.clip(targets, 1e-4, 1.0))
        logp -= logp.mean(axis=1, keepdims=True)
        cols = [1] if n_classes == 2 else list(range(n_classes))
        regs = [HistGradientBoostingRegressor(max_iter=60, random_state=seed).fit(Q, logp[:, c]) for c in cols]

    def predict_soft(X: np.ndarray) -> np.ndarray:
        with threadpool_limits(1):
            z = np.stack([r.predict(X) for r in regs], axis=1)
        return (z[:, 0] > 0).astype(np.int64) if n_classes == 2 else np.argmax(z, axis=1)

    return Surrogate("gbt", predict_soft)


@dataclass(frozen=True, kw_only=True)
class ExtractionPoint:
    """One point of the extraction curve."""

    strategy: str
    output: str
    budget: int
    fidelity: float
    accuracy: float | None

    def to_row(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "output": self.output, "queries": self.budget,
                "fidelity": round(self.fidelity, 4),
                "accuracy": None if self.accuracy is None else round(self.accuracy, 4)}


@dataclass(kw_only=True)
class ExtractionResult:
    """All points of a simulation, plus reference numbers measured on the evaluation rows."""

    points: list[ExtractionPoint]
    budgets: list[int]
    strategies: list[str]
    outputs: list[str]
    n_eval: int
    victim_accuracy: float | None
    fidelity_baseline: float
    has_probabilities: bool
    queries_used: int
    meta: dict[str, Any] = field(default_factory=dict)

    def curve(self, strategy: str, output: str) -> list[ExtractionPoint]:
        return sorted((p for p in self.points if p.strategy == strategy and p.output == output),
                      key=lambda p: p.budget)

    def best(self, output: str, budget: int | None = None) -> ExtractionPoint | None:
        """The strategy with the highest fidelity at ``budget`` (the largest one by default)."""
        b = max(self.budgets) if budget is None else budget
        pts = [p for p in self.points if p.output == output and p.budget == b]
        return max(pts, key=lambda p: p.fidelity, default=None)


def simulate_extraction(
    model: BaseModel,
    public: Dataset,
    evaluation: Dataset,
    *,
    budgets: Sequence[int] = (100, 1000, 10000),
    strategies: Sequence[str] = STRATEGIES,
    outputs: Sequence[str] = OUTPUT_MODES,
    decimals: int = 1,
    surrogate: str = "auto",
    surrogate_steps: int | None = None,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> ExtractionResult:
    """Simulate extraction attacks on ``model`` and measure the surrogates on ``evaluation``.

    Parameters
    ----------
    model : the victim, queried through ``predict_proba``/``predict`` only.
    public : the attacker's knowledge: bounds and feature types (``random``) and unlabelled rows of a
        related distribution (``knockoff``). Must not overlap ``evaluation``.
    evaluation : held-out rows on which fidelity (and accuracy, when labelled) is measured.
    budgets : query budgets; each strategy draws ``max(budgets)`` queries once and the smaller
        budgets use prefixes of that stream (the attacker's cumulative progress).
    strategies : subset of :data:`STRATEGIES`.
    outputs : subset of :data:`OUTPUT_MODES`; label-only models support ``top1`` only.
    decimals : rounding of the ``rounded`` output mode.
    surrogate : ``"mlp"``, ``"gbt"`` or ``"auto"`` (gradient boosting when ``public`` has integer,
        binary or categorical features, i.e. typical tabular data; the MLP otherwise).
    surrogate_steps : optimiser steps per MLP surrogate (default: grows with the budget, 200-600).

    Returns
    -------
    ExtractionResult

    Examples
    --------
    >>> res = simulate_extraction(model, pool, heldout, budgets=[50, 500])  # doctest: +SKIP
    >>> res.best("probabilities").fidelity  # doctest: +SKIP
    0.97
    """
    report = progress or (lambda _f, _m: None)
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 1:
        raise UserError("query budgets must be positive integers")
    for s in strategies:
        if s not in STRATEGIES:
            raise UserError(f"unknown extraction strategy {s!r}; expected one of: {', '.join(STRATEGIES)}")
    for o in outputs:
        if o not in OUTPUT_MODES:
            raise UserError(f"unknown output mode {o!r}; expected one of: {', '.join(OUTPUT_MODES)}")
    if surrogate not in SURROGATES:
        raise UserError(f"unknown surrogate {surrogate!r}; expected one of: {', '.join(SURROGATES)}")
    if surrogate == "auto":
        flat_types = set(_types(public, int(np.prod(public.X.shape[1:]))))
        surrogate = "gbt" if flat_types & {"integer", "binary", "categorical"} else "mlp"
    n_classes = model.n_classes
    X_eval = evaluation.X.reshape(len(evaluation.X), -1).astype(np.float64)
    victim_eval = model.predict_index(evaluation.X)
    y_eval = model.label_index(evaluation.y) if evaluation.y is not None else None
    victim_acc = None if y_eval is None else float(np.mean(victim_eval == y_eval))
    baseline = float(np.bincount(victim_eval, minlength=n_classes).max() / max(len(victim_eval), 1))

    rng = np.random.default_rng(seed)
    top = budgets[-1]
    streams: dict[str, np.ndarray] = {}
    for s in strategies:
        streams[s] = random_queries(public, top, rng) if s == "random" else knockoff_queries(public, top, rng)
    points: list[ExtractionPoint] = []
    has_proba = Capability.PROBABILITIES in model.capabilities
    modes = [o for o in outputs if has_proba or o == "top1"] or ["top1"]
    total = len(strategies) * len(modes) * len(budgets)
    done = 0
    queries = 0
    for s in strategies:
        Q = streams[s]
        answers, has_proba = query_victim(model, Q.reshape((top, *evaluation.X.shape[1:])))
        queries += top
        for o in modes:
            targets = harden_outputs(answers, o, decimals)
            for b in budgets:
                report(done / total, f"extraction: {s} queries, {OUTPUT_LABELS[o]}, budget {b}")
                sur = train_surrogate(Q[:b], targets[:b], n_classes, kind=surrogate, seed=seed + b,
                                      steps=surrogate_steps)
                pred = sur.predict_index(X_eval)
                points.append(ExtractionPoint(
                    strategy=s, output=o, budget=b,
                    fidelity=float(np.mean(pred == victim_eval)),
                    accuracy=None if y_eval is None else float(np.mean(pred == y_eval)),
                ))
                done += 1
    report(1.0, "extraction done")
    return ExtractionResult(points=points, budgets=budgets, strategies=list(strategies), outputs=modes,
                            n_eval=len(X_eval), victim_accuracy=victim_acc, fidelity_baseline=baseline,
                            has_probabilities=has_proba, queries_used=queries,
                            meta={"surrogate": surrogate, "decimals": decimals, "seed": seed})
