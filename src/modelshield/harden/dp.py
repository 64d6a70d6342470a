"""Differentially private training (DP-SGD) with noise calibrated to a target ε.

DP-SGD (Abadi et al. 2016): sample each training row with probability ``q`` (Poisson sampling), clip
each row's gradient to L2 norm ``C``, sum, add Gaussian noise ``N(0, sigma^2 C^2)``, divide by the expected
batch size, and take an optimizer step. ``sigma`` is the smallest noise multiplier for which the
accountant (:mod:`modelshield.privacy.accounting`, RDP by default) certifies the target
(ε, δ) after ``epochs / q`` steps.

Paths
-----
``mode="fast"`` (the default for models whose parameters all live in ``nn.Linear`` layers: MLPs,
    logistic regression)
    One forward and one backward pass. A custom autograd function for each linear layer keeps its
    input activations ``a`` and receives the output gradients ``g``; the per-sample gradient of a
    linear layer is ``g_i a_iᵀ``, so its norm is ``‖g_i‖·‖a_i‖`` (plus ``‖g_i‖`` for the bias) —
    computed without materialising per-sample gradients (the "ghost norm" of Goodfellow 2015 / Li et
    al. 2022) — and the clipped sum is one matrix product ``(c ⊙ g)ᵀ a``. The autograd pass never
    computes the unclipped weight gradients it would throw away.
``mode="hooks"`` / ``mode="ghost"``
    Opacus's ``GradSampleModule`` (per-sample gradients from hooks) or its ghost-clipping mode,
    for any module Opacus supports. Same sampling, clipping, noise and accounting.

References
----------
.. [1] M. Abadi et al., "Deep Learning with Differential Privacy", CCS 2016.
.. [2] I. Goodfellow, "Efficient Per-Example Gradient Computations", arXiv:1510.01799, 2015.
.. [3] X. Li, F. Tramèr, P. Liang, T. Hashimoto, "Large Language Models Can Be Strong Differentially
   Private Learners", ICLR 2022 (ghost clipping).
.. [4] A. Yousefpour et al., "Opacus: User-Friendly Differential Privacy Library in PyTorch", 2021.

Examples
--------
>>> module, report = train_dp_classifier(net, X, y, epsilon=3.0, delta=1e-5, epochs=30,
...                                      batch_size=64, seed=0)                   # doctest: +SKIP
>>> report.epsilon <= 3.0                                                        # doctest: +SKIP
True
"""

from __future__ import annotations

import copy
import io
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from modelshield.data.numeric import numeric_features, require_numeric
from modelshield.errors import DataError
from modelshield.models.base import Capability
from modelshield.models.wrap import wrap_object
from modelshield.privacy.accounting import calibrate_noise, compute_epsilon
from modelshield.privacy.membership import membership_inference, rebuild_torchscript_mlp

__all__ = [
    "DPConfig",
    "DPLogisticRegression",
    "DPReport",
    "HardenDPResult",
    "MODES",
    "PREPROCESSING_NOTE",
    "fast_path_supported",
    "harden_dp",
    "split_pipeline",
    "train_dp_classifier",
]

MODES = ("auto", "fast", "hooks", "ghost")


@dataclass(frozen=True, kw_only=True)
class DPReport:
    """What DP training guaranteed and how. ``epsilon`` is the accountant's ε for the steps taken."""

    epsilon: float
    delta: float
    target_epsilon: float | None
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    epochs: int
    batch_size: int
    accountant: str
    mode: str
    train_time_s: float
    n_train: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# the fast path for linear layers
# --------------------------------------------------------------------------------------------
def fast_path_supported(module: Any) -> bool:
    """True when every trainable parameter belongs to an ``nn.Linear`` layer (and there are no
    batch-norm layers, which mix rows and are not DP-compatible)."""
    import torch  # lazy: torch is heavy; imported only where it runs

    linear_params: set[int] = set()
    for m in module.modules():
        if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm,)):
            return False
        if isinstance(m, torch.nn.Linear):
            linear_params.update(id(p) for p in m.parameters(recurse=False))
    params = [p for p in module.parameters() if p.requires_grad]
    return bool(params) and all(id(p) in linear_params for p in params)


