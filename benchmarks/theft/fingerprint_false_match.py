"""Fingerprint false-match table (issue 22 C): independent models vs. derived copies on digits.

Owners: a scikit-learn MLP (64 hidden units) and a PyTorch MLP (64-32-10), both on the standardised
digits training split (1,257 rows). Each owner is fingerprinted as ``theft fingerprint create --target``
does: 8 independent references trained automatically (other seeds; half on the same rows, half on a
random half), derived references extracted through the API plus fine-tuned/pruned copies, 200
points, threshold for a 1% false-match rate at 95% confidence.

Suspects, all trained with seeds and rows the references never used:
* independent: 12 same-architecture models on the same rows with other seeds (the issue's case), 4 on
  a random half of the rows, 2 of other widths, 1 of the other framework;
* derived: fine-tuned (10% of rows, two learning rates), pruned 30%/50%, distilled (fresh model on the
  owner's labels for the training inputs), extracted through the API (3,000 Knockoff queries).

Usage: OMP_NUM_THREADS=1 python benchmarks/theft/fingerprint_false_match.py [--out results.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from modelshield.data.dataset import Dataset
from modelshield.harden.watermark import distill, fine_tune, prune_magnitude, train_classifier
from modelshield.models.sklearn import SklearnModel
from modelshield.models.torch import TorchModel
from modelshield.theft.extraction import knockoff_queries, query_victim, train_surrogate
from modelshield.theft.fingerprint import (
    create_fingerprint,
    extracted_references,
    modified_references,
    retrained_references,
)


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr).astype(np.float32), ytr, sc.transform(Xte).astype(np.float32)


def tmlp(seed: int, hidden: int = 32) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


def smlp(seed: int, hidden: int = 64) -> MLPClassifier:
    return MLPClassifier((hidden,), random_state=seed, max_iter=200)


def suspects(framework: str, owner: Any, om: Any, X: np.ndarray, y: np.ndarray, Xte: np.ndarray
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = np.random.default_rng(2024)
    halves = [rng.choice(len(X), len(X) // 2, replace=False) for _ in range(4)]
    idx = rng.choice(len(X), len(X) // 10, replace=False)
    Q = knockoff_queries(Dataset(X=Xte), 3000, np.random.default_rng(9), noise=0.2)
    answers, _ = query_victim(om, Q)
    ind: dict[str, Any] = {}
    der: dict[str, Any] = {"extracted (3,000 queries)": train_surrogate(Q, answers, 10, seed=99)}
    if framework == "sklearn":
        for s in range(500, 512):
            ind[f"same rows, seed {s}"] = smlp(s).fit(X, y)
        for i, h in enumerate(halves):
            ind[f"half of the rows #{i}"] = smlp(600 + i).fit(X[h], y[h])
        for w in (32, 128):
            ind[f"width {w}"] = smlp(700 + w, hidden=w).fit(X, y)
        ind["PyTorch MLP"] = train_classifier(tmlp(800), X, y, epochs=20, seed=800)
        for name, lr in (("fine-tuned lr 1e-3", 1e-3), ("fine-tuned lr 1e-2", 1e-2)):
            est = copy.deepcopy(owner)
            est.set_params(learning_rate_init=lr)
            for _ in range(10):
                est.partial_fit(X[idx], y[idx])
            der[name] = est
        for amount in (0.3, 0.5):
            est = copy.deepcopy(owner)
            flat = np.concatenate([np.abs(w).ravel() for w in est.coefs_])
            cut = np.quantile(flat, amount)
            est.coefs_ = [np.where(np.abs(w) > cut, w, 0.0) for w in est.coefs_]
            der[f"pruned {amount:.0%}"] = est
        der["distilled (owner's labels)"] = smlp(900).fit(X, owner.predict(X))
    else:
        for s in range(500, 512):
            ind[f"same rows, seed {s}"] = train_classifier(tmlp(s), X, y, epochs=20, seed=s)
        for i, h in enumerate(halves):
            ind[f"half of the rows #{i}"] = train_classifier(tmlp(600 + i), X[h], y[h], epochs=20, seed=600 + i)
        for w in (16, 64):
            ind[f"width {w}"] = train_classifier(tmlp(700 + w, hidden=w), X, y, epochs=20, seed=700 + w)
        ind["scikit-learn MLP"] = smlp(800).fit(X, y)
        der["fine-tuned lr 1e-3"] = fine_tune(owner, X[idx], y[idx], epochs=10, lr=1e-3, seed=901)
        der["fine-tuned lr 1e-2"] = fine_tune(owner, X[idx], y[idx], epochs=5, lr=1e-2, seed=902)
        der["pruned 30%"] = prune_magnitude(owner, 0.3)
        der["pruned 50%"] = prune_magnitude(owner, 0.5)
        der["distilled (soft outputs)"] = distill(owner, X, epochs=20, seed=903)
    return ind, der


def score(fp: Any, m: Any) -> float:
    if hasattr(m, "predict_index") and not isinstance(m, torch.nn.Module):
        return float(np.mean(m.predict_index(fp.X) == fp.labels))
    return fp.compare(m).score


def run(framework: str) -> dict[str, Any]:
    X, y, Xte = data()
    t0 = time.perf_counter()
    if framework == "sklearn":
        owner = smlp(0).fit(X, y)
        om: Any = SklearnModel(owner)
    else:
        owner = train_classifier(tmlp(0), X, y, epochs=20, seed=0)
        om = TorchModel(owner)
    refs = retrained_references(om, X, y, n=8, seed=0, epochs=20)
    derived_refs = extracted_references(om, X, seed=0) + modified_references(om, X, y, seed=0)
    fp = create_fingerprint(om, X, independent=refs, derived=derived_refs, n_points=200, seed=0)
    ind, der = suspects(framework, owner, om, X, y, Xte)
    cal = fp.meta["calibration"]
    out = {"framework": framework, "threshold": fp.threshold, "stated_false_match_rate": cal["false_match_rate"],
           "confidence": cal["confidence"], "reference_independent": cal["independent_scores"],
           "reference_derived": cal["derived_scores"],
           "independent": {k: score(fp, m) for k, m in ind.items()},
           "derived": {k: score(fp, m) for k, m in der.items()}, "seconds": time.perf_counter() - t0}
    out["false_matches"] = sum(s >= fp.threshold for s in out["independent"].values())
    out["detected"] = sum(s >= fp.threshold for s in out["derived"].values())
    return out


def table(r: dict[str, Any]) -> str:
    ind, der = r["independent"], r["derived"]
    lines = [f"**{r['framework']} owner**: threshold {r['threshold']:.3f}, stated false-match rate <= "
             f"{r['stated_false_match_rate']:.1e} at {r['confidence']:.0%} confidence; reference scores: "
             f"independent {min(r['reference_independent']):.3f}-{max(r['reference_independent']):.3f}, "
             f"derived {min(r['reference_derived']):.3f}-{max(r['reference_derived']):.3f}. "
             f"**False matches {r['false_matches']}/{len(ind)}; copies detected {r['detected']}/{len(der)}.**", "",
             "| suspect | kind | score | match |", "|---|---|---|---|"]
    for kind, d in (("independent", ind), ("derived", der)):
        for k, s in d.items():
            lines.append(f"| {k} | {kind} | {s:.3f} | {'yes' if s >= r['threshold'] else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--frameworks", default="sklearn,pytorch")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    results = [run(f) for f in args.frameworks.split(",")]
    for r in results:
        print(table(r), "\n", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
