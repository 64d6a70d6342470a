"""Scaling benchmark of registry audits (issue 20): a generated registry of small scikit-learn models audited
with 1 and 2 local worker processes, local Ray, a simulated multi-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``), and the results cache's re-audit of the unchanged registry.

    .venv/bin/python benchmarks/scale/run.py --models 50 --out benchmarks/scale/results.json

Each unit is one check on one model (``artifact``, ``baseline``, ``robustness`` and ``privacy`` with
``--shadows`` shadow models, ``--quick``). Per-unit costs come from the reports' ``duration_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def make_registry(root: Path, n: int, seed: int = 0) -> Path:
    import joblib
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(400, 8, n_informative=5, random_state=seed)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    df["label"] = y
    root.mkdir(parents=True, exist_ok=True)
    df[200:].to_csv(root / "holdout.csv", index=False)
    df[:200].to_csv(root / "train.csv", index=False)
    (root / "registry.yaml").write_text("defaults: {data: holdout.csv, train: train.csv, target: label}\n")
    for i in range(n):
        sub = root / f"team{i % 5}"
        sub.mkdir(exist_ok=True)
        m = (LogisticRegression(C=0.05 * (i + 1), max_iter=300) if i % 2 else
             DecisionTreeClassifier(max_depth=2 + i % 6, random_state=i)).fit(X[:200], y[:200])
        joblib.dump(m, sub / f"model{i:03d}.joblib")
    return root


def timed(label: str, fn, results: dict) -> object:
    t0 = time.perf_counter()
    out = fn()
    results[label] = round(time.perf_counter() - t0, 2)
    print(f"{label:40s} {results[label]:8.2f} s", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--shadows", type=int, default=32)
    ap.add_argument("--checks", default="baseline,robustness,privacy")
    ap.add_argument("--skip", default="", help="comma-separated: p1,p2,ray,cluster,cache")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    skip = set(args.skip.split(",")) - {""}

    from modelshield.scale import LocalExecutor, ProcessExecutor, RayExecutor, ResultCache, audit_registry

    checks = args.checks.split(",")
    opts = {"privacy": {"n_shadows": args.shadows}} if "privacy" in checks else {}
    kw = {"checks": checks, "quick": True, "options": opts, "seed": 0}
    res: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load avg at start "
                            f"{os.getloadavg()[0]:.1f} (shared, loaded 2-core box)",
                 "python": platform.python_version(), "models": args.models, "checks": ["artifact", *checks],
                 "shadows": args.shadows, "wall_s": {}}
    walls = res["wall_s"]
    with tempfile.TemporaryDirectory(prefix="ms-scale-") as tmp:
        reg = make_registry(Path(tmp) / "reg", args.models)
        runs = {}
        if "p1" not in skip:
            with ProcessExecutor(workers=1) as ex:
                runs["p1"] = timed("processes, 1 worker (incl. pool start)", lambda: audit_registry(reg, executor=ex, **kw), walls)
        cache_path = Path(tmp) / "cache.sqlite"
        if "p2" not in skip:  # also the cache's first run (writing the cache is part of its cost)
            with ProcessExecutor(workers=2) as ex:
                runs["p2"] = timed("processes, 2 workers (incl. pool start)", lambda: audit_registry(
                    reg, executor=ex, cache=ResultCache(cache_path), **kw), walls)
        if "ray" not in skip:
            ex = RayExecutor(workers=2)
            try:
                timed("ray local: init", ex.start, walls)
                runs["ray"] = timed("ray local, 2 CPUs", lambda: audit_registry(reg, executor=ex, **kw), walls)
            except Exception as exc:  # recorded, not hidden: Ray may not start on an overloaded box
                res["ray_error"] = f"{type(exc).__name__}: {exc}"
                print("ray local failed:", res["ray_error"], flush=True)
            finally:
                timed("ray local: shutdown", ex.close, walls)
        if "cluster" not in skip:
            try:
                _cluster(reg, kw, res, runs, walls, timed)
            except Exception as exc:
                res["cluster_error"] = f"{type(exc).__name__}: {exc}"
                print("ray cluster failed:", res["cluster_error"], flush=True)
        if "cache" not in skip and "p2" in runs:
            second = timed("cache: re-audit, unchanged (local)", lambda: audit_registry(
                reg, executor=LocalExecutor(), cache=ResultCache(cache_path), **kw), walls)
            res["cache_ratio"] = round(walls["cache: re-audit, unchanged (local)"]
                                       / walls["processes, 2 workers (incl. pool start)"], 4)
            res["cache_hits"] = second.cache["hits"]
            res["cache_rows_cached"] = sum(r.cached for r in second.rows)
        base = next(iter(runs.values()), None)
        if base is not None:
            per_check: dict[str, list[float]] = {}
            for rep in base.reports:
                for r in rep.runs[0].results:
                    per_check.setdefault(r.check, []).append(r.duration_s)
            res["unit_s_mean"] = {k: round(sum(v) / len(v), 3) for k, v in per_check.items()}
            res["unit_s_total"] = round(sum(sum(v) for v in per_check.values()), 1)
            res["statuses"] = {s: sum(r.status == s for r in base.rows) for s in ("pass", "fail", "error")}
            res["errors"] = sorted({r.error for r in base.rows if r.error})[:3]
            # determinism across executors: same JSON without timing fields
            def strip(o):
                if isinstance(o, dict):
                    return {k: strip(v) for k, v in o.items() if k not in {"created", "duration_s", "seconds"}}
                if isinstance(o, list):
                    return [strip(v) for v in o]
                return o
            ref = [strip(r.to_dict()) for r in base.reports]
            res["same_reports_across_executors"] = all(
                [strip(r.to_dict()) for r in other.reports] == ref for other in runs.values())
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


def _cluster(reg, kw, res, runs, walls, timed):
    import ray
    from ray.cluster_utils import Cluster

    from modelshield.scale import RayExecutor, audit_registry

    cluster = timed("ray cluster (3 nodes x 1 CPU): start", lambda: Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}), walls)
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ex = RayExecutor(address=cluster.address)
    ex.start()
    runs["cluster"] = timed("ray cluster, 3 nodes", lambda: audit_registry(reg, executor=ex, **kw), walls)
    probe = ex.run(_slow_node_probe, list(range(12)))
    res["cluster_nodes_used"] = len({o.value for o in probe if o.ok})
    res["cluster_nodes"] = len(ray.nodes())
    ex.close()
    cluster.shutdown()


def _slow_node_probe(_):
    import time

    import ray

    time.sleep(0.5)  # long enough that the tasks spread over the nodes
    return ray.get_runtime_context().get_node_id()


if __name__ == "__main__":
    sys.exit(main())