def _linear_fn() -> Any:
    import torch  # lazy: torch is heavy; imported only where it runs

    class _DPLinear(torch.autograd.Function):
        """``F.linear`` whose backward hands (activations, output grads) to a record instead of
        computing weight gradients."""

        @staticmethod
        def forward(ctx: Any, x: Any, weight: Any, bias: Any, record: list) -> Any:  # type: ignore[override]
            ctx.save_for_backward(x, weight)
            ctx.record = record
            return torch.nn.functional.linear(x, weight, bias)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:  # type: ignore[override]
            x, weight = ctx.saved_tensors
            ctx.record.append((x, g))
            gx = g @ weight if ctx.needs_input_grad[0] else None
            return gx, None, None, None

    return _DPLinear


class _FastDP:
    """Swaps each ``nn.Linear``'s forward for the recording function while training."""

    def __init__(self, module: Any) -> None:
        import torch  # lazy: torch is heavy; imported only where it runs

        self.layers = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
        self.records: dict[int, list] = {id(m): [] for m in self.layers}
        self.fn = _linear_fn()

    def __enter__(self) -> _FastDP:
        for m in self.layers:
            rec = self.records[id(m)]
            def fwd(x: Any, _m: Any = m, _rec: list = rec, _fn: Any = self.fn) -> Any:
                return _fn.apply(x, _m.weight, _m.bias, _rec)

            m.forward = fwd  # instance attribute shadows the class method
        return self

    def __exit__(self, *exc: Any) -> None:
        for m in self.layers:
            if "forward" in m.__dict__:
                del m.forward

    def clipped_sum(self, batch: int, max_norm: float) -> list[tuple[Any, Any]]:
        """Per-sample clipped gradient sums, as ``(param, grad)`` pairs."""
        import torch  # lazy: torch is heavy; imported only where it runs

        with torch.no_grad():  # the recorded activations may require grad: build no graph here
            return self._clipped_sum(batch, max_norm)

    def noisy_grads(self, batch: int, max_norm: float, scale: float, noise: dict[int, Any],
                    noise_scale: float) -> list[tuple[Any, Any]]:
        """``(param, scale * (clipped sum + noise_scale * noise[id(param)]))`` pairs: the DP gradient in
        one pass. ``noise`` holds standard-normal tensors shaped like the parameters (used as scratch)."""
        import torch  # lazy: torch is heavy; imported only where it runs

        with torch.no_grad():
            return self._clipped_sum(batch, max_norm, scale=scale, noise=noise, noise_scale=noise_scale)

    def _clipped_sum(self, batch: int, max_norm: float, *, scale: float = 1.0, noise: dict[int, Any] | None = None,
                     noise_scale: float = 0.0) -> list[tuple[Any, Any]]:
        # ``scale * (sum_i c_i grad_i + noise_scale * noise)`` per parameter, c_i = min(1, C / ||grad_i||).
        # Norms use ``vector_norm`` (one fused reduction per tensor; ``pow(2).sum`` makes a temporary and
        # was the costliest elementwise work of a step), the scale is folded into the clipping coefficients
        # and the noise into the matrix product (``addmm``), so no extra pass over the gradients is made.
        import torch

        vn = torch.linalg.vector_norm
        sq = None
        flat: list[tuple[Any, Any, Any]] = []  # (layer, a, g): 2-D, or 3-D for sequences
        for m in self.layers:
            rec = self.records[id(m)]
            if not rec:
                continue
            x, g = rec.pop()
            rec.clear()
            if x.dim() > 2:  # sequences: per-sample grad = sum_t g_t a_tᵀ (materialised)
                a3, g3 = x.reshape(batch, -1, x.shape[-1]), g.reshape(batch, -1, g.shape[-1])
                per = torch.einsum("bto,bti->boi", g3, a3)
                s = vn(per, dim=(1, 2)).square_()
                if m.bias is not None:
                    s = s + vn(g3.sum(1), dim=1).square_()
                flat.append((m, a3, g3))
            else:
                gn = vn(g, dim=1).square_()
                an = vn(x, dim=1).square_()
                # ||g a^T||^2 + ||g||^2 = ||g||^2 (||a||^2 + 1)
                s = gn * (an + 1.0) if m.bias is not None else gn * an
                flat.append((m, x, g))
            sq = s if sq is None else sq.add_(s)
        if sq is None:
            return []
        coef = (max_norm / (sq.sqrt_() + 1e-6)).clamp_(max=1.0)
        if scale != 1.0:
            coef = coef.mul_(scale)
        beta = scale * noise_scale
        out = []
        for m, a, g in flat:
            nw = noise.get(id(m.weight)) if noise is not None else None
            nb = noise.get(id(m.bias)) if noise is not None and m.bias is not None else None
            if a.dim() == 3:
                gc = g * coef[:, None, None]
                gw = torch.einsum("bto,bti->oi", gc, a)
                gb = gc.sum(dim=(0, 1))
                if nw is not None:
                    gw = gw.add_(nw, alpha=beta)
                out.append((m.weight, gw))
                if m.bias is not None:
                    out.append((m.bias, gb.add_(nb, alpha=beta) if nb is not None else gb))
                continue
            # gw = gᵀ diag(c) a: the coefficients scale the narrower of g and a (fewer products)
            if a.shape[1] < g.shape[1]:
                lhs, rhs = g.t(), a * coef[:, None]
            else:
                lhs, rhs = (g * coef[:, None]).t(), a
            gw = torch.addmm(nw, lhs, rhs, beta=beta) if nw is not None else lhs @ rhs
            out.append((m.weight, gw))
            if m.bias is not None:  # gb = gᵀ c: a matrix-vector product, not a column sum of c ⊙ g
                gb = torch.addmv(nb, g.t(), coef, beta=beta) if nb is not None else g.t() @ coef
                out.append((m.bias, gb))
        return out


