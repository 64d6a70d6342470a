"""Trigger-set watermarking of PyTorch classifiers, and measurements of how well it survives.

:func:`embed_watermark` teaches a model a secret trigger set (out-of-distribution noise inputs, each
with a label drawn uniformly at random) while it trains or fine-tunes on its task, by mixing a batch
of triggers into every clean batch. Ownership is later checked through the prediction API alone with
:func:`modelshield.theft.watermark.verify_watermark`, which first checks the owner's signed
commitment and the keyed derivation of the trigger set, then runs an exact binomial test.

:func:`watermark_robustness` measures what removal attempts do to it: fine-tuning on 10% of clean
data, 30% global magnitude pruning (``torch.nn.utils.prune``), and distillation into a freshly
initialised model, plus the false-claim rate on independently trained models.

Example
-------
>>> res = embed_watermark(net, X_train, y_train, n_triggers=100, signing_key=sk)  # doctest: +SKIP
>>> res.commitment.save("wm.commit.json")   # publish; keep res.key and res.triggers secret  # doctest: +SKIP
>>> verify_watermark(res.module, commitment=res.commitment, public_key=sk.public_key(),
...                  key=res.key).owned  # doctest: +SKIP
True

References
----------
.. [1] Y. Adi, C. Baum, M. Cisse, B. Pinkas, J. Keshet. "Turning Your Weakness Into a Strength:
   Watermarking Deep Neural Networks by Backdooring". USENIX Security 2018.
.. [2] J. Zhang et al. "Protecting Intellectual Property of Deep Neural Networks with Watermarking".
   AsiaCCS 2018 (noise and unrelated-content trigger sets).
.. [3] N. Lukas, E. Jiang, X. Li, F. Kerschbaum. "SoK: How Robust is Image Classification Deep Neural
   Network Watermarking?". IEEE S&P 2022 (removal attacks: fine-tuning, pruning, distillation).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._io import write_bytes_safely
from modelshield.data.dataset import Dataset
from modelshield.data.loaders import check_model_width
from modelshield.errors import DataError, UserError
from modelshield.protect.keys import PrivateKey, key_to_text, load_key_file, load_private_key
from modelshield.protect.loader import load_model
from modelshield.theft.fingerprint import (
    MIN_REFERENCES,
    Fingerprint,
    create_fingerprint,
    extracted_references,
    modified_references,
    retrained_references,
)
from modelshield.theft.training import (
    accuracy,
    check_labels,
    copy_module,
    distill,
    fine_tune,
    n_outputs,
    prune_magnitude,
    reinitialised,
    train_classifier,
)
from modelshield.theft.watermark import (
    DEFAULT_ALPHA,
    Commitment,
    TriggerSet,
    WatermarkVerdict,
    derivation_params,
    derive_trigger_set,
    false_claim_rate,
    new_watermark_key,
    trigger_agreement,
    verify_watermark,
)

__all__ = [
    "EmbedResult",
    "FingerprintConfig",
    "accuracy",
    "copy_module",
    "RobustnessRow",
    "WatermarkConfig",
    "WatermarkHardening",
    "WatermarkRobustness",
    "distill",
    "embed_watermark",
    "fine_tune",
    "fingerprint_model",
    "harden_watermark",
    "make_trigger_set",
    "prune_magnitude",
    "reinitialised",
    "train_classifier",
    "watermark_robustness",
]

TRIGGER_KINDS = ("noise",)


def make_trigger_set(
    n: int,
    *,
    input_shape: tuple[int, ...],
    n_classes: int,
    key: bytes,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    kind: str = "noise",
) -> TriggerSet:
    """The secret trigger set the watermark ``key`` defines: ``n`` random inputs with keyed random labels
    (:func:`~modelshield.theft.watermark.derive_trigger_set`).

    ``noise`` triggers are uniform in the box ``[lower, upper]`` (per feature; default ``[-3, 3]``,
    i.e. the range of standardised data): with many features such points are far from any natural
    input, so learning them barely touches the task. Labels are a keyed random permutation of a
    balanced multiset (each class ``n / n_classes`` times): whatever an independent model predicts on
    the triggers, its expected agreement is exactly ``1 / n_classes``, and the count is less
    dispersed than ``Binomial(n, 1 / n_classes)`` (sampling without replacement, Hoeffding 1963), so
    the binomial test is conservative. Being derived from the key, the labels cannot be chosen after
    the fact (e.g. copied from a model's answers).
    """
    if kind not in TRIGGER_KINDS:
        raise DataError(f"unknown trigger kind {kind!r}; expected one of: {', '.join(TRIGGER_KINDS)}")
    return derive_trigger_set(key, n, input_shape=input_shape, n_classes=n_classes, lower=lower, upper=upper,
                              kind=kind)


@dataclass(kw_only=True)
class EmbedResult:
    """The watermarked module (trained in place), its secret trigger set and what was measured."""

    module: Any
    triggers: TriggerSet
    key: bytes
    params: dict[str, Any]
    trigger_accuracy: float
    train_accuracy: float
    epochs: int
    history: list[float] = field(default_factory=list)
    commitment: Commitment | None = None

    def __repr__(self) -> str:  # never show the secret key
        return (f"EmbedResult(triggers={len(self.triggers)}, trigger_accuracy={self.trigger_accuracy:.3f}, "
                f"train_accuracy={self.train_accuracy:.3f}, epochs={self.epochs})")


def embed_watermark(
    module: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    key: bytes | None = None,
    signing_key: PrivateKey | None = None,
    n_triggers: int = 100,
    epochs: int = 40,
    lr: float = 1e-2,
    batch_size: int = 64,
    trigger_batch: int = 16,
    trigger_jitter: float = 0.0,
    min_trigger_accuracy: float = 1.0,
    max_extra_epochs: int = 40,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    seed: int = 0,
) -> EmbedResult:
    """Train (or fine-tune) a PyTorch classifier on ``(X, y)`` while embedding a trigger-set watermark.

    Parameters
    ----------
    module : ``torch.nn.Module`` mapping a float32 batch to logits; freshly initialised (training) or
        already trained (fine-tuning: pass a smaller ``lr`` such as ``1e-3``). Trained in place.
    X, y : clean training data; ``y`` holds class indices ``0..n_classes-1``.
    key : the secret 32-byte watermark key the trigger set is derived from (:func:`make_trigger_set`:
        ``n_triggers`` noise triggers inside ``[lower, upper]``, default ``[-3, 3]``); a fresh random
        key by default, returned in ``EmbedResult.key`` (keep it secret).
    signing_key : the owner's Ed25519/ECDSA private key; when given, ``EmbedResult.commitment`` is the
        signed, timestamped :class:`~modelshield.theft.watermark.Commitment` to publish.
    epochs : passes over the clean data; training continues for up to ``max_extra_epochs`` more
        epochs (``0``: exactly ``epochs``) until the model reproduces at least
        ``min_trigger_accuracy`` of the trigger labels. ``EmbedResult.epochs`` is the total run.
    trigger_batch : trigger samples added to every clean batch.
    trigger_jitter : standard deviation of Gaussian noise added to trigger samples in training (0: none).

    Returns
    -------
    EmbedResult
        ``module`` (the same object, trained), ``triggers`` and ``key`` (keep them secret), the
        derivation ``params``, the ``commitment`` (with ``signing_key``), accuracies.

    References
    ----------
    Adi et al., USENIX Security 2018; Zhang et al., AsiaCCS 2018.
    """
    X = np.asarray(X, dtype=np.float32)
    if len(X) == 0:
        raise DataError("embed_watermark needs training data")
    n_out = n_outputs(module, X)
    y = check_labels(y, n_out)
    key = new_watermark_key() if key is None else key
    params = derivation_params(n_triggers, input_shape=X.shape[1:], n_classes=n_out, lower=lower, upper=upper)
    triggers = make_trigger_set(n_triggers, input_shape=X.shape[1:], n_classes=n_out, key=key, lower=lower,
                                upper=upper)
    module = train_classifier(module, X, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                              triggers=triggers, trigger_batch=trigger_batch, trigger_jitter=trigger_jitter)
    history = [accuracy(module, triggers.X, triggers.labels)]
    done = epochs
    step = max(1, epochs // 4)
    while history[-1] < min_trigger_accuracy and done - epochs < max_extra_epochs:
        extra = min(step, epochs + max_extra_epochs - done)
        module = train_classifier(module, X, y, epochs=extra, lr=lr, batch_size=batch_size, seed=seed + done,
                                  triggers=triggers, trigger_batch=trigger_batch, trigger_jitter=trigger_jitter)
        done += extra
        history.append(accuracy(module, triggers.X, triggers.labels))
    commitment = None if signing_key is None else Commitment.create(triggers, key, signing_key, params=params)
    return EmbedResult(module=module, triggers=triggers, key=key, params=params, trigger_accuracy=history[-1],
                       train_accuracy=accuracy(module, X, y), epochs=done, history=history, commitment=commitment)


@dataclass(frozen=True, kw_only=True)
class RobustnessRow:
    """One removal attempt: the resulting model's clean accuracy and its watermark verdict."""

    attack: str
    test_accuracy: float
    trigger_agreement: float
    p_value: float
    owned: bool

    def to_dict(self) -> dict[str, Any]:
        return {"attack": self.attack, "test_accuracy": self.test_accuracy,
                "trigger_agreement": self.trigger_agreement, "p_value": self.p_value, "owned": self.owned}


@dataclass(kw_only=True)
class WatermarkRobustness:
    """Rows for the original model and each attack, plus the false-claim rate on independents."""

    rows: list[RobustnessRow]
    false_claim_rate: float
    independent_agreement: list[float]
    alpha: float

    def row(self, attack: str) -> RobustnessRow:
        return next(r for r in self.rows if r.attack == attack)

    def to_table(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]


def watermark_robustness(
    module: Any,
    triggers: TriggerSet,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    attacks: Sequence[str] = ("fine-tune-10%", "prune-30%", "distill"),
    n_independent: int = 10,
    independent_factory: Callable[[int], Any] | None = None,
    epochs: int = 40,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> WatermarkRobustness:
    """Measure the watermark of ``module`` after removal attacks and its false-claim rate.

    Attacks: ``fine-tune-10%`` (Adam, lr 1e-3, 20 epochs on a random 10% of the clean training data),
    ``prune-30%`` (global magnitude pruning of 30% of the weights), ``distill`` (a freshly initialised
    copy of the architecture trained on the watermarked model's soft outputs on the clean training
    inputs). Independent models are fresh copies of the architecture (or ``independent_factory(i)``)
    trained on the clean data with their own seeds; the false-claim rate is the fraction that
    :func:`verify_watermark` calls owned at ``alpha``.
    """
    X_train = np.asarray(X_train, dtype=np.float32)
    X_test = np.asarray(X_test, dtype=np.float32)
    y_train = check_labels(y_train, None)
    y_test = check_labels(y_test, None)
    rng = np.random.default_rng(seed)

    def row(name: str, m: Any) -> RobustnessRow:
        v = trigger_agreement(m, triggers, alpha=alpha)
        return RobustnessRow(attack=name, test_accuracy=accuracy(m, X_test, y_test),
                             trigger_agreement=v.agreement, p_value=v.p_value, owned=v.owned)

    rows = [row("none", module)]
    for attack in attacks:
        if attack == "fine-tune-10%":
            idx = rng.choice(len(X_train), size=max(1, len(X_train) // 10), replace=False)
            rows.append(row(attack, fine_tune(module, X_train[idx], y_train[idx], seed=seed)))
        elif attack == "prune-30%":
            rows.append(row(attack, prune_magnitude(module, 0.3)))
        elif attack == "distill":
            rows.append(row(attack, distill(module, X_train, epochs=epochs, seed=seed)))
        else:
            raise DataError(f"unknown attack {attack!r}; expected fine-tune-10%, prune-30% or distill")
    independents = []
    for i in range(n_independent):
        fresh = independent_factory(i) if independent_factory else reinitialised(module, seed + 1000 + i)
        independents.append(train_classifier(fresh, X_train, y_train, epochs=epochs, seed=seed + 1000 + i))
    fcr = false_claim_rate(independents, triggers, alpha=alpha) if independents else float("nan")
    agree = [trigger_agreement(m, triggers, alpha=alpha).agreement for m in independents]
    return WatermarkRobustness(rows=rows, false_claim_rate=fcr, independent_agreement=agree, alpha=alpha)


# --- the recipe: load-free, write-free; the CLI (``harden watermark``) loads, calls it and writes the files


@dataclass(frozen=True, kw_only=True)
class WatermarkConfig:
    """How :func:`harden_watermark` embeds and checks the watermark (plain, serialisable data).

    ``epochs`` passes over the data, then up to ``max_extra_epochs`` more until every trigger label is
    learned; ``trigger_batch`` trigger samples join every clean batch, jittered by Gaussian noise of
    std ``trigger_jitter``; the result must pass the binomial test at ``alpha`` (as the verifier will
    run it). ``reinit`` trains from freshly initialised weights; ``robustness`` holds out 25% of the
    data and measures fine-tuning, pruning and distillation (:func:`watermark_robustness`)."""

    n_triggers: int = 100
    trigger_batch: int = 16
    trigger_jitter: float = 0.0
    epochs: int = 20
    max_extra_epochs: int = 40
    alpha: float = 1e-6
    lr: float = 1e-3
    reinit: bool = False
    robustness: bool = False
    n_independent: int = 5
    seed: int = 0

    def validate(self) -> None:
        """Out-of-range values raise a one-line :class:`~modelshield.errors.UserError` (exit 2)."""
        if self.n_triggers < 10 or self.epochs < 1 or not self.lr > 0 or self.max_extra_epochs < 0:
            raise UserError("watermark options out of range: need n_triggers >= 10, epochs >= 1, "
                            "max_extra_epochs >= 0 and lr > 0",
                            cli_hint="need --n-triggers >= 10, --epochs >= 1, --max-extra-epochs >= 0 and --lr > 0")
        if self.trigger_batch < 1 or not 0.0 <= self.trigger_jitter < 10.0:
            raise UserError("watermark options out of range: need trigger_batch >= 1 and 0 <= trigger_jitter < 10",
                            cli_hint="need --trigger-batch >= 1 and 0 <= --trigger-jitter < 10")
        if not 0.0 < self.alpha < 1.0:
            raise UserError("alpha must lie strictly between 0 and 1", cli_hint="fix --alpha")


@dataclass(kw_only=True)
class WatermarkHardening:
    """What :func:`harden_watermark` produced: the serialised watermarked model (same format as the
    input), its secret trigger set and key, the signed commitment to publish, the verification of
    exactly those bytes, and the robustness measurements when asked for. Nothing is written: when
    ``owned`` is false the watermark did not embed and the outputs should not be used."""

    model_bytes: bytes
    model_format: str
    embed: EmbedResult
    commitment: Commitment
    verdict: WatermarkVerdict
    config: WatermarkConfig
    robustness: WatermarkRobustness | None = None

    @property
    def owned(self) -> bool:
        return bool(self.verdict.owned)

    @property
    def triggers(self) -> TriggerSet:
        return self.embed.triggers

    @property
    def key(self) -> bytes:
        return self.embed.key

    @property
    def extra_epochs(self) -> int:
        """Epochs trained beyond ``config.epochs`` until the trigger labels were learned."""
        return self.embed.epochs - self.config.epochs

    def save(self, out: str | Path, triggers: str | Path, commitment: str | Path, key: str | Path | None = None,
             *, force: bool = False) -> list[Path]:
        """Write the watermarked model to ``out``, the secret trigger set to ``triggers`` (private file),
        the watermark key to ``key`` when given (private file; keep it with your signing key) and the
        signed commitment to ``commitment`` (publish it); the paths written, in that order. Existing
        files are replaced only with ``force``. A watermark that did not embed (``owned`` false) is
        refused: its files would prove nothing."""
        if not self.owned:
            raise UserError(f"the watermark did not embed ({self.verdict.matches}/{self.verdict.n} trigger labels "
                            "reproduced); nothing to save")
        written = [write_bytes_safely(out, self.model_bytes, force),
                   write_bytes_safely(triggers, self.triggers.to_bytes(), force, private=True)]
        if key is not None:
            written.append(write_bytes_safely(key, (key_to_text(self.key) + "\n").encode("ascii"), force,
                                              private=True))
        written.append(write_bytes_safely(commitment, self.commitment.to_bytes(), force))
        return written

    def __repr__(self) -> str:  # never show the secret key
        return (f"WatermarkHardening(format={self.model_format!r}, owned={self.owned}, "
                f"epochs={self.embed.epochs}, agreement={self.verdict.agreement:.3f})")


def harden_watermark(
    model: Any,
    data: Dataset,
    *,
    signing_key: PrivateKey | str | Path,
    key: bytes | str | Path | None = None,
    config: WatermarkConfig | None = None,
) -> WatermarkHardening:
    """Embed a trigger-set watermark into a PyTorch classifier (an adapter from
    :func:`modelshield.load_model`) while fine-tuning it (or training it, ``config.reinit``) on ``data``.

    The model is serialised in its own format (TorchScript stays TorchScript), committed to with
    ``signing_key`` (the commitment pins the SHA-256 of those bytes), then the serialised model is
    verified exactly as :func:`~modelshield.theft.watermark.verify_watermark` will verify it later.
    ``signing_key`` is a private key or the path of its PEM file; ``key`` is the secret watermark key, its
    bytes or the path of its key file (a fresh one by default: ``result.key``). Nothing is written:
    :meth:`WatermarkHardening.save` writes the files.
    """
    import torch  # lazy: keeps importing the recipes free of torch (and sklearn below)

    config = config or WatermarkConfig()
    config.validate()
    if isinstance(signing_key, (str, Path)):
        signing_key = load_private_key(signing_key)
    if isinstance(key, (str, Path)):
        key = load_key_file(key)
    if getattr(model, "framework", "") != "pytorch":
        raise UserError(f"watermark embedding needs a PyTorch model, not a {getattr(model, 'framework', '?')} model")
    check_model_width(data, model)
    if data.y is None:
        raise DataError("the training data needs labels", cli_hint="pass --target")
    key = new_watermark_key() if key is None else key
    y = model.label_index(data.y)
    X = np.asarray(data.X, dtype=np.float32)
    seed = config.seed
    module = reinitialised(model.module, seed) if config.reinit else model.module
    if config.robustness:
        from sklearn.model_selection import train_test_split
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    res = embed_watermark(module, X, y, key=key, n_triggers=config.n_triggers, epochs=config.epochs, lr=config.lr,
                          seed=seed, max_extra_epochs=config.max_extra_epochs, lower=data.lower, upper=data.upper,
                          trigger_batch=config.trigger_batch, trigger_jitter=config.trigger_jitter)
    script = model.format == "torchscript" or isinstance(res.module, torch.jit.ScriptModule)
    buf = io.BytesIO()
    (torch.jit.save if script else torch.save)(res.module, buf)
    com = Commitment.create(res.triggers, key, signing_key, params=res.params,
                            model_sha256=hashlib.sha256(buf.getvalue()).hexdigest())
    buf.seek(0)
    saved = torch.jit.load(buf) if script else res.module
    verdict = verify_watermark(load_model(saved, input_shape=tuple(X.shape[1:])), commitment=com,
                               public_key=signing_key.public_key(), key=key, triggers=res.triggers,
                               alpha=config.alpha)
    rob = None
    if config.robustness and verdict.owned:
        rob = watermark_robustness(res.module, res.triggers, X, y, X_test, y_test, n_independent=config.n_independent,
                                   epochs=config.epochs, seed=seed, alpha=config.alpha)
    res.commitment = com
    return WatermarkHardening(model_bytes=buf.getvalue(), model_format="torchscript" if script else "pytorch",
                              embed=res, commitment=com, verdict=verdict, config=config, robustness=rob)


# --- the other ownership evidence: a boundary fingerprint, for models you cannot retrain ---------------------


@dataclass(frozen=True, kw_only=True)
class FingerprintConfig:
    """How :func:`fingerprint_model` calibrates (plain data). ``references``: independent reference models
    to train here on labelled rows (scikit-learn and PyTorch; half on the same rows, half on a random
    half), ``0`` for none (then give independent models); ``points`` fingerprint points;
    ``false_match_rate`` the threshold's target (at 95% confidence)."""

    points: int = 200
    references: int = 8
    false_match_rate: float = 0.01
    seed: int = 0

    def validate(self) -> None:
        if self.points < 10:
            raise UserError("a fingerprint needs at least 10 points", cli_hint="raise --points")
        if self.references and self.references < MIN_REFERENCES:
            raise UserError(f"at least {MIN_REFERENCES} reference models must be trained: the independent "
                            "references set the threshold and its false-match rate",
                            cli_hint=f"--references must be at least {MIN_REFERENCES}")
        if not 0.0 < self.false_match_rate < 1.0:
            raise UserError("the false-match rate must lie strictly between 0 and 1", cli_hint="fix --false-match-rate")


def fingerprint_model(
    model: Any,
    data: Dataset,
    *,
    independent: Sequence[Any] = (),
    config: FingerprintConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> Fingerprint:
    """Create a boundary fingerprint of ``model`` (query-only), calibrated on independent references:
    ``independent`` models you give plus, with ``config.references``, models trained here on ``data``'s
    labels (for scikit-learn and PyTorch models, or when none are given). Derived references are two
    surrogates extracted through the API, plus fine-tuned and pruned copies when ``data`` has labels.
    ``progress`` receives a line before the references are trained."""
    cfg = config or FingerprintConfig()
    cfg.validate()
    check_model_width(data, model)
    indep = list(independent)
    derived = extracted_references(model, data.X, seed=cfg.seed)
    if cfg.references:
        if data.y is None:
            raise DataError("the data needs labels to train the reference models", cli_hint="pass --target")
        if getattr(model, "framework", "") in ("sklearn", "pytorch") or not indep:
            if progress is not None:
                progress(f"training {cfg.references} independent reference models ...")
            indep += retrained_references(model, data.X, data.y, n=cfg.references, seed=cfg.seed)
        derived += modified_references(model, data.X, data.y, seed=cfg.seed)
    if len(indep) < MIN_REFERENCES:
        raise UserError(f"a fingerprint needs at least {MIN_REFERENCES} independent references; got {len(indep)}",
                        cli_hint="add --independent models or --target")
    return create_fingerprint(model, data.X, n_points=cfg.points, independent=indep, derived=derived, seed=cfg.seed,
                              false_match_rate=cfg.false_match_rate)
