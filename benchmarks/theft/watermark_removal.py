"""Watermark removal table (issue 22 B.2): what a thief's realistic removal attempts cost.

For each data set (breast cancer: MLP 30-64-2; digits: MLP 64-64-10, both standardised, 70/30 split)
and each embedding variant, the watermarked model is attacked with

* fine-tuning on clean data: lr x batch x epochs x data fraction (Adam, all layers);
* global magnitude pruning 30-90% (no retraining);
* distillation of a fresh model on the watermarked model's soft outputs (T = 2) on the clean
  training inputs;

and each resulting model gets its test accuracy and its watermark verdict (binomial test at
alpha = 1e-6, the verification default). "Removed" means the watermark no longer verifies. The
*removal cost* is the smallest accuracy drop (watermarked model minus attacked model, in points)
among attacks that remove the watermark: what the cheapest successful removal costs the thief.

Usage: python benchmarks/theft/watermark_removal.py [--quick] [--out results.json]
(single thread; about 4 minutes on one core for the full grid).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from modelshield.harden.watermark import (
    accuracy,
    distill,
    embed_watermark,
    fine_tune,
    prune_magnitude,
    train_classifier,
)
from modelshield.theft.watermark import trigger_agreement

ALPHA = 1e-6

VARIANTS: dict[str, dict[str, Any]] = {
    # the defaults of embed_watermark / harden watermark
    "default": {"n_triggers": 100, "trigger_batch": 16, "trigger_jitter": 0.0, "epochs": 30},
    # more triggers, a larger trigger share of every step, and jittered triggers (a neighbourhood)
    "strong": {"n_triggers": 200, "trigger_batch": 64, "trigger_jitter": 0.5, "epochs": 60},
}


def data(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = (load_breast_cancer if name == "cancer" else load_digits)(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32), ytr, yte


def mlp(d: int, c: int, seed: int) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, c))


def attacks(quick: bool) -> list[tuple[str, dict[str, Any]]]:
    grid = (([1e-3, 1e-2], [16, 64], [5, 20], [0.1, 0.5]) if not quick else ([1e-2], [16], [5], [0.1]))
    out: list[tuple[str, dict[str, Any]]] = []
    for lr, batch, epochs, frac in itertools.product(*grid):
        out.append((f"fine-tune lr={lr:g} batch={batch} epochs={epochs} data={frac:.0%}",
                    {"kind": "fine-tune", "lr": lr, "batch": batch, "epochs": epochs, "frac": frac}))
    for amount in ([0.3, 0.5, 0.7, 0.9] if not quick else [0.5, 0.9]):
        out.append((f"prune {amount:.0%}", {"kind": "prune", "amount": amount}))
    out.append(("distill (T=2, all training inputs, 40 epochs)", {"kind": "distill"}))
    return out


def run(dataset: str, variant: str, quick: bool, seed: int = 0) -> dict[str, Any]:
    Xtr, Xte, ytr, yte = data(dataset)
    c = int(ytr.max()) + 1
    v = VARIANTS[variant]
    key = hashlib.sha256(f"benchmark {dataset} {seed}".encode()).digest()
    t0 = time.perf_counter()
    res = embed_watermark(mlp(Xtr.shape[1], c, seed), Xtr, ytr, key=key, n_triggers=v["n_triggers"],
                          epochs=v["epochs"], trigger_batch=v["trigger_batch"], trigger_jitter=v["trigger_jitter"],
                          seed=seed)
    reference = accuracy(train_classifier(mlp(Xtr.shape[1], c, seed), Xtr, ytr, epochs=v["epochs"], seed=seed),
                         Xte, yte)
    base_acc = accuracy(res.module, Xte, yte)
    rows = []
    rng = np.random.default_rng(seed)
    for name, a in attacks(quick):
        if a["kind"] == "fine-tune":
            idx = rng.choice(len(Xtr), size=max(1, int(a["frac"] * len(Xtr))), replace=False)
            m = fine_tune(res.module, Xtr[idx], ytr[idx], epochs=a["epochs"], lr=a["lr"], batch_size=a["batch"],
                          seed=seed + 1)
        elif a["kind"] == "prune":
            m = prune_magnitude(res.module, a["amount"])
        else:
            m = distill(res.module, Xtr, epochs=40, seed=seed + 1)
        ver = trigger_agreement(m, res.triggers, alpha=ALPHA)
        acc = accuracy(m, Xte, yte)
        rows.append({"attack": name, "accuracy": acc, "drop_points": 100 * (base_acc - acc),
                     "trigger_agreement": ver.agreement, "p_value": ver.p_value, "verified": ver.owned})
    removing = [r for r in rows if not r["verified"]]
    cheapest = min(removing, key=lambda r: r["drop_points"], default=None)
    return {"dataset": dataset, "variant": variant, "embedding": v, "clean_reference_accuracy": reference,
            "watermarked_accuracy": base_acc, "trigger_accuracy": res.trigger_accuracy, "rows": rows,
            "removal_cost_points": None if cheapest is None else cheapest["drop_points"],
            "cheapest_removal": None if cheapest is None else cheapest["attack"],
            "seconds": time.perf_counter() - t0}


def table(r: dict[str, Any]) -> str:
    lines = [f"**{r['dataset']}, {r['variant']} embedding** {r['embedding']}: watermarked accuracy "
             f"{r['watermarked_accuracy']:.1%} (clean model trained the same way: {r['clean_reference_accuracy']:.1%}); "
             f"cheapest removal: {r['cheapest_removal'] or 'none'}"
             + ("" if r["removal_cost_points"] is None else f" ({r['removal_cost_points']:+.1f} points)"), "",
             "| attack | accuracy | drop (points) | trigger agreement | p-value | verified |", "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['attack']} | {row['accuracy']:.1%} | {row['drop_points']:+.1f} | "
                     f"{row['trigger_agreement']:.0%} | {row['p_value']:.1e} | {'yes' if row['verified'] else '**no**'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--datasets", default="cancer,digits")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = [run(d, v, args.quick) for d in args.datasets.split(",") for v in args.variants.split(",")]
    for r in results:
        print(table(r), "\n", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