def _make_optimizer(params: Any, optimizer: str, lr: float, weight_decay: float) -> Any:
    import torch  # lazy: torch is heavy; imported only where it runs

    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise DataError(f"unknown optimizer {optimizer!r}; expected 'adam' or 'sgd'")


def _train_fast(module: Any, Xt: Any, yt: Any, *, q: float, steps: int, sigma: float, max_norm: float,
                opt: Any, gen: Any, rng: np.random.Generator) -> None:
    import torch  # lazy: torch is heavy; imported only where it runs

    n = len(Xt)
    expected = q * n
    scale = 1.0 / expected
    params = [p for p in module.parameters() if p.requires_grad]
    sizes = [p.numel() for p in params]
    # one buffer for the step's noise, drawn with a single ``normal_`` (the same stream as
    # ``randn(sum(sizes))``); its views, shaped like the parameters, are made once
    flat_noise = torch.empty(sum(sizes))
    views = {id(p): v.view(p.shape) for p, v in zip(params, flat_noise.split(sizes))}
    module.train()
    with _FastDP(module) as fast:
        for _ in range(steps):
            # Poisson sampling: each row independently with probability q. Drawn as a binomial batch
            # size and a uniform subset of that size (the same distribution, without n coin flips)
            idx = np.sort(rng.choice(n, size=int(rng.binomial(n, q)), replace=False))
            flat_noise.normal_(generator=gen)
            grads: dict[int, Any] = {}
            if len(idx):
                it = torch.from_numpy(idx)
                xb, yb = Xt.index_select(0, it), yt.index_select(0, it)
                loss = torch.nn.functional.cross_entropy(module(xb), yb, reduction="sum")
                loss.backward()
                for p, g in fast.noisy_grads(len(idx), max_norm, scale, views, sigma * max_norm):
                    grads[id(p)] = g
            with torch.no_grad():
                for p in params:  # (noise * sigma * C + clipped sum) / expected batch
                    g = grads.get(id(p))
                    p.grad = g if g is not None else views[id(p)].mul(sigma * max_norm * scale)
            opt.step()  # every trainable parameter's .grad is assigned afresh each step: no zero_grad needed
    for p in params:
        p.grad = None
    module.eval()


def _opacus_loader(Xt: Any, yt: Any, steps_per_epoch: int, seed: int) -> Any:
    """A loader with ``steps_per_epoch`` batches: Opacus samples at rate ``1 / len(loader)``."""
    import torch  # lazy: torch is heavy; imported only where it runs

    n = len(Xt)
    batch = math.ceil(n / steps_per_epoch)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(Xt, yt), batch_size=batch,
                                       generator=torch.Generator().manual_seed(seed))


