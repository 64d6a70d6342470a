"""``harden backdoor``: find the poisoned training rows and remove their effect, with a before/after table.

A recipe over :mod:`modelshield.poisoning`: the training rows flagged by the label-issue filter, by
activation clustering and spectral signatures (white-box models) and by STRIP, plus the rows of the classes
these called poisoned whose label a model trained on the held-out rows alone disagrees with (those are
kept with that model's label; the rest are dropped), feed a retrain (scikit-learn and PyTorch), or a
PyTorch model is fine-pruned on clean held-out rows (Liu et al. 2018).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.data.dataset import Dataset
from modelshield.errors import DataError, UserError
from modelshield.models.sklearn import SklearnModel
from modelshield.models.torch import TorchModel
from modelshield.poisoning.activations import NoActivations, penultimate_activations
from modelshield.poisoning.data import audit_training_data
from modelshield.poisoning.model import activation_clustering, spectral_signatures, strip_test
from modelshield.poisoning.removal import ReferenceLabels, fine_prune, reference_disagreements, retrain_without

__all__ = ["METHODS", "BackdoorRemoval", "remove_backdoor"]

METHODS = ("retrain", "fine-prune")


@dataclass(kw_only=True)
class BackdoorRemoval:
    """The outcome: the new model (estimator or torch module), the dropped training rows (indices), the
    rows kept with the held-out reference model's label (``relabelled_rows``), which detector flagged how
    many, and the before/after rows (clean accuracy, attack success when triggered rows were given)."""

    method: str
    model: Any
    framework: str
    dropped_rows: list[int]
    flagged_by: dict[str, int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    relabelled_rows: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "dropped_rows": self.dropped_rows, "relabelled_rows": self.relabelled_rows,
                "flagged_by": self.flagged_by,
                "table": self.rows, "notes": self.notes}

    def model_bytes(self) -> bytes:
        """The repaired model serialised in its framework's format: joblib (scikit-learn) or TorchScript."""
        buf = io.BytesIO()
        if self.framework == "sklearn":  # lazy imports: each framework's serialiser only when saving
            import joblib  # lazy: joblib or torch, only for the kind of model being saved

            joblib.dump(self.model, buf)
        else:
            import torch

            scripted = self.model if isinstance(self.model, torch.jit.ScriptModule) else torch.jit.script(self.model)
            torch.jit.save(scripted, buf)
        return buf.getvalue()


#: The ``flagged_by`` name of the rows that a model trained on the held-out rows alone labels differently.
REFERENCE = "held-out reference disagrees"


def _flag(model: Any, train: Dataset, held: Dataset, seed: int, notes: list[str], *, reference: bool = False,
          epochs: int = 40, lr: float = 3e-3) -> tuple[np.ndarray, dict[str, int], ReferenceLabels | None]:
    """The union of the detectors' flagged rows and their counts. With ``reference``, also the rows of the
    classes a model check called poisoned whose label a model trained on the held-out rows alone disagrees
    with (the poisoned rows the detectors missed: a few left behind re-teach the trigger), with that
    model's labels for them (third value; ``None`` when not run)."""
    est = model.clone_unfitted() if getattr(model, "framework", "") == "sklearn" else None
    rep = audit_training_data(train.X.reshape(len(train), -1), train.y, estimator=est, seed=seed)
    parts = {"label issues": rep.flagged_rows}
    suspect: set[Any] = set()
    try:
        A = penultimate_activations(model, train.X)
        HA = penultimate_activations(model, held.X)
        ac = activation_clustering(A, train.y, heldout_labels=held.y, heldout_activations=HA, seed=seed)
        parts["activation clustering"] = ac.flagged_rows
        ss = spectral_signatures(A, train.y, heldout_activations=HA, heldout_labels=held.y)
        parts["spectral signatures"] = ss.flagged_rows
        suspect |= {c.label for c in ac.classes if c.poisoned} | set(ss.poisoned_classes)
    except NoActivations as exc:
        notes.append(f"activation clustering not run: {exc}")
    st = strip_test(model.predict_proba, train.X, held.X, seed=seed)
    parts["STRIP"] = st.flagged_rows if st.poisoned else np.empty(0, dtype=np.int64)
    if st.poisoned:  # the class most of STRIP's rows carry: a trigger's target
        values, counts = np.unique(np.asarray(train.y)[st.flagged_rows], return_counts=True)
        suspect.add(values[int(np.argmax(counts))])
    ref = None
    if reference and suspect:
        ref = reference_disagreements(model, held.X, held.y, train.X, train.y, classes=sorted(suspect), epochs=epochs,
                                      lr=lr, seed=seed)
        parts[REFERENCE] = ref.rows
    flagged = np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in parts.values()]))
    return flagged, {k: len(v) for k, v in parts.items()}, ref


