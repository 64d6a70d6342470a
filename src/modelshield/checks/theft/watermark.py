"""Black-box ownership verification of trigger-set watermarks, with a binomial test.

A trigger set is a secret list of inputs with labels the owner assigned at random and taught to the
model (see :mod:`modelshield.harden.watermark`). A model trained without knowing those labels agrees
with each of them with probability ``1 / n_classes``, *whatever* it predicts on the trigger inputs,
because the labels are a uniformly random (balanced) assignment independent of the model. Its number
of agreements is ``Binomial(n, 1 / n_classes)`` for i.i.d. labels, and less dispersed than that for a
balanced permutation (sampling without replacement), so the binomial p-value of the observed
agreement is a valid (conservative) test of "this model was built without the owner's secret".
``verify_watermark(..., chance=...)`` accepts a measured chance level instead (e.g. the mean agreement
of independently trained models, :func:`measured_chance`) for trigger sets whose labels were not drawn
uniformly.

The trigger set is a secret: whoever holds it can claim the model, or fine-tune the triggers away.
Keep it with your signing keys.

References
----------
.. [1] Y. Adi, C. Baum, M. Cisse, B. Pinkas, J. Keshet. "Turning Your Weakness Into a Strength:
   Watermarking Deep Neural Networks by Backdooring". USENIX Security 2018.
.. [2] J. Zhang et al. "Protecting Intellectual Property of Deep Neural Networks with Watermarking".
   AsiaCCS 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.checks.theft._records import read_record, record_bytes
from modelshield.errors import DataError, InputNotFoundError, OutputError
from modelshield.models.base import BaseModel

__all__ = [
    "TRIGGER_FORMAT",
    "TriggerSet",
    "WatermarkVerdict",
    "binomial_p_value",
    "false_claim_rate",
    "measured_chance",
    "verify_watermark",
]

#: Format tag stored in every trigger-set NPZ file.
TRIGGER_FORMAT = "modelshield.trigger-set/1"


@dataclass(frozen=True, kw_only=True)
class TriggerSet:
    """A watermark's secret: trigger inputs ``X`` and their assigned class *indices* ``labels``.

    ``labels`` index the model's class order (``model.classes``). ``chance`` is the agreement an
    independent model has with the labels (``1 / n_classes`` for uniformly drawn labels).
    """

    X: np.ndarray
    labels: np.ndarray
    n_classes: int
    kind: str = "noise"
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float32)
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or len(labels) != len(X) or len(X) == 0:
            raise DataError(f"a trigger set needs one label per input; got {len(labels)} labels for {len(X)}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError("trigger labels must be class indices (integers)")
        if self.n_classes < 2 or labels.min() < 0 or labels.max() >= self.n_classes:
            raise DataError(f"trigger labels must lie in 0..{self.n_classes - 1}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "labels", labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def chance(self) -> float:
        return 1.0 / self.n_classes

    def to_bytes(self) -> bytes:
        """The NPZ encoding (no pickles: plain arrays and a JSON header)."""
        header = {"format": TRIGGER_FORMAT, "n_classes": int(self.n_classes), "kind": self.kind,
                  "seed": self.seed, "meta": self.meta}
        return record_bytes(self.X, self.labels, header)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the NPZ file, readable by its owner only (mode 0600: it is a secret); refuses to
        replace an existing file unless ``overwrite``."""
        import os

        p = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(p, flags, 0o600)
        except FileExistsError:
            raise OutputError(f"{p} already exists; pass --force to overwrite it") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.to_bytes())
        return p

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "trigger set") -> TriggerSet:
        header, X, labels = read_record(data, source=source, what="trigger set", fmt=TRIGGER_FORMAT)
        return cls(X=X, labels=labels, n_classes=int(header["n_classes"]), kind=str(header.get("kind", "")),
                   seed=header.get("seed"), meta=dict(header.get("meta") or {}))

    @classmethod
    def load(cls, path: str | Path) -> TriggerSet:
        p = Path(path)
        if not p.is_file():
            raise InputNotFoundError(f"trigger set not found: {p}")
        return cls.from_bytes(p.read_bytes(), source=str(p))


