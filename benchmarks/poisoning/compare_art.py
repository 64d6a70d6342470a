"""Ours vs ART (``art.defences.detector.poison``): activation clustering and spectral signatures on the same
poisoned models and data, in one run: detection (flagged-row recall/precision, clean-control rows flagged)
and paired, interleaved timing.

Scenarios (generated, seeded): BadNets-style 2x2 pixel trigger on sklearn digits and a two-feature
rare-value trigger on breast_cancer, 10% of the training rows poisoned, each with a clean control trained
the same way (MLP 64-32, Adam, 40 epochs).

Run: ``.venv/bin/python benchmarks/poisoning/compare_art.py [--rounds 5] [--out benchmarks/poisoning/results.json]``
(needs the ``poisoning-bench`` extra: adversarial-robustness-toolbox).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paired import machine, paired

from modelshield.models.torch import TorchModel
from modelshield.poisoning import _torch as T
from modelshield.poisoning.activations import penultimate_activations
from modelshield.poisoning.model import activation_clustering, spectral_signatures
from modelshield.poisoning.planted import Trigger, plant_trigger


def scenario(name: str, poisoned: bool, seed: int = 0):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        trig = Trigger.pixel_patch((8, 8), size=2, target=0)
    else:
        X, y = load_breast_cancer(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        trig = Trigger(features=(3, 17), values=(4.0, -3.0), target=1)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    rows = np.empty(0, dtype=np.int64)
    if poisoned:
        pl = plant_trigger(Xtr, ytr, trig, fraction=0.1, seed=seed)
        Xtr, ytr, rows = pl.X, pl.y, pl.rows
    K = len(np.unique(y))
    module = T.train(T.make_mlp(Xtr.shape[1], K, seed=seed), Xtr, ytr, epochs=40, lr=3e-3, seed=seed)
    return module, Xtr, ytr, Xte, yte, rows, K


def art_classifier(module, n_features: int, K: int):
    import torch
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=module, loss=torch.nn.CrossEntropyLoss(), input_shape=(n_features,),
                             nb_classes=K, clip_values=None)


def score(flagged, truth):
    f, t = set(np.asarray(flagged).tolist()), set(np.asarray(truth).tolist())
    tp = len(f & t)
    return {"flagged": len(f), "recall": round(tp / len(t), 3) if t else None,
            "precision": round(tp / len(f), 3) if f and t else None}


def run_scenario(name: str, poisoned: bool, rounds: int) -> dict:
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense

    module, Xtr, ytr, Xte, yte, rows, K = scenario(name, poisoned)
    model = TorchModel(module)
    onehot = np.eye(K)[ytr]
    clf = art_classifier(module, Xtr.shape[1], K)
    Xf = Xtr.astype(np.float32)

    def ours_ac():
        A = penultimate_activations(model, Xtr)
        HA = penultimate_activations(model, Xte)
        return activation_clustering(A, ytr, heldout_labels=yte, heldout_activations=HA).flagged_rows

    def ours_ss():
        HA = penultimate_activations(model, Xte)
        return spectral_signatures(penultimate_activations(model, Xtr), ytr, fraction=0.1, heldout_activations=HA,
                                   heldout_labels=yte).flagged_rows

    def ours_ss_uncalibrated():
        return spectral_signatures(penultimate_activations(model, Xtr), ytr, fraction=0.1).flagged_rows

    def art_ac():
        d = ActivationDefence(clf, Xf, onehot)
        _, clean = d.detect_poison(nb_clusters=2, nb_dims=10, reduce="FastICA", cluster_analysis="smaller")
        return np.flatnonzero(np.asarray(clean) == 0)

    def art_ss():
        d = SpectralSignatureDefense(clf, Xf, onehot, expected_pp_poison=0.1, batch_size=128, eps_multiplier=1.5)
        _, clean = d.detect_poison()
        return np.flatnonzero(np.asarray(clean) == 0)

    cases = {"art_ac": art_ac, "ours_ac": ours_ac, "art_ss": art_ss, "ours_ss": ours_ss,
             "ours_ss_uncalibrated": ours_ss_uncalibrated}
    detection = {k: score(f(), rows) for k, f in cases.items()}
    t_ac = paired({"art_ac": art_ac, "ours_ac": ours_ac}, baseline="art_ac", rounds=rounds)
    t_ss = paired({"art_ss": art_ss, "ours_ss": ours_ss}, baseline="art_ss", rounds=rounds)
    print(f"## {name}/{'poisoned' if poisoned else 'clean'}")
    print(json.dumps(detection))
    print(t_ac.table(inverse=True))
    print(t_ss.table(inverse=True))
    return {"detection": detection, "timing_ac": t_ac.to_dict(), "timing_ss": t_ss.to_dict(),
            "ac_art_over_ours": t_ac.summary("ours_ac"), "ss_art_over_ours": t_ss.summary("ours_ss")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    out = {"machine": machine(), "scenarios": {}}
    for name in ("digits", "breast_cancer"):
        for poisoned in (True, False):
            out["scenarios"][f"{name}/{'poisoned' if poisoned else 'clean'}"] = run_scenario(name, poisoned, args.rounds)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
