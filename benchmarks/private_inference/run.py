"""Private inference benchmark (issue 17): ours (batched HE, per-sample HE, MPC) vs hand-written TenSEAL.

Baselines are what a user writes from TenSEAL's tutorial: per-sample ``CKKSVector`` + ``mm`` with Galois
keys at N=8192, coeff [60,30,30,30,60] (bias folded into the matrix, as the TenSEAL trap requires), and
TenSEAL batched as-is: ``CKKSTensor(batch=True)`` with ``reshape([1, n])`` before ``.mm``. One run, same
models: breast-cancer LR (pipeline with scaler), a 30-16-2 MLP with x^2, a digits 64-32-10 MLP with x^2.
Usage: python benchmarks/private_inference/run.py [--per-sample-rows 5] [--out results.json]
Also here: mpc_vs_plain.py (ours MPC vs the plain mpyc script, paired) and memory.py (peak RSS per HE pipeline).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import tenseal as ts
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelshield.private_inference import evaluate_he, extract, plan
from modelshield.private_inference.mpc import evaluate_mpc
from modelshield.protect.loader import load_model


class Sq(torch.nn.Module):
    def forward(self, x):
        return x * x


def mlp(Xtr, ytr, sizes):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(sizes[0], sizes[1]), Sq(), torch.nn.Linear(sizes[1], sizes[2]))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X, y = torch.as_tensor(Xtr, dtype=torch.float32), torch.as_tensor(ytr)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    return net.eval()


def tenseal_ctx():
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 30, 30, 30, 60])
    ctx.global_scale = 2**30
    ctx.generate_galois_keys()
    return ctx


def dense_list(net):
    return [(layer.W, layer.b) if hasattr(layer, "W") else layer.kind for layer in net.layers]


def baseline_per_sample(net, X):
    ctx = tenseal_ctx()
    layers = dense_list(net)
    t0 = time.perf_counter()
    out = []
    for x in X:
        v = ts.ckks_vector(ctx, np.append(x, 1.0).tolist())
        for k, layer in enumerate(layers):
            if isinstance(layer, str):
                v = v.square()
                continue
            W, b = layer
            last = k == len(layers) - 1
            Wa = np.zeros((W.shape[0] + 1, W.shape[1] + (0 if last else 1)))
            Wa[:-1, : W.shape[1]] = W
            Wa[-1, : W.shape[1]] = b
            if not last:
                Wa[-1, -1] = 1.0
            v = v.mm(Wa.tolist())
        out.append(v.decrypt())
    return np.asarray(out), (time.perf_counter() - t0) / len(X) * 1e3


def baseline_batched(net, X):
    ctx = tenseal_ctx()
    layers = dense_list(net)
    t0 = time.perf_counter()
    t = ts.ckks_tensor(ctx, ts.plain_tensor(X.tolist()), batch=True).reshape([1, X.shape[1]])
    for layer in layers:
        if isinstance(layer, str):
            t = t.square()
        else:
            W, b = layer
            t = t.mm(W.tolist()) + b.tolist()
    out = np.asarray(t.decrypt().tolist()).reshape(len(X), -1)
    return out, (time.perf_counter() - t0) / len(X) * 1e3


def stats(ms):
    return {"ms_per_sample_min": round(min(ms), 3), "ms_per_sample_median": round(float(np.median(ms)), 3), "runs": len(ms)}


def _per_feature(net, fit, X):
    from modelshield.private_inference import fit_activations
    from modelshield.private_inference.he import batched_depth, run_batched, value_bound
    from modelshield.private_inference.params import choose_params

    polys = fit_activations(net, fit)
    p = choose_params(batched_depth(net, polys), value_bound(net, polys, fit))
    r = run_batched(net, polys, X, p, layout="per-feature")
    return r.seconds / len(X) * 1e3


def agree(net, logits, X):
    ref = net.forward(X)
    f = (lambda z: (z[:, 0] > 0).astype(int)) if ref.shape[1] == 1 else (lambda z: z.argmax(1))
    return float(np.mean(f(logits) == f(ref))), float(np.max(np.abs(logits - ref)))


def build_models(only: str | None = None):
    """name -> (model, rows the polynomials are fitted on, the 114 test rows, their labels); the same for every
    script here (run.py, mpc_vs_plain.py, memory.py). ``only``: build just that model."""
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    sc = StandardScaler().fit(Xtr)
    dX, dy = load_digits(return_X_y=True)
    dXtr, dXte, dytr, dyte = train_test_split(dX / 16.0, dy, test_size=0.2, random_state=0)
    makers = {
        "breast_cancer LR (pipeline)": lambda: (make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xtr, ytr), Xtr, Xte[:114], yte[:114]),
        "breast_cancer MLP 30-16-2 x^2": lambda: (mlp(sc.transform(Xtr), ytr, (30, 16, 2)), sc.transform(Xtr), sc.transform(Xte)[:114], yte[:114]),
        "digits MLP 64-32-10 x^2": lambda: (mlp(dXtr, dytr, (64, 32, 10)), dXtr, dXte[:114], dyte[:114]),
    }
    return {name: make() for name, make in makers.items() if only is None or name == only}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-sample-rows", type=int, default=5)
    ap.add_argument("--mpc-rows", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the batched runs (min, median)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--estimates-only", action="store_true",
                    help="only the planner's calibrated estimate vs ours measured (3 interleaved runs)")
    a = ap.parse_args()
    models = build_models()
    rows = []
    for name, (model, fit, Xe, ye) in models.items():
        net = extract(load_model(model))
        if a.estimates_only:
            est, meas = [], []
            for _ in range(a.repeats):
                est.append(plan(net, "he", Xe, ye, calibrate_costs=True)["estimate"]["batched"]["ms_per_sample"])
                meas.append(evaluate_he(net, Xe, ye, fit_rows=fit)["ms_per_sample"])
            row = {"model": name, "calibrated_estimate_ms": est, "measured_ms": meas,
                   "ratio_median": round(float(np.median(est) / np.median(meas)), 2)}
            rows.append(row)
            print(json.dumps(row))
            continue
        est = plan(net, "he", Xe, ye)["estimate"]
        runs = {"ours": [], "ours_per_feature": [], "tenseal": []}
        for _ in range(a.repeats):  # interleaved: the box is shared and its load changes by the minute
            ours = evaluate_he(net, Xe, ye, fit_rows=fit)
            runs["ours"].append(ours["ms_per_sample"])
            runs["ours_per_feature"].append(_per_feature(net, fit, Xe))
            bl_b, bl_b_ms = baseline_batched(net, Xe)
            runs["tenseal"].append(bl_b_ms)
        ps = evaluate_he(net, Xe[: a.per_sample_rows], ye[: a.per_sample_rows], fit_rows=fit, mode="per-sample")
        bl_p, bl_p_ms = baseline_per_sample(net, Xe[: a.per_sample_rows])
        mpc = evaluate_mpc(net, Xe[: a.mpc_rows], ye[: a.mpc_rows], parties=3)
        row = {
            "model": name, "rows": len(Xe),
            "ours_batched": {k: ours[k] for k in ("agreement", "accuracy", "plaintext_accuracy", "max_logit_error", "request_bytes", "public_context_bytes", "layout")} | {"N": ours["parameters"]["poly_modulus_degree"], "coeff": ours["parameters"]["coeff_mod_bit_sizes"]} | stats(runs["ours"]),
            "ours_batched_per_feature_layout": stats(runs["ours_per_feature"]),
            "planner_estimate_batched_ms_per_sample": est["batched"]["ms_per_sample"],
            "ours_per_sample": {k: ps[k] for k in ("ms_per_sample", "agreement", "max_logit_error")} | {"rows": a.per_sample_rows},
            "planner_estimate_per_sample_ms": est["per_sample"]["ms_per_sample"],
            "tenseal_batched_as_is": dict(zip(("agreement", "max_logit_error"), agree(net, bl_b, Xe))) | stats(runs["tenseal"]),
            "tenseal_tutorial_per_sample": dict(zip(("agreement", "max_logit_error"), agree(net, bl_p, Xe[: a.per_sample_rows]))) | {"ms_per_sample": round(bl_p_ms, 1)},
            "ours_mpc_3_parties": {k: mpc[k] for k in ("ms_per_sample", "agreement", "bytes_sent", "rounds", "accuracy", "peak_rss_bytes", "threshold", "fixed_point")},
        }
        rows.append(row)
        print(json.dumps(row))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