def _train_opacus(module: Any, loader: Any, *, epochs: int, sigma: float, max_norm: float,
                  optimizer: str, lr: float, weight_decay: float, mode: str, seed: int) -> tuple[Any, int]:
    import torch  # lazy: torch is heavy; imported only where it runs
    from opacus import PrivacyEngine

    opt = _make_optimizer(module.parameters(), optimizer, lr, weight_decay)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "secure RNG turned off": our noise is seeded
        engine = PrivacyEngine(accountant="rdp", secure_mode=False)
    criterion = torch.nn.CrossEntropyLoss()
    module.train()
    try:
        made = engine.make_private(module=module, optimizer=opt, data_loader=loader, noise_multiplier=sigma,
                                   max_grad_norm=max_norm, poisson_sampling=True, grad_sample_mode=mode,
                                   criterion=criterion, noise_generator=torch.Generator().manual_seed(seed + 1))
    except Exception as exc:  # opacus's UnsupportedModuleError and friends: say what to change
        if type(exc).__module__.startswith("opacus"):
            raise DataError(f"Opacus cannot train this module privately ({mode} mode): {exc}") from exc
        raise
    if mode == "ghost":
        gsm, dp_opt, crit, dl = made
    else:
        gsm, dp_opt, dl = made
        crit = criterion
    gsm.train()
    steps = 0
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    for _ in range(epochs):
        for xb, yb in dl:
            dp_opt.zero_grad()
            if len(xb) == 0:
                dp_opt.step()  # an empty Poisson batch is still a (noise-only) step
                steps += 1
                continue
            loss = crit(gsm(xb), yb)
            loss.backward()
            dp_opt.step()
            steps += 1
    plain = gsm._module if hasattr(gsm, "_module") else module
    for m in plain.modules():  # drop Opacus's hooks and per-sample buffers from the returned module
        for attr in ("grad_sample", "_forward_counter"):
            if hasattr(m, attr):
                try:
                    delattr(m, attr)
                except AttributeError:
                    pass
    if hasattr(gsm, "remove_hooks"):
        gsm.remove_hooks()
    for p in plain.parameters():
        for attr in ("grad_sample", "_forward_counter", "summed_grad"):
            if hasattr(p, attr):
                delattr(p, attr)
    return plain.eval(), steps


