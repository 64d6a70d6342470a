"""LiRA / RMIA end to end with N shadow models on the demo models.

* ``adult-hgb``: scikit-learn HistGradientBoosting (150 iterations) on UCI Adult, 5,000 members and
  4,000 non-members (as in ``modelshield audit --demo``); shadows are ``sklearn.base.clone`` copies.
* ``cancer-mlp``: PyTorch MLP 30-64-2 trained to memorise breast cancer (341 / 228 rows); shadows are
  re-initialised copies trained with the default recipe.
* ``cancer-mlp-dp``: the same MLP trained with DP-SGD at epsilon = 1, delta = 1e-5 (as in the demo).

Times are wall-clock for the whole ``membership_inference`` call (target scoring, shadow training
in parallel threads, all four attacks).

    .venv/bin/python benchmarks/privacy/bench_lira.py --shadows 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from modelshield.models.wrap import wrap_object
from modelshield.privacy.membership import membership_inference


def targets(seed: int = 0):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelshield.data import demo
    from modelshield.data.real import load_adult

    adult = load_adult().sample(9000, seed=seed)
    tr, te = adult.split(test_size=4000 / 9000, seed=seed)
    hgb = HistGradientBoostingClassifier(max_iter=150, random_state=seed).fit(tr.X, tr.y)
    yield "adult-hgb", wrap_object(hgb), tr, te
    c_tr, c_te = demo._cancer(seed)
    net = demo._train_overfit(c_tr.X, c_tr.y, seed)
    yield "cancer-mlp", wrap_object(net), c_tr, c_te
    from modelshield.harden.dp import train_dp_classifier

    dp_net, _ = train_dp_classifier(demo._mlp(c_tr.X.shape[1]), c_tr.X, c_tr.y, epsilon=1.0, delta=1e-5,
                                    epochs=30, batch_size=64, seed=seed)
    yield "cancer-mlp-dp", wrap_object(dp_net), c_tr, c_te


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shadows", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, model, tr, te in targets():
        t0 = time.perf_counter()
        rep = membership_inference(model, tr, te, n_shadows=args.shadows, n_jobs=args.jobs, seed=0)
        wall = time.perf_counter() - t0
        for attack, res in rep.attacks.items():
            rows.append({"target": name, "attack": attack, "auc": res.auc, "tpr_at_0_1pct_fpr": res.tpr_at_0_1pct_fpr,
                         "tpr_at_1pct_fpr": res.tpr_at_1pct_fpr, "shadows": rep.n_shadows,
                         "members": rep.n_members, "non_members": rep.n_nonmembers, "wall_s": wall,
                         "shadow_s": rep.shadow_time_s})
            print(f"{name:11s} {attack:13s} AUC {res.auc:.3f}  TPR@0.1% {res.tpr_at_0_1pct_fpr:.3f}  "
                  f"TPR@1% {res.tpr_at_1pct_fpr:.3f}  ({rep.n_shadows} shadows, {wall:.1f} s total, "
                  f"{rep.shadow_time_s:.1f} s shadows)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
