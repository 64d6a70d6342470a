"""PII detection quality and speed on the generated evasive set (issue 22 D).

Reports, per kind, recall over >= 20 evasive variants x 12 cells (neutral column names), precision on
25 look-alike families, and the scan time of a 20,000-row mixed frame. With ``--before REV`` it also
runs the scanner of an older git revision side by side (same data, same process).

    .venv/bin/python benchmarks/privacy/bench_pii.py [--before 29a8b4e] [--seeds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _old_scanner(rev: str) -> types.ModuleType:
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/modelshield/privacy/pii.py"],
                         capture_output=True, text=True, check=True).stdout
    tmp = Path("/tmp/_pii_before.py")
    tmp.write_text(src)
    return _load(tmp, "_pii_before")


def quality(scan_frame, gen, seeds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, variants_fn in sorted(gen.KINDS.items()):
        hit = total = 0
        for seed in range(seeds):
            frame, _ = gen._frame(variants_fn(), seed)
            rep = scan_frame(frame, quasi=False)
            hit += sum(c.counts.get(kind, 0) for c in rep.columns)
            total += frame.size
        out[f"recall.{kind}"] = hit / total
    flagged = total = 0
    for seed in range(seeds):
        frame, _ = gen._frame(gen._lookalike_variants(), seed)
        rep = scan_frame(frame, quasi=False)
        flagged += sum(c.cells for c in rep.columns)
        total += frame.size
    out["lookalike_cells_not_flagged"] = 1 - flagged / total
    return out


def mixed_frame(rows: int = 20000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "id": [f"{i:08d}" for i in range(rows)],
        "amount": rng.normal(100, 30, rows).round(2).astype(str),
        "note": [["paid by card", "call back tomorrow", "shipped to customer", "refund requested"][i % 4]
                 for i in range(rows)],
        "contact": [f"user{i}@example.com" if i % 3 == 0 else f"+44 20 7946 {i % 10000:04d}" for i in range(rows)],
        "city": rng.choice(["Berlin", "Paris", "Madrid", "Rome", "London"], rows),
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=None, help="git revision to compare with (e.g. 29a8b4e)")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    gen = _load(ROOT / "tests/privacy/test_pii_evasive.py", "_pii_gen")
    from modelshield.privacy.pii import scan_frame

    result = {"now": quality(scan_frame, gen, args.seeds)}
    scanners = {"now": scan_frame}
    if args.before:
        old = _old_scanner(args.before)
        result["before"] = quality(old.scan_frame, gen, args.seeds)
        scanners["before"] = old.scan_frame
    # paired, interleaved timing rounds (benchmarks/paired.py)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from paired import paired

    frame = mixed_frame()
    res = paired({k: (lambda f=f: f(frame, quasi=False)) for k, f in scanners.items()},
                 baseline="before" if "before" in scanners else "now", rounds=5, warmup=1)
    result["seconds_20k_rows"] = {k: res.summary(k)["median_s"] for k in scanners}
    if "before" in scanners:
        result["time_ratio_now_over_before"] = res.summary("now")
    result["load_avg"] = {"before": res.load_before, "after": res.load_after}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