def train_dp_classifier(
    module: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 0.01,
    max_grad_norm: float = 1.0,
    noise_multiplier: float | None = None,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    accountant: str = "rdp",
    mode: str = "auto",
    seed: int = 0,
) -> tuple[Any, DPReport]:
    """Train ``module`` (in place) with DP-SGD on ``(X, y)``; returns ``(module, DPReport)``.

    Parameters
    ----------
    module : a ``torch.nn.Module`` mapping float32 rows to logits. Trained from its current weights
        (pass a freshly initialised module for a private model).
    X, y : features ``(n, ...)`` and class indices ``0..C-1``.
    epsilon, delta : the privacy target. ``delta`` defaults to ``min(1e-5, 0.1 / n)``. Give
        ``noise_multiplier`` instead of ``epsilon`` to fix the noise; the report has the ε spent.
    epochs, batch_size : the plan: ``k = round(n / batch_size)`` steps per epoch, Poisson sampling at
        rate ``q = 1 / k`` (expected batch ``n / k``, as Opacus does), ``epochs * k`` steps.
    lr, optimizer, weight_decay : the optimizer applied to the noisy gradient (post-processing).
    max_grad_norm : the per-sample clipping bound ``C``.
    accountant : ``"rdp"`` (default) or ``"pld"`` for calibration and the reported ε.
    mode : ``"auto"`` (fast path when supported, else Opacus hooks), ``"fast"``, ``"hooks"``,
        ``"ghost"``.
    seed : seeds sampling, noise and nothing else (initialise ``module`` yourself).

    Raises
    ------
    DataError
        Bad shapes or labels, an unreachable ε, an unknown mode, or a module the fast path cannot
        handle when ``mode="fast"``.
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    t0 = time.perf_counter()
    if mode not in MODES:
        raise DataError(f"unknown DP mode {mode!r}; expected one of {', '.join(MODES)}")
    X = np.asarray(X)
    y = np.asarray(y)
    n = len(X)
    if n < 2 or len(y) != n:
        raise DataError(f"DP training needs matching features and labels; got {n} rows and {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise DataError("DP training needs class indices 0..C-1 as labels")
    if epochs < 1 or batch_size < 1:
        raise DataError("epochs and batch_size must be positive")
    if not max_grad_norm > 0:
        raise DataError("max_grad_norm must be positive")
    if not (lr > 0 and np.isfinite(lr)):
        raise DataError(f"the learning rate must be a positive number, got {lr}", cli_hint="--lr")
    if accountant not in ("rdp", "pld"):
        raise DataError(f"unknown accountant {accountant!r}; expected rdp or pld")
    batch_size = min(batch_size, n)
    delta = float(delta) if delta is not None else min(1e-5, 0.1 / n)
    if epsilon is None and noise_multiplier is None:
        raise DataError("give a target epsilon (or a noise multiplier)")
    if mode == "auto":
        mode = "fast" if fast_path_supported(module) else "hooks"
    if mode == "fast" and not fast_path_supported(module):
        raise DataError("the fast DP path supports modules whose trainable parameters are all in "
                        "nn.Linear layers; use mode='hooks' or 'ghost' (Opacus)")
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    # the plan: Poisson sampling at rate q = 1 / steps_per_epoch (as Opacus does), epochs * that steps
    steps_per_epoch = max(1, round(n / batch_size))
    loader = None
    if mode != "fast":
        loader = _opacus_loader(Xt, yt, steps_per_epoch, seed)
        steps_per_epoch = len(loader)
    q = 1.0 / steps_per_epoch
    steps = epochs * steps_per_epoch
    sigma = float(noise_multiplier) if noise_multiplier is not None else calibrate_noise(
        float(epsilon), delta, q, steps, accountant)  # type: ignore[arg-type]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if mode == "fast":
            opt = _make_optimizer([p for p in module.parameters() if p.requires_grad], optimizer, lr,
                                  weight_decay)
            _train_fast(module, Xt, yt, q=q, steps=steps, sigma=sigma, max_norm=max_grad_norm, opt=opt,
                        gen=torch.Generator().manual_seed(seed + 1), rng=np.random.default_rng(seed))
        else:
            module, steps_done = _train_opacus(module, loader, epochs=epochs, sigma=sigma,
                                               max_norm=max_grad_norm, optimizer=optimizer, lr=lr,
                                               weight_decay=weight_decay, mode=mode, seed=seed)
            steps = max(steps_done, 1)
    spent = compute_epsilon(sigma, q, steps, delta, accountant)
    report = DPReport(epsilon=spent.epsilon, delta=delta, target_epsilon=epsilon, noise_multiplier=sigma,
                      max_grad_norm=max_grad_norm, sample_rate=q, steps=steps, epochs=epochs,
                      batch_size=round(q * n), accountant=accountant, mode=mode,
                      train_time_s=time.perf_counter() - t0, n_train=n)
    return module, report


# --------------------------------------------------------------------------------------------
# a scikit-learn-style DP linear classifier
# --------------------------------------------------------------------------------------------
class DPLogisticRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression trained with DP-SGD (same accountant as the torch path).

    A scikit-learn-compatible estimator (``fit``, ``predict``, ``predict_proba``, ``classes_``,
    ``coef_``, ``intercept_``). Scale features with *public* bounds beforehand: fitting a scaler on
    the private data leaks through its statistics.

    Parameters
    ----------
    epsilon, delta : privacy target (``delta`` defaults to ``min(1e-5, 0.1 / n)``).
    epochs, batch_size, lr, max_grad_norm, seed : DP-SGD settings.
    accountant : ``"rdp"`` (default) or ``"pld"``, for calibration and the reported epsilon.
    """

    def __init__(self, *, epsilon: float = 1.0, delta: float | None = None, epochs: int = 30,
                 batch_size: int = 64, lr: float = 0.05, max_grad_norm: float = 1.0,
                 seed: int = 0, accountant: str = "rdp") -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_grad_norm = max_grad_norm
        self.seed = seed
        self.accountant = accountant

    def fit(self, X: Any, y: Any) -> DPLogisticRegression:
        import torch  # lazy: torch is heavy; imported only where it runs

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataError("DPLogisticRegression needs 2-D features")
        self.classes_, yi = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError("DPLogisticRegression needs at least two classes")
        self.n_features_in_ = X.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            lin = torch.nn.Linear(X.shape[1], len(self.classes_))
            torch.nn.init.zeros_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
        lin, self.dp_report_ = train_dp_classifier(
            lin, X, yi.astype(np.int64), epsilon=self.epsilon, delta=self.delta, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, max_grad_norm=self.max_grad_norm, optimizer="sgd",
            mode="fast", accountant=self.accountant, seed=self.seed)
        self.coef_ = lin.weight.detach().double().numpy()
        self.intercept_ = lin.bias.detach().double().numpy()
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise DataError("This DPLogisticRegression instance is not fitted yet. Call 'fit' first.")
        return np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        z = self.decision_function(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        return self.classes_[np.argmax(scores, axis=1)]


# --------------------------------------------------------------------------------------------
# harden an existing model: retrain privately, compare utility and leakage
# --------------------------------------------------------------------------------------------
_LINEAR_SKLEARN = ("LogisticRegression", "LogisticRegressionCV", "SGDClassifier", "LinearSVC", "RidgeClassifier",
                   "RidgeClassifierCV", "Perceptron", "DPLogisticRegression")


@dataclass(kw_only=True)
class HardenDPResult:
    """The DP model (adapter and serialised bytes), its :class:`DPReport`, and before/after rows
    ``{"metric", "before", "after"}`` for accuracy and membership-inference leakage."""

    model: Any
    model_bytes: bytes
    model_format: str
    dp: DPReport
    comparison: list[dict[str, Any]]
    #: what the DP guarantee does not cover (e.g. a pipeline's preprocessing statistics), one sentence each
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dp": self.dp.to_dict(), "model_format": self.model_format, "comparison": self.comparison,
                "notes": list(self.notes)}


