"""The ``modelshield attack`` workflow as library functions: read the labelled rows to attack, check that
the model runs on them, build the threat model, run one attack on a sample and keep what the command
reports (:class:`AttackRun`), e.g.::

    ds = load_attack_data("test.csv", target="label")
    check_model_runs(model, ds)
    run = run_attack(model, ds, attack="auto", eps=0.1)
    run.summary()["robust_accuracy"]
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.attacks import ATTACKS, make_attack
from modelshield.attacks.base import AttackResult
from modelshield.attacks.evaluate import default_attack
from modelshield.attacks.threat import ThreatModel, parse_box
from modelshield.data.dataset import Dataset
from modelshield.data.loaders import check_model_width, load_dataset
from modelshield.errors import ModelShieldError, UserError
from modelshield.models.base import BaseModel

__all__ = ["ATTACK_NAMES", "AUTO", "AttackRun", "check_attack_options", "check_model_runs", "load_attack_data",
           "run_attack"]

#: The attacks ``modelshield attack`` offers (``apgd`` is the APGD-CE + APGD-DLR + APGD-T ensemble).
ATTACK_NAMES: tuple[str, ...] = ("fgsm", "pgd", "apgd", "apgd-ce", "apgd-dlr", "apgd-t", "square", "hsj")
#: The attack name that picks one for the model (:func:`~modelshield.attacks.evaluate.default_attack`).
AUTO = "auto"
assert set(ATTACK_NAMES) == set(ATTACKS)


def check_attack_options(attack: str = AUTO, bounds: str | Sequence[float] | None = None,
                         max_samples: int = 1) -> None:
    """The options :func:`run_attack` takes that can be checked before any loading: ``attack`` is ``auto``
    or one of :data:`ATTACK_NAMES`, ``bounds`` one valid box ``"LO,HI"`` (or ``None``), at least one
    sample; else a one-line :class:`UserError`."""
    if attack != AUTO and attack not in ATTACK_NAMES:
        raise UserError(f"unknown attack {attack!r}; expected auto or one of: {', '.join(ATTACK_NAMES)}",
                        cli_hint="fix --attack")
    if max_samples < 1:
        raise UserError("at least one sample must be attacked", cli_hint="--max-samples must be >= 1")
    if bounds is not None:
        try:
            parse_box(bounds)
        except UserError as exc:
            raise UserError(str(exc), cli_hint="fix --bounds") from None


def load_attack_data(path: str | Path, *, target: str | None = None, features: Sequence[str] | None = None,
                     immutable: Sequence[str] | None = None, labelled: bool = True) -> Dataset:
    """The rows at ``path`` (CSV, Parquet or NPZ) with their ``features`` (default: all but the target) and
    the ``immutable`` ones an attacker cannot change; ``labelled``: labels are required."""
    ds = load_dataset(path, target=target, features=list(features) if features else None,
                      immutable=list(immutable or ()))
    if labelled and ds.y is None:
        raise UserError(f"{path}: no labels", cli_hint="name the label column with --target")
    return ds


def check_model_runs(model: BaseModel, data: Dataset, source: str | Path = "the data") -> None:
    """The data's width fits the model (and its labels the classes), and the model runs on one row: a
    model that cannot is a one-line :class:`UserError` naming the cause, not a crash mid-attack."""
    check_model_width(data, model)
    try:
        model.predict_proba(np.asarray(data.X[:1]))
    except ModelShieldError:
        raise
    except Exception as exc:  # TorchScript and ONNX errors span many lines: name the cause, not the trace
        shape = model.input_spec.shape or tuple(np.asarray(data.X).shape[1:])
        raise UserError(f"the model cannot run on {source}'s rows as shape {tuple(shape)} ({type(exc).__name__})",
                        cli_hint="check --input-shape and --features") from None


@dataclass(frozen=True)
class AttackRun:
    """One attack on a sample of the data: the attack's name (``auto``: chosen for the model), the threat
    model, the sample attacked and the result."""

    attack: str
    auto: bool
    threat: ThreatModel
    sample: Dataset
    result: AttackResult
    seed: int = 0

    def summary(self, **context: Any) -> dict[str, Any]:
        """The result's numbers, the attack, ``context`` (e.g. where the model and data came from), the
        seed, the threat model described and its warnings."""
        return self.result.summary() | {
            "attack": self.attack, **({"attack_chosen_by": "auto"} if self.auto else {}), **context,
            "seed": self.seed, "threat_model": self.threat.describe(),
            "warnings": [m for _, m in self.threat.warnings]}

    def adversarial_npz(self) -> bytes:
        """The adversarial inputs as NPZ: ``X`` (adversarial rows), ``y`` (labels), ``success``."""
        buf = io.BytesIO()
        np.savez_compressed(buf, X=self.result.x_adv, y=np.asarray(self.sample.y), success=self.result.success)
        return buf.getvalue()


def run_attack(
    model: BaseModel,
    data: Dataset,
    *,
    attack: str = AUTO,
    eps: float = 0.1,
    norm: str = "inf",
    steps: int = 20,
    step_size: float | None = None,
    queries: int = 1000,
    units: str = "auto",
    bounds: str | Sequence[float] | None = None,
    bounds_file: str | Path | None = None,
    train: Dataset | None = None,
    max_samples: int = 1000,
    seed: int = 0,
) -> AttackRun:
    """Attack ``model`` on at most ``max_samples`` labelled rows of ``data`` (a seeded sample).

    The threat model is :meth:`ThreatModel.for_dataset` of ``data`` (``bounds`` over ``bounds_file`` over
    bounds inferred from ``data`` and ``train``) with ``eps`` in ``units``; an ``eps`` that covers the
    whole box is refused (:class:`~modelshield.errors.OptionError`). ``attack="auto"`` picks PGD for
    differentiable models, else Square (scores) or HopSkipJump. ``queries`` is the per-sample budget of
    the black-box attacks, ``steps``/``step_size`` drive the white-box ones.
    """
    import torch  # lazy: the attacks need it; importing this module should not

    check_attack_options(attack, bounds, max_samples)
    if data.y is None:
        raise UserError("the data to attack needs labels", cli_hint="name the label column with --target")
    sample = data.sample(max_samples, seed=seed)
    threat = ThreatModel.for_dataset(data, units=units, bounds=bounds, bounds_file=bounds_file, train=train,
                                     norm=norm, eps=eps, steps=steps, step_size=step_size, query_budget=queries)
    threat.check_eps(data.n_features, cli_hint="fix --eps")
    chosen = default_attack(model, threat.norm) if attack == AUTO else attack
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    result = make_attack(chosen, threat, seed=seed).generate(model, sample.X, sample.y)
    return AttackRun(attack=chosen, auto=attack == AUTO, threat=threat, sample=sample, result=result, seed=seed)
