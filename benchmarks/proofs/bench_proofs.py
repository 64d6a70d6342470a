"""Benchmark of ``modelshield.proofs`` (ezkl): setup, prove and verify times, proof and key sizes, peak
memory and zk/torch agreement for ReLU MLPs on scikit-learn's digits, exported to ONNX opset 13.

    .venv/bin/python benchmarks/proofs/bench_proofs.py [--configs 8:fixed,16:fixed,8:hashed] [--rows 10]

Each configuration runs in a child process (so its peak RSS is its own); results go to results.json here.
The SRS is generated locally (insecure, test only), as in the tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _train_and_export(hidden: int, folder: Path) -> None:
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    Xt, yt = torch.as_tensor(X[:1200]), torch.as_tensor(y[:1200])
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 64), str(folder / "model.onnx"), opset_version=13,
                          input_names=["x"], output_names=["logits"], dynamo=False)
    with torch.no_grad():
        ref = net(torch.as_tensor(X[1200:])).numpy()
    np.savez(folder / "calib.npz", X=X[1000:1064], y=y[1000:1064])
    np.savez(folder / "test.npz", X=X[1200:], y=y[1200:], ref=ref)
    test_acc = float((ref.argmax(1) == y[1200:]).mean())
    (folder / "train.json").write_text(json.dumps({"torch_test_accuracy": test_acc}))


def _child(folder: Path, weights: str, rows: int) -> None:
    from modelshield.proofs import Visibility, prove, setup, verify

    t0 = time.perf_counter()
    r = setup(folder / "model.onnx", folder / "calib.npz", folder / "setup", visibility=Visibility(weights=weights))
    setup_wall = time.perf_counter() - t0
    test = np.load(folder / "test.npz")
    prove_s, verify_s, agree, max_err, proof_bytes = [], [], 0, 0.0, 0
    for i in range(rows):
        x = test["X"][i]
        p = prove(folder / "setup", x, folder / f"proof{i}.json")
        prove_s.append(sum(p.timings.values()))
        t = time.perf_counter()
        v = verify(folder / f"proof{i}.json", folder / "setup")
        verify_s.append(time.perf_counter() - t)
        agree += int(v.predicted_class == int(np.argmax(test["ref"][i])))
        max_err = max(max_err, float(np.max(np.abs(np.asarray(v.output) - test["ref"][i]))))
        proof_bytes = p.size
    out = {"weights": weights, "logrows": r.manifest.logrows, "setup_total_s": setup_wall,
           **{f"setup_{k}": v for k, v in r.timings.items()},
           "prove_median_s": statistics.median(prove_s), "prove_max_s": max(prove_s),
           "verify_median_s": statistics.median(verify_s), "proof_json_bytes": proof_bytes,
           **{f"size_{k}": v for k, v in r.sizes.items()}, "rows": rows, "argmax_agree": agree,
           "max_abs_output_error": max_err,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="8:fixed,16:fixed,8:hashed")
    ap.add_argument("--rows", type=int, default=10)
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "WEIGHTS", "ROWS"))
    ap.add_argument("--out", default=str(HERE / "results.json"))
    a = ap.parse_args()
    if a.child:
        _child(Path(a.child[0]), a.child[1], int(a.child[2]))
        return
    results = []
    for cfg in a.configs.split(","):
        hidden, weights = cfg.split(":")
        with tempfile.TemporaryDirectory(prefix="bench-proofs-") as tmp:
            folder = Path(tmp)
            _train_and_export(int(hidden), folder)
            res = subprocess.run([sys.executable, __file__, "--child", str(folder), weights, str(a.rows)],
                                 capture_output=True, text=True, check=True)
            row = {"model": f"64-{hidden}-10", **json.loads(res.stdout.strip().splitlines()[-1]),
                   **json.loads((folder / "train.json").read_text())}
        print(json.dumps(row), flush=True)
        results.append(row)
    Path(a.out).write_text(json.dumps({"machine": "shared, loaded 2-core box (CPU only)", "results": results},
                                      indent=2) + "\n")


if __name__ == "__main__":
    main()