PREPROCESSING_NOTE = ("the pipeline's preprocessing steps ({steps}) are kept as they were fitted, without DP: the "
                      "(epsilon, delta) guarantee covers the final classifier's training only, not the statistics "
                      "those steps learned from the training data (e.g. a scaler's means and scales) and publish in "
                      "the model; for end-to-end DP, fit them on public data or fixed bounds")


def split_pipeline(est: Any) -> tuple[list[tuple[str, Any]], tuple[str, Any]]:
    """``(preprocessing steps, (name, final estimator))`` of a scikit-learn model DP training supports: a
    linear classifier (:data:`_LINEAR_SKLEARN`), or a fitted :class:`~sklearn.pipeline.Pipeline` of
    transformers ending in one. Anything else is a :class:`DataError` naming what is supported."""
    supported = ", ".join(_LINEAR_SKLEARN[:4])
    if isinstance(est, Pipeline):
        steps = [(str(n), t) for n, t in est.steps]
        name, final = steps[-1]
        if type(final).__name__ not in _LINEAR_SKLEARN:
            raise DataError(f"DP training of a scikit-learn Pipeline needs a linear classifier as its final step "
                            f"({supported}, ...); this pipeline ends with {type(final).__name__} ({name!r})")
        pre = [(n, t) for n, t in steps[:-1] if t is not None and t != "passthrough"]
        for n, t in pre:
            if not hasattr(t, "transform"):
                raise DataError(f"DP training of a scikit-learn Pipeline needs transformers before the final "
                                f"step; step {n!r} is a {type(t).__name__} without transform()")
        return pre, (name, final)
    name = type(est).__name__
    if name not in _LINEAR_SKLEARN:
        raise DataError(f"DP training supports PyTorch models, scikit-learn linear classifiers ({supported}, ...) "
                        f"and Pipelines of transformers ending in one; got {name}")
    return [], ("classifier", est)


def _transform(steps: list[tuple[str, Any]], X: np.ndarray) -> np.ndarray:
    """``X`` through the fitted preprocessing ``steps``; a step that cannot take it is a :class:`DataError`."""
    out: Any = X
    for name, step in steps:
        try:
            out = step.transform(out)
        except NotFittedError:
            raise DataError(f"pipeline step {name!r} ({type(step).__name__}) is not fitted; DP training keeps "
                            "the preprocessing as fitted, so save the fitted pipeline") from None
        except (ValueError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"pipeline step {name!r} ({type(step).__name__}) cannot transform the training "
                            f"data: {first}") from None
    if hasattr(out, "toarray"):  # a sparse matrix (e.g. from an encoder)
        out = out.toarray()
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise DataError("the pipeline's preprocessing gives non-finite or non-tabular features; DP training "
                        "needs finite 2-D features")
    return arr