@dataclass(frozen=True, kw_only=True)
class WatermarkVerdict:
    """Outcome of :func:`verify_watermark`."""

    p_value: float
    agreement: float
    matches: int
    n: int
    chance: float
    alpha: float

    @property
    def owned(self) -> bool:
        """True when the agreement is significant at level ``alpha`` (one-sided)."""
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {"owned": self.owned, "p_value": self.p_value, "agreement": self.agreement,
                "matches": self.matches, "n": self.n, "chance": self.chance, "alpha": self.alpha}


def binomial_p_value(matches: int, n: int, chance: float) -> float:
    """One-sided p-value ``P[Binomial(n, chance) >= matches]``."""
    from scipy.stats import binom

    if not 0.0 < chance < 1.0:
        raise DataError(f"chance agreement must lie strictly between 0 and 1, got {chance}")
    return float(binom.sf(int(matches) - 1, int(n), float(chance)))


def _as_model(model: Any, input_shape: tuple[int, ...] | None = None) -> BaseModel:
    from modelshield.checks.theft._torchutil import as_model

    return as_model(model, input_shape)


def _agreement(model: Any, triggers: TriggerSet) -> np.ndarray:
    m = _as_model(model, triggers.X.shape[1:])
    pred = m.predict_index(triggers.X)
    if m.n_classes != triggers.n_classes:
        raise DataError(f"the model has {m.n_classes} classes but the trigger set was made for "
                        f"{triggers.n_classes}")
    return pred == triggers.labels


def verify_watermark(
    model: Any,
    triggers: TriggerSet | np.ndarray,
    labels: np.ndarray | None = None,
    *,
    alpha: float = 1e-3,
    chance: float | None = None,
) -> WatermarkVerdict:
    """Test whether a suspect ``model`` carries the watermark ``triggers`` (black box).

    Parameters
    ----------
    model : the suspect, any adapter or object :func:`modelshield.load_model` wraps; only
        ``predict_proba`` is called, on the trigger inputs.
    triggers : a :class:`TriggerSet`, or trigger inputs with ``labels`` (class indices).
    alpha : significance level; ``owned`` is ``p_value < alpha``.
    chance : agreement of an independent model; ``1 / n_classes`` by default (exact for labels
        drawn uniformly at random), or a measured value from :func:`measured_chance`.

    Returns
    -------
    WatermarkVerdict
        ``p_value`` of the agreement under the null of an independently trained model.

    Examples
    --------
    >>> verdict = verify_watermark(suspect, TriggerSet.load("triggers.npz"))  # doctest: +SKIP
    >>> verdict.owned, verdict.p_value  # doctest: +SKIP
    (True, 7.9e-31)
    """
    if not isinstance(triggers, TriggerSet):
        if labels is None:
            raise DataError("pass the trigger labels with the trigger inputs")
        X = np.asarray(triggers)
        m = _as_model(model, X.shape[1:])
        triggers = TriggerSet(X=X, labels=np.asarray(labels), n_classes=m.n_classes)
    elif labels is not None:
        triggers = TriggerSet(X=triggers.X, labels=np.asarray(labels), n_classes=triggers.n_classes)
    agree = _agreement(model, triggers)
    k, n = int(agree.sum()), len(agree)
    p0 = triggers.chance if chance is None else float(chance)
    return WatermarkVerdict(p_value=binomial_p_value(k, n, p0), agreement=k / n, matches=k, n=n, chance=p0,
                            alpha=float(alpha))


def measured_chance(models: Sequence[Any], triggers: TriggerSet) -> float:
    """Mean trigger agreement of independently trained ``models`` (a measured null), at least
    ``1 / n_classes`` so that a lucky calibration never makes the test anti-conservative."""
    rates = [float(_agreement(m, triggers).mean()) for m in models]
    return max(float(np.mean(rates)) if rates else 0.0, triggers.chance)


def false_claim_rate(
    models: Sequence[Any], triggers: TriggerSet, *, alpha: float = 1e-3, chance: float | None = None
) -> float:
    """Fraction of independently trained ``models`` that :func:`verify_watermark` would call owned."""
    if not models:
        raise DataError("false_claim_rate needs at least one independent model")
    verdicts = [verify_watermark(m, triggers, alpha=alpha, chance=chance) for m in models]
    return float(np.mean([v.owned for v in verdicts]))
