"""Fairness metrics at scale: modelshield's vectorised engine vs fairlearn's MetricFrame, in one run.

1,000,000 rows, two sensitive attributes (sex: 2 values, race: 6 values) -> 12 intersectional
groups, four metrics (selection rate, true/false positive rate, accuracy) and their between-group
differences. Checks that both give identical values, then times:

* fairlearn ``MetricFrame`` (one pass) + ``difference()``;
* modelshield point metrics (group encoding included);
* modelshield with 200 bootstrap resamples (percentile intervals for every rate and disparity).

Every input kind users pass (object arrays, numpy unicode, pandas categorical, integer codes) is measured
with the paired helper (``benchmarks/paired.py``): interleaved rounds, per-round ratios, median [min-max].

Usage::

    .venv/bin/python benchmarks/fairness/bench_fairness.py [--rows 200000] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

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
    from modelshield.checks.fairness import FairnessCheck
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


def as_kind(col: np.ndarray, kind: str):
    """The same group column as the input kinds users pass: object, numpy unicode, pandas categorical, int codes."""
    import pandas as pd

    if kind == "object":
        return col.astype(object)
    if kind == "unicode":
        return col.astype(str)
    if kind == "categorical":
        return pd.Categorical(col)
    if kind == "codes":
        return np.unique(col, return_inverse=True)[1].astype(np.int64)
    raise ValueError(kind)


KINDS = ("object", "unicode", "categorical", "codes")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5, help="paired, interleaved rounds (>= 5)")
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import fairlearn
    import pandas as pd
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    from modelshield.fairness.metrics import encode_groups, fairness_metrics

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from paired import fmt_ratio, paired

    y, p, sex0, race0 = make_data(args.rows)
    out: dict[str, object] = {"rows": args.rows, "metrics": 4, "bootstrap": args.boot, "rounds": args.rounds,
                              "versions": {"fairlearn": fairlearn.__version__, "numpy": np.__version__,
                                           "pandas": pd.__version__, "python": platform.python_version()},
                              "kinds": {}}
    lines = ["| input kind | MetricFrame (s) | ours (s) | MetricFrame / ours | MetricFrame / ours + bootstrap |",
             "|---|---:|---:|---:|---:|"]
    for kind in args.kinds.split(","):
        sex, race = as_kind(sex0, kind), as_kind(race0, kind)
        sens = {"sex": sex, "race": race}

        def ours_point(sens=sens):
            return fairness_metrics(y, p, sens, attributes=["sex", "race"])

        def ours_boot(sens=sens):
            return fairness_metrics(y, p, sens, attributes=["sex", "race"], n_boot=args.boot, seed=0)

        def theirs(sex=sex, race=race):
            mf = MetricFrame(
                metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                         "false_positive_rate": false_positive_rate, "accuracy": accuracy_score},
                y_true=y, y_pred=p, sensitive_features=pd.DataFrame({"sex": sex, "race": race}))
            return mf, mf.difference()

        res = paired({"metricframe": theirs, "ours": ours_point, "ours_bootstrap": ours_boot},
                     baseline="metricframe", rounds=args.rounds, warmup=1)
        r = res.outputs["ours"]
        mf, diff = res.outputs["metricframe"]
        max_err = abs(r.disparity["demographic_parity_difference"] - float(diff["selection_rate"]))
        by = mf.by_group
        for g, vals in enumerate(r.groups.values):
            key = tuple(vals) if kind != "codes" else tuple(int(v) for v in vals)
            for k in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
                max_err = max(max_err, abs(float(r.rates[k][g]) - float(by.loc[key, k])))
        assert max_err < 1e-9, (kind, max_err)
        speed = {c: {k: 1 / v for k, v in res.summary(c).items() if k in ("median", "min", "max")}
                 for c in ("ours", "ours_bootstrap")}
        for c in speed:  # baseline / case: invert the per-round ratios properly (min <-> max)
            rr = [1 / x for x in res.ratios(c)]
            speed[c] = {"median": float(np.median(rr)), "min": min(rr), "max": max(rr)}
        out["kinds"][kind] = {"paired": res.to_dict(), "speedup": speed, "max_abs_difference": max_err,
                              "groups": encode_groups(sens).n_groups}
        lines.append(f"| {kind} | {res.summary('metricframe')['median_s']:.2f} | {res.summary('ours')['median_s']:.4f} "
                     f"| {fmt_ratio(speed['ours'])}x | {fmt_ratio(speed['ours_bootstrap'])}x |")
    full_check(y[:2000], p[:2000], sex0[:2000], race0[:2000], 10)  # warm-up: imports not timed
    t0 = time.perf_counter()
    check_result = full_check(y, p, sex0, race0, args.boot)
    out["full_check_s"] = round(time.perf_counter() - t0, 3)
    out["full_check_summary"] = check_result.summary
    out["load_avg"] = list(os.getloadavg())
    print(json.dumps({k: v for k, v in out.items() if k != "kinds"}, indent=2))
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