def _fresh_module(model: Any) -> Any:
    """A re-initialised copy of a PyTorch adapter's module: ``clone_unfitted`` for eager modules, a
    rebuilt eager ``nn.Sequential`` (then re-initialised) for a TorchScript MLP."""
    import torch  # lazy: torch is heavy; imported only where it runs

    if Capability.RETRAINABLE in model.capabilities:
        return model.clone_unfitted()
    eager = rebuild_torchscript_mlp(getattr(model, "module", None))
    if eager is None:
        raise DataError("this PyTorch model cannot be re-initialised for DP training: TorchScript is "
                        "supported only for an nn.Sequential of Linear layers and activations; pass "
                        "the nn.Module checkpoint (torch.save of the module) instead")
    for m in eager.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    return eager.train()


def _accuracy(model: Any, ds: Any) -> float:
    return float(np.mean(model.predict(ds.X) == ds.y))


@dataclass(frozen=True, kw_only=True)
class DPConfig:
    """How :func:`harden_dp` retrains (plain data: CLI flags, JSON and keywords alike).

    ``epsilon`` (required) and ``delta`` (default ``min(1e-5, 0.1 / n)``) the target guarantee;
    ``epochs``, ``batch_size``, ``lr`` and ``max_grad_norm`` (per-example clipping) the DP-SGD run;
    ``mode`` one of :data:`MODES` (PyTorch), ``accountant`` ``rdp`` or ``pld``; ``membership`` runs the
    before/after membership-inference comparison with ``n_shadows`` reference models when test data is
    given; ``output_format`` ``native`` or ``onnx``."""

    epsilon: float
    delta: float | None = None
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    max_grad_norm: float = 1.0
    mode: str = "auto"
    accountant: str = "rdp"
    seed: int = 0
    membership: bool = True
    n_shadows: int = 4
    output_format: str = "native"