def _accuracy(predict: Any, ds: Dataset) -> float:
    return float(np.mean(np.asarray(predict(ds.X)) == np.asarray(ds.y)))


def remove_backdoor(model: Any, train: Dataset, heldout: Dataset, *, method: str | None = None,
                    triggered: Dataset | None = None, epochs: int = 40, lr: float = 3e-3, seed: int = 0,
                    ) -> BackdoorRemoval:
    """Remove a backdoor from ``model`` trained on ``train``; ``heldout`` is clean labelled data (the STRIP
    calibration, the fine-pruning data and the accuracy column). ``triggered``: rows carrying the
    suspected trigger, labelled with the attacker's target (for the attack-success column).
    ``method``: ``retrain`` (default for scikit-learn) or ``fine-prune`` (PyTorch only)."""
    fw = getattr(model, "framework", "")
    method = method or "retrain"
    if method not in METHODS:
        raise UserError(f"unknown backdoor-removal method {method!r}; choose {' or '.join(METHODS)}",
                        cli_hint="fix --method")
    if fw not in ("sklearn", "pytorch"):
        raise UserError(f"harden backdoor retrains scikit-learn and PyTorch models; this is a {fw or 'unknown'} model")
    if method == "fine-prune" and fw != "pytorch":
        raise UserError("fine-pruning needs a PyTorch model; retrain a scikit-learn model instead",
                        cli_hint="use --method retrain")
    for name, flag, ds in (("training data", "--train", train), ("held-out data", "--data", heldout)):
        if ds.y is None:
            raise DataError(f"the {name} has no labels", cli_hint=f"give the label column of {flag} with --target")
    notes: list[str] = []
    t0 = time.perf_counter()
    flagged, by, ref = _flag(model, train, heldout, seed, notes, reference=method == "retrain", epochs=epochs, lr=lr)
    relabelled = np.empty(0, dtype=np.int64)
    if method == "retrain":
        labels = np.array(train.y, copy=True)
        if ref is not None and len(ref.rows):
            # the reference's label, not the attacker's: training on the triggered rows so labelled unlearns
            # the trigger; the other flagged rows are dropped
            relabelled = ref.rows
            labels[relabelled] = ref.labels
            flagged = np.setdiff1d(flagged, relabelled)
            notes.append(f"kept {len(relabelled)} flagged training rows with the label of a model trained on the "
                         "held-out rows alone (relabelled_rows)")
        new = retrain_without(model, train.X, labels, flagged, epochs=epochs, lr=lr, seed=seed)
    else:
        res = fine_prune(model, heldout.X, heldout.y, seed=seed)
        new = res.module
        notes.append(f"fine-pruning pruned {len(res.pruned_units)} penultimate units; the same held-out rows "
                     "were used to fine-tune and to measure accuracy, so the 'after' accuracy is optimistic")
    wrapped = SklearnModel(new) if fw == "sklearn" else TorchModel(new, input_shape=model.input_spec.shape,
                                                                    classes=model.classes)
    rows = []
    for label, m in (("before", model), ("after", wrapped)):
        row: dict[str, Any] = {"model": label, "clean_accuracy": round(_accuracy(m.predict, heldout), 4)}
        if triggered is not None:
            row["attack_success_rate"] = round(_accuracy(m.predict, triggered), 4)
        rows.append(row)
    notes.append(f"took {time.perf_counter() - t0:.1f}s")
    dropped = [int(i) for i in flagged] if method == "retrain" else []
    return BackdoorRemoval(method=method, model=new, framework=fw, dropped_rows=dropped, flagged_by=by, rows=rows,
                           notes=notes, relabelled_rows=[int(i) for i in relabelled])
