"""Fairness metrics at scale: modelshield's vectorised engine vs fairlearn's MetricFrame, in one run.

1,000,000 rows, two sensitive attributes (sex: 2 values, race: 6 values) -> 12 intersectional
groups, four metrics (selection rate, true/false positive rate, accuracy) and their between-group
differences. Checks that both give identical values, then times:

* fairlearn ``MetricFrame`` (one pass) + ``difference()``;
* modelshield point metrics (group encoding included);
* modelshield with 200 bootstrap resamples (percentile intervals for every rate and disparity).

Usage::

    .venv/bin/python benchmarks/fairness/bench_fairness.py [--rows 1000000] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["female", "male"], dtype=object), n, p=[0.4, 0.6])
    race = rng.choice(np.array(["a", "b", "c", "d", "e", "f"], dtype=object), n,
                      p=[0.5, 0.2, 0.12, 0.1, 0.05, 0.03])
    y = (rng.random(n) < 0.3).astype(np.int64)
    bias = np.where(sex == "male", 0.1, 0.0) + np.where(race == "a", 0.05, 0.0)
    p = (rng.random(n) < 0.2 + 0.5 * y + bias).astype(np.int64)
    return y, p, sex, race


def full_check(y, p, sex, race, boot: int):
    """The whole ``fairness`` audit check: 2 attributes + their intersection, bootstrap, proxies, findings.

    The model is a callable returning the precomputed decisions as scores, so the time is the check's own.
    """
    from modelshield.checks.base import AuditContext
    from modelshield.checks.fairness.check import FairnessCheck
    from modelshield.data.dataset import Dataset
    from modelshield.models.callable import CallableModel
    from modelshield.runner import run_check

    rng = np.random.default_rng(1)
    X = np.column_stack([p.astype(np.float64), rng.normal(size=(len(p), 3))])
    model = CallableModel(lambda X: np.column_stack([1.0 - X[:, 0], X[:, 0]]), classes=[0, 1], n_features=4)
    data = Dataset(X=X, y=y, feature_names=["decision", "f1", "f2", "f3"], sensitive={"sex": sex, "race": race},
                   feature_types=["binary", "continuous", "continuous", "continuous"])
    result = run_check(FairnessCheck(bootstrap=boot), AuditContext(model=model, data=data, seed=0))
    assert result.status.value != "error", result.summary
    return result


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of our engine (best kept); fairlearn runs once")
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import fairlearn
    import pandas as pd
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    from modelshield.checks.fairness.metrics import encode_groups, fairness_metrics

    y, p, sex, race = make_data(args.rows)
    sens = {"sex": sex, "race": race}
    n_groups = encode_groups(sens).n_groups

    def ours_point():
        return fairness_metrics(y, p, sens, attributes=["sex", "race"])

    def ours_boot():
        return fairness_metrics(y, p, sens, attributes=["sex", "race"], n_boot=args.boot, seed=0)

    def theirs():
        mf = MetricFrame(
            metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                     "false_positive_rate": false_positive_rate, "accuracy": accuracy_score},
            y_true=y, y_pred=p, sensitive_features=pd.DataFrame({"sex": sex, "race": race}))
        return mf, mf.difference()

    t_encode, codes = timed(lambda: encode_groups(sens), args.repeats)
    t_counts, _ = timed(lambda: fairness_metrics(y, p, codes), args.repeats)
    t_point, r = timed(ours_point, args.repeats)
    t_boot, rb = timed(ours_boot, args.repeats)
    t_fl, (mf, diff) = timed(theirs, 1)
    full_check(y[:2000], p[:2000], sex[:2000], race[:2000], 10)  # warm-up: imports (torch, sklearn) not timed
    t_check, check_result = timed(lambda: full_check(y, p, sex, race, args.boot), 1)

    # identical values: per group and between groups
    max_err = 0.0
    for g, vals in enumerate(r.groups.values):
        for k in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
            max_err = max(max_err, abs(float(r.rates[k][g]) - float(mf.by_group.loc[vals, k])))
    max_err = max(max_err, abs(r.disparity["demographic_parity_difference"] - float(diff["selection_rate"])))
    eo = max(float(diff["true_positive_rate"]), float(diff["false_positive_rate"]))
    max_err = max(max_err, abs(r.disparity["equalized_odds_difference"] - eo))
    assert max_err < 1e-9, max_err

    res = {
        "rows": args.rows, "groups": n_groups, "metrics": 4, "bootstrap": args.boot,
        "fairlearn_metricframe_s": round(t_fl, 3),
        "modelshield_point_s": round(t_point, 4),
        "modelshield_encode_groups_s": round(t_encode, 4),
        "modelshield_metrics_from_codes_s": round(t_counts, 4),
        "modelshield_bootstrap_s": round(t_boot, 4),
        "modelshield_full_check_s": round(t_check, 3),
        "full_check_summary": check_result.summary,
        "speedup_point": round(t_fl / t_point, 1),
        "speedup_bootstrap": round(t_fl / t_boot, 1),
        "max_abs_difference": max_err,
        "dp_difference": r.disparity["demographic_parity_difference"],
        "dp_difference_ci": rb.disparity_ci["demographic_parity_difference"],
        "versions": {"fairlearn": fairlearn.__version__, "numpy": np.__version__, "pandas": pd.__version__,
                     "python": platform.python_version()},
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
    }
    print(json.dumps(res, indent=2))
    print()
    print("| run | time (s) | vs MetricFrame |")
    print("|---|---:|---:|")
    print(f"| fairlearn MetricFrame, 4 metrics + difference() | {t_fl:.2f} | 1x |")
    print(f"| modelshield point metrics (all rates + 10 disparities) | {t_point:.3f} | {t_fl / t_point:.0f}x faster |")
    print(f"| of which: string group columns -> 12 intersection codes | {t_encode:.3f} | |")
    print(f"| of which: counts, rates and disparities from the codes | {t_counts:.3f} | {t_fl / t_counts:.0f}x faster |")
    print(f"| modelshield + {args.boot}-resample bootstrap intervals | {t_boot:.3f} | {t_fl / t_boot:.0f}x faster |")
    print(f"| modelshield `fairness` check end to end ({args.boot} resamples, 3 views, proxies on 10,000 rows, "
          f"findings) | {t_check:.2f} | {t_fl / t_check:.0f}x faster |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