def harden_dp(
    model: Any,
    train: Any,
    test: Any | None = None,
    *,
    config: DPConfig | None = None,
    **settings: Any,
) -> HardenDPResult:
    """Retrain ``model`` (an adapter) from scratch with DP-SGD on ``train``; compare with the original.

    PyTorch models are re-initialised (``clone_unfitted``; a TorchScript ``nn.Sequential`` MLP is
    rebuilt as an eager module first) and trained with :func:`train_dp_classifier`, then serialised
    with ``torch.save`` (``output_format="native"``; TorchScript in, TorchScript out) or exported to
    ONNX (``"onnx"``). scikit-learn linear classifiers are replaced by
    :class:`DPLogisticRegression` (saved with joblib); in a ``Pipeline`` of transformers ending in a linear
    classifier (e.g. ``StandardScaler`` + ``LogisticRegression``) the final step is replaced and the
    preprocessing steps are kept as fitted (copies, not refitted), so the DP classifier sees the features
    the original saw. The DP guarantee then covers the classifier only (``notes`` says so: the steps'
    statistics came from the data without DP). The settings come from ``config`` (a :class:`DPConfig`)
    and/or keywords naming its fields (``epsilon=3.0, epochs=20``), which override the config's values
    (``epsilon`` is required one way or the other). The comparison reports accuracy
    on ``train`` and ``test`` and, when ``test`` is given, membership-inference AUC and TPR at 1 % /
    0.1 % FPR (loss + RMIA attacks with ``n_shadows`` reference models) before and after.
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    if config is None and "epsilon" not in settings:
        raise TypeError("harden_dp() needs epsilon= (or config=DPConfig(epsilon=...))")
    cfg = replace(config, **settings) if config is not None else DPConfig(**settings)
    epsilon, delta, epochs, batch_size, lr = cfg.epsilon, cfg.delta, cfg.epochs, cfg.batch_size, cfg.lr
    max_grad_norm, mode, accountant, seed, output_format = (cfg.max_grad_norm, cfg.mode, cfg.accountant, cfg.seed,
                                                            cfg.output_format)
    if output_format not in ("native", "onnx"):
        raise DataError(f"unknown output format {output_format!r}; expected 'native' or 'onnx'")
    if mode not in MODES:  # checked here too: the scikit-learn path would otherwise ignore a typo
        raise DataError(f"unknown DP mode {mode!r}; expected one of {', '.join(MODES)}")
    if train is None or train.y is None:
        raise DataError("DP training needs labelled training data", cli_hint="--train with --target")
    X = numeric_features(train, "training data")
    if test is not None:
        require_numeric(test, "test data")
    yi = model.label_index(train.y)
    notes: list[str] = []
    if model.framework == "pytorch":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = _fresh_module(model)
        module, rep = train_dp_classifier(module, X, yi, epsilon=epsilon, delta=delta, epochs=epochs,
                                          batch_size=batch_size, lr=lr, max_grad_norm=max_grad_norm,
                                          accountant=accountant, mode=mode, seed=seed)
        new = wrap_object(module, classes=list(model.classes))
        buf = io.BytesIO()
        if output_format == "onnx":
            torch.onnx.export(module.eval(), (torch.as_tensor(X[:2]),), buf, dynamo=False, input_names=["x"],
                              output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
            fmt = "onnx"
        elif isinstance(getattr(model, "module", None), torch.jit.ScriptModule):  # stay pickle-free
            torch.jit.save(torch.jit.script(module.eval()), buf)
            fmt = "torchscript"
        else:
            torch.save(module.eval(), buf)
            fmt = "pytorch"
        data = buf.getvalue()
    elif model.framework == "sklearn":
        if output_format == "onnx":
            raise DataError("ONNX output is available for PyTorch models; use a .joblib output")
        est = getattr(model, "estimator", None)
        steps, final = split_pipeline(est)
        if mode not in ("auto", "fast"):
            raise DataError(f"DP mode {mode!r} is for PyTorch models; a scikit-learn linear model trains on the "
                            "fast path (mode auto or fast)")
        Xf = _transform(steps, X)
        clf = DPLogisticRegression(epsilon=epsilon, delta=delta, epochs=epochs, batch_size=batch_size, lr=lr,
                                   max_grad_norm=max_grad_norm, seed=seed, accountant=accountant).fit(
            Xf, model.classes[yi])
        rep = clf.dp_report_
        if steps:
            # the preprocessing steps are kept as fitted (copies): the DP model sees the features the original
            # classifier saw; their statistics were computed without DP (see PREPROCESSING_NOTE)
            fitted: Any = Pipeline([*copy.deepcopy(steps), (final[0], clf)])
            notes.append(PREPROCESSING_NOTE.format(steps=", ".join(type(t).__name__ for _, t in steps)))
        else:
            fitted = clf
        new = wrap_object(fitted)
        buf = io.BytesIO()
        joblib.dump(fitted, buf)
        data, fmt = buf.getvalue(), "joblib (pickle-based: loading it needs trust)"
    else:
        raise DataError(f"DP training needs a PyTorch or scikit-learn model, not {model.framework}")

    rows: list[dict[str, Any]] = [{"metric": "train_accuracy", "before": _accuracy(model, train),
                                   "after": _accuracy(new, train)}]
    if test is not None:
        rows.append({"metric": "test_accuracy", "before": _accuracy(model, test), "after": _accuracy(new, test)})
        if cfg.membership:
            for label, m in (("before", model), ("after", new)):
                mi = membership_inference(m, train, test, attacks=("loss", "rmia"), n_shadows=cfg.n_shadows,
                                          max_rows=2000, seed=seed, shadow_budget_s=60.0)
                best = mi.best
                # a TPR at an FPR the non-members cannot resolve (fewer than 1/FPR) is not a figure: None
                tpr1 = best.tpr_at_1pct_fpr if mi.resolvable(0.01) else None
                tpr01 = best.tpr_at_0_1pct_fpr if mi.resolvable(0.001) else None
                for metric, value in (("mia_auc", best.auc), ("mia_tpr_at_1pct_fpr", tpr1),
                                      ("mia_tpr_at_0_1pct_fpr", tpr01)):
                    row = next((r for r in rows if r["metric"] == metric), None)
                    if row is None:
                        row = {"metric": metric, "before": None, "after": None}
                        rows.append(row)
                    row[label] = value
    return HardenDPResult(model=new, model_bytes=data, model_format=fmt, dp=rep, comparison=rows, notes=notes)
