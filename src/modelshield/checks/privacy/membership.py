"""Membership-inference attacks: loss threshold, LiRA (online / offline) and RMIA.

Given a model, its training rows (*members*) and held-out rows (*non-members*), each attack scores
every row; a high score means "was in the training set". Leakage is measured the way the research
community does: ROC AUC and, above all, the true-positive rate at a low false-positive rate
(0.1 % and 1 %), because an attack that confidently identifies a few people is a privacy failure even
when its average accuracy is near chance.

Attacks
-------
``loss``
    Yeom et al. 2018: the lower the model's loss on a row, the more likely it is a member. No
    shadow models.
``lira_offline`` / ``lira_online``
    Carlini et al. 2022, the likelihood-ratio attack. Shadow models are trained on random halves of
    the pooled rows (a paired design: each row is IN exactly half of the shadows). For each row the
    logit-scaled confidence ``log(p/(1-p))`` of its label is modelled as a Gaussian over the shadows
    that did not (offline) or did and did not (online) train on it; the score is the likelihood ratio.
    With fewer than 64 shadows the variance is shared across rows (as the paper recommends).
``rmia``
    Zarifzadeh et al. 2024, the relative membership-inference attack. The likelihood ratio
    ``p(x|θ) / p(x)`` of the target model against the reference (shadow) models, compared pairwise
    with population rows ``z``: ``score(x) = Pr_z[LR(x)/LR(z) >= gamma]``. Offline (only reference
    models that did not train on ``x``) uses the paper's linear correction with ``a``.

Shadow models come from ``model.clone_unfitted()`` (``sklearn.base.clone`` for scikit-learn; a
re-initialised copy trained with a :class:`TrainingRecipe` for PyTorch), or from a user-supplied
``trainer(X, y, seed) -> predict_proba``. They train in parallel (threads) within a time budget.

References
----------
.. [1] S. Yeom, I. Giacomelli, M. Fredrikson, S. Jha, "Privacy Risk in Machine Learning: Analyzing
   the Connection to Overfitting", CSF 2018.
.. [2] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramèr, "Membership Inference Attacks
   From First Principles", IEEE S&P 2022. https://arxiv.org/abs/2112.03570
.. [3] S. Zarifzadeh, P. Liu, P. W. Koh, R. Shokri, "Low-Cost High-Power Membership Inference
   Attacks", ICML 2024. https://arxiv.org/abs/2312.03262

Examples
--------
>>> report = membership_inference(model, (X_train, y_train), (X_test, y_test), n_shadows=8)  # doctest: +SKIP
>>> report.best.tpr_at_1pct_fpr                                                               # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.data.dataset import Dataset
from modelshield.errors import DataError
from modelshield.models.base import BaseModel, Capability

__all__ = [
    "ATTACKS",
    "rebuild_torchscript_mlp",
    "AttackResult",
    "MembershipReport",
    "TrainingRecipe",
    "membership_inference",
    "roc_metrics",
]

ATTACKS = ("loss", "lira_offline", "lira_online", "rmia")
SHADOW_ATTACKS = frozenset({"lira_offline", "lira_online", "rmia"})

#: Fewest rows per side for any attack, and fewest pooled rows to train shadow models on.
MIN_ROWS = 10
MIN_SHADOW_POOL = 40

_EPS = 1e-12
_INIT_LOCK = threading.Lock()  # torch's global RNG seeds shadow initialisation
#: Probability floor for models that only give probabilities (trees saturate at exactly 0 / 1):
#: keeps ``log(p / (1 - p))`` within about +-9 so a few saturated rows do not dominate the Gaussians.
_PROB_EPS = 1e-4

#: ``trainer(X, y, seed) -> predict_proba`` where ``predict_proba(X) -> (n, n_classes)`` in the
#: target model's class order.
ShadowTrainer = Callable[[np.ndarray, np.ndarray, int], Callable[[np.ndarray], np.ndarray]]
ProgressFn = Callable[[float, str], None]


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AttackResult:
    """Scores and ROC metrics of one attack. ``scores`` holds members first, then non-members."""

    name: str
    scores: np.ndarray
    labels: np.ndarray
    auc: float
    tpr_at_0_1pct_fpr: float
    tpr_at_1pct_fpr: float
    fpr: np.ndarray
    tpr: np.ndarray

    @property
    def advantage(self) -> float:
        """Max over thresholds of TPR - FPR (the membership advantage of Yeom et al.)."""
        return float(np.max(self.tpr - self.fpr))

    def metrics(self) -> dict[str, float]:
        return {"auc": self.auc, "tpr_at_0_1pct_fpr": self.tpr_at_0_1pct_fpr,
                "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr, "advantage": self.advantage}


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    ok = fpr <= level + 1e-15
    return float(tpr[ok].max()) if ok.any() else 0.0


def roc_metrics(scores: np.ndarray, labels: np.ndarray, name: str = "attack") -> AttackResult:
    """ROC AUC and TPR at 0.1 % / 1 % FPR of ``scores`` (higher = member) against ``labels`` (1 =
    member). TPR at an FPR below ``1 / n_non_members`` is the TPR at zero false positives."""
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    scores = np.where(np.isfinite(scores), scores, np.where(scores > 0, 1e300, -1e300))
    fpr, tpr, _ = roc_curve(labels, scores)
    return AttackResult(
        name=name, scores=scores, labels=labels, auc=float(roc_auc_score(labels, scores)),
        tpr_at_0_1pct_fpr=_tpr_at(fpr, tpr, 0.001), tpr_at_1pct_fpr=_tpr_at(fpr, tpr, 0.01),
        fpr=fpr, tpr=tpr,
    )


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class MembershipReport:
    """All attacks' results plus what limited them (``notes``).

    ``member_index`` / ``nonmember_index`` map score positions back to rows of the inputs (rows may
    have been sampled or dropped for overlap).
    """

    attacks: dict[str, AttackResult]
    member_index: np.ndarray
    nonmember_index: np.ndarray
    n_shadows: int = 0
    shadow_time_s: float = 0.0
    overlap: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_members(self) -> int:
        return len(self.member_index)

    @property
    def n_nonmembers(self) -> int:
        return len(self.nonmember_index)

    @property
    def best(self) -> AttackResult:
        """The strongest attack: highest TPR at 1 % FPR, then at 0.1 %, then AUC."""
        return max(self.attacks.values(),
                   key=lambda a: (a.tpr_at_1pct_fpr, a.tpr_at_0_1pct_fpr, a.auc))

    def most_exposed(self, k: int = 10, attack: str | None = None) -> list[tuple[int, float]]:
        """The ``k`` members the attack is most sure about: ``(row index in members, score)``."""
        res = self.attacks[attack] if attack else self.best
        member_scores = res.scores[: self.n_members]
        order = np.argsort(-member_scores, kind="stable")[:k]
        return [(int(self.member_index[i]), float(member_scores[i])) for i in order]

    def roc_points(self, attack: str, n_points: int = 60) -> tuple[list[float], list[float]]:
        """A log-spaced ROC curve for plotting on log-log axes (FPR from 1/n_nonmembers to 1)."""
        res = self.attacks[attack]
        lo = max(1.0 / max(self.n_nonmembers, 1), 1e-5)
        grid = np.unique(np.concatenate([np.geomspace(lo, 1.0, n_points), [0.001, 0.01]]))
        grid = grid[grid >= lo]
        idx = np.searchsorted(res.fpr, grid, side="right") - 1
        tpr = res.tpr[np.clip(idx, 0, len(res.tpr) - 1)]
        tpr = np.maximum(tpr, lo)  # keep the curve on log axes
        return grid.tolist(), tpr.tolist()


# --------------------------------------------------------------------------------------------
# shadow training
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TrainingRecipe:
    """How to train a PyTorch shadow model: a re-initialised copy of the target trained with
    cross-entropy. Match the target's own recipe for the strongest (most honest) audit.

    Initialisation and batch order are seeded per shadow; layers that draw random numbers while
    training (dropout) use torch's global generator and are not reproducible across threads."""

    epochs: int = 150
    batch_size: int | None = None  # None: full batch
    lr: float = 1e-2
    weight_decay: float = 0.0
    optimizer: str = "adam"  # "adam" | "sgd"

    def fit(self, module: Any, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
        import torch

        gen = torch.Generator().manual_seed(int(seed))
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):  # shadows train in threads: one init at a time
            torch.manual_seed(int(seed))
            for m in module.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        module.train()
        params = [p for p in module.parameters() if p.requires_grad]
        if self.optimizer == "sgd":
            opt: Any = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        elif self.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            raise DataError(f"unknown optimizer {self.optimizer!r}; expected 'adam' or 'sgd'")
        Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
        yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
        n = len(Xt)
        bs = n if not self.batch_size else min(int(self.batch_size), n)
        for _ in range(int(self.epochs)):
            perm = torch.randperm(n, generator=gen) if bs < n else None
            for start in range(0, n, bs):
                idx = perm[start : start + bs] if perm is not None else slice(None)
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(module(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
        return module.eval()


def _torch_logit_fn(module: Any) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def predict(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return torch.log_softmax(out.double(), dim=-1).numpy()

    predict.log_probs = True  # type: ignore[attr-defined]
    return predict


_PARAM_FREE = ("ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Identity", "Softplus", "ELU", "Mish")


def rebuild_torchscript_mlp(module: Any) -> Any | None:
    """An eager ``nn.Sequential`` equivalent to a TorchScript ``Sequential`` of ``Linear`` layers and
    parameter-free activations, or ``None`` when the structure is anything else. The rebuilt copy
    is checked to reproduce the scripted module's outputs before it is trusted."""
    import torch

    if not isinstance(module, torch.jit.ScriptModule) or getattr(module, "original_name", "") != "Sequential":
        return None
    layers: list[Any] = []
    for _name, child in module.named_children():
        kind = getattr(child, "original_name", "")
        if kind == "Linear":
            w = child.weight
            layers.append(torch.nn.Linear(w.shape[1], w.shape[0], bias=getattr(child, "bias", None) is not None))
        elif kind in _PARAM_FREE:
            layers.append(getattr(torch.nn, kind)())
        else:
            return None
    if not layers or not isinstance(layers[0], torch.nn.Linear):
        return None
    eager = torch.nn.Sequential(*layers)
    try:
        eager.load_state_dict(module.state_dict())
        x = torch.randn(8, layers[0].in_features, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            same = torch.allclose(eager(x), module(x), rtol=1e-4, atol=1e-5)
    except (RuntimeError, TypeError):
        return None
    return eager.eval() if same else None


def default_trainer(model: BaseModel, recipe: TrainingRecipe | None = None) -> ShadowTrainer:
    """A shadow trainer cloned from ``model`` (needs the ``retrainable`` capability).

    scikit-learn: ``sklearn.base.clone`` (with a fresh ``random_state`` where the estimator has one);
    PyTorch: a re-initialised copy trained with ``recipe`` (or ``model.extra["training_recipe"]``).
    A TorchScript MLP (``Sequential`` of ``Linear`` and activations) is rebuilt as an eager module.
    """
    classes = model.classes
    template = None
    if model.framework == "pytorch" and Capability.RETRAINABLE not in model.capabilities:
        template = rebuild_torchscript_mlp(getattr(model, "module", None))
    if template is None and (Capability.RETRAINABLE not in model.capabilities
                             or not hasattr(model, "clone_unfitted")):
        raise DataError(
            f"{type(model).__name__} ({model.format}) cannot be retrained, so shadow models are not "
            "available; pass a trainer or use the 'loss' attack only"
        )
    if model.framework == "pytorch":
        rec = recipe or model.extra.get("training_recipe") or TrainingRecipe()
        template = template if template is not None else model.clone_unfitted()

        def train_torch(X: np.ndarray, yi: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
            module = rec.fit(copy.deepcopy(template), X, yi, seed)
            return _torch_logit_fn(module)

        return train_torch

    to_input = getattr(model, "_to_input", lambda X: X)

    def train_sklearn(X: np.ndarray, yi: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        est = model.clone_unfitted()
        params = est.get_params() if hasattr(est, "get_params") else {}
        seeds = {k: seed for k in params if k == "random_state" or k.endswith("__random_state")}
        if seeds:
            est.set_params(**seeds)
        est.fit(to_input(X), classes[yi])
        fitted = np.asarray(est.classes_)
        cols = np.searchsorted(classes, fitted) if np.all(classes[:-1] < classes[1:]) else np.array(
            [int(np.flatnonzero(classes == c)[0]) for c in fitted])

        def predict(Xq: np.ndarray) -> np.ndarray:
            p = np.asarray(est.predict_proba(to_input(Xq)), dtype=np.float64)
            out = np.zeros((len(Xq), len(classes)))
            out[:, cols] = p
            return out

        return predict

    return train_sklearn


def _label_log_probs(pred: Callable[[np.ndarray], np.ndarray], X: np.ndarray, yi: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(log p_y, log (1 - p_y))`` per row, computed stably from log-probabilities when available."""
    out = np.asarray(pred(X), dtype=np.float64)
    rows = np.arange(len(yi))
    if getattr(pred, "log_probs", False):
        logp = out
    else:
        logp = np.log(np.clip(out, _PROB_EPS, 1.0))
    lpy = logp[rows, yi]
    others = logp.copy()
    others[rows, yi] = -np.inf
    m = others.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    lp_not = (np.log(np.exp(others - m).sum(axis=1)) + m[:, 0]) if logp.shape[1] > 1 else np.full(len(yi), -np.inf)
    if not getattr(pred, "log_probs", False):
        lp_not = np.maximum(lp_not, np.log(_PROB_EPS))
    return lpy, lp_not


def _target_predictor(model: BaseModel) -> Callable[[np.ndarray], np.ndarray]:
    if model.differentiable and getattr(model, "outputs", "logits") == "logits":
        try:
            fn = _torch_logit_fn(model.as_torch())
            prep = model._prepare

            def predict(X: np.ndarray) -> np.ndarray:
                return fn(prep(X))

            predict.log_probs = True  # type: ignore[attr-defined]
            return predict
        except TypeError:  # adapter claims gradients but has no torch module
            pass
    return model.predict_proba


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def _as_xy(data: Dataset | tuple[np.ndarray, np.ndarray] | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    if data is None:
        raise DataError(f"membership inference needs {what}")
    if isinstance(data, Dataset):
        X, y = data.X, data.y
    else:
        X, y = data
    if y is None:
        raise DataError(f"membership inference needs labels for the {what} (pass --target)")
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise DataError(f"{what}: {len(X)} rows but {len(y)} labels")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"{what}: features must be numeric for membership inference")
    return X, y


def _row_keys(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(np.column_stack([X.reshape(len(X), -1).astype(np.float64),
                                                 np.asarray(y, dtype=np.float64).reshape(-1, 1)]
                                                if np.issubdtype(y.dtype, np.number)
                                                else X.reshape(len(X), -1).astype(np.float64)))
    return flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel()


def find_overlap(X_in: np.ndarray, y_in: np.ndarray, X_out: np.ndarray, y_out: np.ndarray) -> np.ndarray:
    """Boolean mask over the non-members: rows that also appear (same features) among the members."""
    y_in, y_out = np.asarray(y_in), np.asarray(y_out)
    if not (np.issubdtype(y_in.dtype, np.number) and np.issubdtype(y_out.dtype, np.number)):
        # text labels (or text on one side only): one code per distinct label, shared by both sides, so the
        # keys of both sides have the same layout
        _, codes = np.unique(np.concatenate([y_in.astype(str), y_out.astype(str)]), return_inverse=True)
        y_in, y_out = codes[: len(y_in)], codes[len(y_in):]
    a = _row_keys(np.asarray(X_in), y_in)
    b = _row_keys(np.asarray(X_out), y_out)
    return np.isin(b, a)


# --------------------------------------------------------------------------------------------
# the attacks
# --------------------------------------------------------------------------------------------
def _logit_conf(lpy: np.ndarray, lp_not: np.ndarray) -> np.ndarray:
    """``log p_y - log(1 - p_y)``: the statistic LiRA models as Gaussian."""
    return np.clip(lpy - lp_not, -1e4, 1e4)


def _masked_mean_std(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-row mean and std of ``values`` (shadows x rows) where ``mask``; plus the pooled std."""
    cnt = mask.sum(axis=0)
    tot = np.where(mask, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = tot / cnt
    overall = float(values[mask].mean()) if mask.any() else 0.0
    mean = np.where(cnt > 0, mean, overall)
    resid = np.where(mask, values - mean[None, :], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt((resid**2).sum(axis=0) / np.maximum(cnt - 1, 1))
    # the shared ("fixed") variance: the median of per-row stds, as in Carlini et al.'s code
    ok = cnt > 1
    pooled = float(np.median(std[ok])) if ok.any() else float(np.std(values[mask])) if mask.any() else 1.0
    pooled = max(pooled, 1e-3)
    std = np.where(cnt > 1, std, pooled)
    return mean, np.maximum(std, 1e-3), pooled


def _norm_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray | float) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def _train_shadows(
    trainer: ShadowTrainer,
    X: np.ndarray,
    yi: np.ndarray,
    keep: np.ndarray,
    *,
    seed: int,
    n_jobs: int,
    budget_s: float | None,
    progress: ProgressFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Train shadows in parallel batches until done or over budget.

    Returns ``(log p_y, log(1-p_y), keep)`` restricted to the trained shadows, shapes (k, n)."""
    from joblib import Parallel, delayed

    def one(i: int) -> tuple[np.ndarray, np.ndarray]:
        pred = trainer(X[keep[i]], yi[keep[i]], seed * 1009 + i)
        return _label_log_probs(pred, X, yi)

    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    n_shadows = len(keep)
    t0 = time.perf_counter()
    lpy: list[np.ndarray] = []
    lpn: list[np.ndarray] = []
    # one BLAS/OpenMP thread per shadow when shadows already run in parallel (no oversubscription)
    limit = threadpool_limits(limits=1) if n_jobs > 1 else nullcontext()
    with limit, Parallel(n_jobs=n_jobs, prefer="threads") as par:
        for start in range(0, n_shadows, n_jobs):
            batch = range(start, min(start + n_jobs, n_shadows))
            for a, b in par(delayed(one)(i) for i in batch):
                lpy.append(a)
                lpn.append(b)
            progress(0.1 + 0.8 * len(lpy) / n_shadows, f"trained {len(lpy)}/{n_shadows} shadow models")
            if budget_s is not None and len(lpy) >= 2:
                elapsed = time.perf_counter() - t0
                per_batch = elapsed / (start // n_jobs + 1)
                if elapsed + per_batch > budget_s:  # the next batch would overrun the budget
                    break
    k = len(lpy)
    return np.stack(lpy), np.stack(lpn), keep[:k], k


def membership_inference(
    model: BaseModel,
    members: Dataset | tuple[np.ndarray, np.ndarray],
    nonmembers: Dataset | tuple[np.ndarray, np.ndarray],
    *,
    attacks: Sequence[str] = ATTACKS,
    n_shadows: int = 16,
    shadow_budget_s: float | None = None,
    trainer: ShadowTrainer | None = None,
    recipe: TrainingRecipe | None = None,
    max_rows: int | None = None,
    rmia_a: float = 0.3,
    rmia_gamma: float = 1.0,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> MembershipReport:
    """Run membership-inference attacks on ``model`` with known members and non-members.

    Parameters
    ----------
    model : the target (any adapter with probabilities).
    members, nonmembers : ``Dataset`` or ``(X, y)``; rows of the training set and rows the model
        never saw. Non-member rows identical to a member row are dropped (and counted in ``overlap``).
    attacks : any of ``loss``, ``lira_offline``, ``lira_online``, ``rmia``.
    n_shadows : shadow / reference models to train (even numbers keep the IN/OUT design balanced).
    shadow_budget_s : stop training shadows after this many seconds (at least two are trained).
    trainer : ``trainer(X, y_index, seed) -> predict_proba``; default clones ``model``.
    recipe : training recipe for PyTorch shadows.
    max_rows : sample at most this many rows per side (stratified, reproducible).
    rmia_a, rmia_gamma : RMIA's offline correction ``a`` and pairwise threshold ``gamma``.
    n_jobs : parallel shadow trainings (default: the CPU count, at most ``n_shadows``).

    Raises
    ------
    DataError
        Missing labels, too few rows, or members and non-members that (almost) entirely overlap.
    """
    progress = progress or (lambda _f, _m: None)
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown or not attacks:
        raise DataError(f"unknown attack {unknown[0] if unknown else '(none)'!r}; "
                        f"expected some of {', '.join(ATTACKS)}")
    X_in, y_in = _as_xy(members, "members (training data)")
    X_out, y_out = _as_xy(nonmembers, "non-members (held-out data)")
    in_idx = np.arange(len(X_in))
    out_idx = np.arange(len(X_out))
    notes: list[str] = []

    overlap_mask = find_overlap(X_in, y_in, X_out, y_out) if len(X_in) and len(X_out) else np.zeros(0, bool)
    overlap = int(overlap_mask.sum())
    if overlap:
        if overlap > 0.5 * len(X_out):
            raise DataError(
                f"members and non-members overlap: {overlap} of {len(X_out)} held-out rows also appear "
                "in the training data; the held-out set must be data the model was not trained on"
            )
        notes.append(f"{overlap} held-out rows also appear in the training data and were dropped "
                     "from the non-members")
        out_idx = out_idx[~overlap_mask]
    for what, idx in (("members (training rows)", in_idx), ("non-members (held-out rows)", out_idx)):
        if len(idx) < MIN_ROWS:
            raise DataError(f"too few {what} for membership inference: {len(idx)} (need at least "
                            f"{MIN_ROWS}); a held-out set separate from the training data is required")
    rng = np.random.default_rng(seed)
    if max_rows is not None:
        if len(in_idx) > max_rows:
            in_idx = np.sort(rng.choice(in_idx, size=max_rows, replace=False))
            notes.append(f"members sampled to {max_rows} rows")
        if len(out_idx) > max_rows:
            out_idx = np.sort(rng.choice(out_idx, size=max_rows, replace=False))
            notes.append(f"non-members sampled to {max_rows} rows")

    X = np.concatenate([X_in[in_idx], X_out[out_idx]])
    y = np.concatenate([y_in[in_idx], y_out[out_idx]])
    yi = model.label_index(y)
    labels = np.concatenate([np.ones(len(in_idx), np.int64), np.zeros(len(out_idx), np.int64)])
    n = len(X)

    progress(0.02, "scoring the target model")
    t_lpy, t_lpn = _label_log_probs(_target_predictor(model), X, yi)
    results: dict[str, AttackResult] = {}
    if "loss" in attacks:
        results["loss"] = roc_metrics(t_lpy, labels, "loss")

    wanted = [a for a in attacks if a in SHADOW_ATTACKS]
    k = 0
    shadow_time = 0.0
    if wanted:
        reason = None
        if n < MIN_SHADOW_POOL:
            reason = f"only {n} rows in all, shadow models need at least {MIN_SHADOW_POOL}"
        elif n_shadows < 2:
            reason = "shadow attacks need n_shadows >= 2"
        elif trainer is None:
            try:
                trainer = default_trainer(model, recipe)
            except DataError as exc:
                reason = str(exc)
        if reason is not None:
            notes.append(f"skipped {', '.join(wanted)}: {reason}")
        else:
            assert trainer is not None
            # paired design: every row is IN exactly half of the shadows
            keep = np.argsort(rng.random((n_shadows, n)), axis=0) < n_shadows // 2
            jobs = max(1, min(n_jobs or (os.cpu_count() or 1), n_shadows))
            t0 = time.perf_counter()
            s_lpy, s_lpn, keep, k = _train_shadows(trainer, X, yi, keep, seed=seed, n_jobs=jobs,
                                                   budget_s=shadow_budget_s, progress=progress)
            shadow_time = time.perf_counter() - t0
            if k < n_shadows:
                notes.append(f"shadow budget of {shadow_budget_s:g}s reached after {k} of {n_shadows} "
                             "shadow models")
            results.update(_shadow_attacks(wanted, t_lpy, t_lpn, s_lpy, s_lpn, keep, labels,
                                           rmia_a=rmia_a, gamma=rmia_gamma, rng=rng))
    progress(1.0, "membership inference done")
    return MembershipReport(attacks=results, member_index=in_idx, nonmember_index=out_idx, n_shadows=k,
                            shadow_time_s=shadow_time, overlap=overlap, notes=notes)


def _shadow_attacks(
    wanted: Sequence[str],
    t_lpy: np.ndarray,
    t_lpn: np.ndarray,
    s_lpy: np.ndarray,
    s_lpn: np.ndarray,
    keep: np.ndarray,
    labels: np.ndarray,
    *,
    rmia_a: float,
    gamma: float,
    rng: np.random.Generator,
) -> dict[str, AttackResult]:
    out: dict[str, AttackResult] = {}
    k = len(keep)
    fixed_var = k < 64  # Carlini et al.: share the variance across rows with few shadows
    phi_t = _logit_conf(t_lpy, t_lpn)
    phi_s = _logit_conf(s_lpy, s_lpn)
    mu_out, sd_out, pooled_out = _masked_mean_std(phi_s, ~keep)
    if "lira_offline" in wanted:
        sd = pooled_out if fixed_var else sd_out
        # one-sided test: how far above the OUT distribution the target's confidence lies
        out["lira_offline"] = roc_metrics((phi_t - mu_out) / sd, labels, "lira_offline")
    if "lira_online" in wanted:
        mu_in, sd_in, pooled_in = _masked_mean_std(phi_s, keep)
        s_in = pooled_in if fixed_var else sd_in
        s_out = pooled_out if fixed_var else sd_out
        score = _norm_logpdf(phi_t, mu_in, s_in) - _norm_logpdf(phi_t, mu_out, s_out)
        out["lira_online"] = roc_metrics(score, labels, "lira_online")
    if "rmia" in wanted:
        p_t = np.exp(t_lpy)
        p_s = np.exp(s_lpy)
        # online when shadows include IN models for each row (always, in the paired design, with k >= 2)
        has_in = keep.any(axis=0)
        p_all = p_s.mean(axis=0)
        cnt_out = (~keep).sum(axis=0)
        p_out = np.where(cnt_out > 0, np.where(~keep, p_s, 0.0).sum(axis=0) / np.maximum(cnt_out, 1), p_all)
        offline = 0.5 * ((1 + rmia_a) * p_out + (1 - rmia_a))
        p_x = np.where(has_in, p_all, offline)
        ratio = p_t / np.maximum(p_x, _EPS)
        # population rows z: a sample of the rows (the paper draws z from the population)
        nz = min(len(ratio), 5000)
        z = np.sort(ratio[rng.choice(len(ratio), size=nz, replace=False)])
        score = np.searchsorted(z, ratio / gamma, side="right") / nz
        # break ties among rows that beat every z by the ratio itself (keeps low-FPR resolution)
        score = score + 1e-9 * np.tanh(np.log(np.maximum(ratio, _EPS)))
        out["rmia"] = roc_metrics(score, labels, "rmia")
    return out
