"""Peak memory of the HE pipelines of run.py (issue 17): each pipeline in a fresh worker process.

The parent stays small (no torch, no TenSEAL) and reads each worker's peak resident set with ``os.wait4``
(``ru_maxrss`` of the child: Linux keeps a process's ``ru_maxrss`` across ``exec``, so the parent must be
small for the child's figure to be its own). Every worker imports the same modules and builds the same
model before its pipeline starts and reports its ``VmHWM`` at that point, so ``case_bytes`` = peak minus
that common base is the pipeline's own growth. Rounds interleave the pipelines (order alternating).

Usage: python benchmarks/private_inference/memory.py [--rounds 2] [--per-sample-rows 3] [--out memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("breast_cancer LR (pipeline)", "breast_cancer MLP 30-16-2 x^2", "digits MLP 64-32-10 x^2")
CASES = ("ours batched", "TenSEAL batched as-is", "ours per-sample", "TenSEAL tutorial per-sample")


def vm_hwm() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))


def worker(model_name: str, case: str, per_sample_rows: int) -> None:
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    from run import baseline_batched, baseline_per_sample, build_models  # heavy (torch, TenSEAL): worker only

    from modelshield.private_inference import evaluate_he, extract
    from modelshield.protect.loader import load_model

    model, fit, X, y = build_models(only=model_name)[model_name]
    net = extract(load_model(model))
    n = per_sample_rows
    before = vm_hwm()
    if case == "ours batched":
        evaluate_he(net, X, y, fit_rows=fit)
    elif case == "ours per-sample":
        evaluate_he(net, X[:n], y[:n], fit_rows=fit, mode="per-sample")
    elif case == "TenSEAL batched as-is":
        baseline_batched(net, X)
    else:
        baseline_per_sample(net, X[:n])
    print(json.dumps({"vm_hwm_before_case": before, "vm_hwm": vm_hwm()}))


def measure(model_name: str, case: str, per_sample_rows: int) -> dict[str, int]:
    p = subprocess.Popen([sys.executable, __file__, "--worker", model_name, case,
                          "--per-sample-rows", str(per_sample_rows)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"worker {model_name} / {case} failed (exit {p.returncode})")
    r = json.loads(out.decode().strip().splitlines()[-1])
    return {"peak_rss_bytes": usage.ru_maxrss * 1024, "vm_hwm_bytes": r["vm_hwm"],
            "case_bytes": r["vm_hwm"] - r["vm_hwm_before_case"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "CASE"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--per-sample-rows", type=int, default=3)
    ap.add_argument("--case", action="append", choices=CASES, help="only these pipelines (default: all)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    cases = tuple(a.case or CASES)
    if a.worker:
        worker(*a.worker, a.per_sample_rows)
        return
    runs: dict[str, dict[str, list[dict[str, int]]]] = {m: {c: [] for c in cases} for m in MODELS}
    for r in range(a.rounds):
        for m in MODELS:
            for c in (cases if r % 2 == 0 else cases[::-1]):
                runs[m][c].append(measure(m, c, a.per_sample_rows))
                print(m, "|", c, "|", json.dumps(runs[m][c][-1]), flush=True)
    summary = [{"model": m, "case": c, "peak_rss_mib": [round(x["peak_rss_bytes"] / 2**20, 1) for x in rs],
                "case_mib": [round(x["case_bytes"] / 2**20, 1) for x in rs], "runs": rs}
               for m, cases in runs.items() for c, rs in cases.items()]
    for row in summary:
        print(row["model"], "|", row["case"], "| peak MiB", row["peak_rss_mib"], "| case MiB", row["case_mib"])
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"rounds": a.rounds, "per_sample_rows": a.per_sample_rows, "rows": summary}, fh, indent=2)


if __name__ == "__main__":
    main()
