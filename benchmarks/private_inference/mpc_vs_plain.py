"""Ours (``private mpc-infer``'s engine) vs the plain mpyc script (plain_mpyc.py), paired rounds (issue 17).

Both run 3 mpyc parties as local OS processes on loopback, on the same model weights (the extracted layer
chain: the LR pipeline's scaler folded into its first layer) and the same test rows. Each round runs both,
order alternating (benchmarks/paired.py); reported per round as ours / plain: protocol time (from
``mpc.start()`` to the opened classes, measured inside the parties the same way) and wall time (process
start to the last party's figures), plus bytes sent per party, messages to the next party (an upper bound
on the rounds), peak RSS per party and accuracy vs plaintext. Peak RSS is each party's ``VmHWM``: Linux
keeps ``ru_maxrss`` across ``exec``, so a party started by this (torch-sized) process would report this
process's peak under ``ru_maxrss``; the plain parties report both.

Usage: python benchmarks/private_inference/mpc_vs_plain.py [--rows 114] [--rounds 5] [--out mpc_vs_plain.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from paired import fmt_ratio, paired  # noqa: E402
from run import build_models  # noqa: E402

from modelshield.private_inference import extract  # noqa: E402
from modelshield.private_inference.mpc import _free_base, run_mpc  # noqa: E402
from modelshield.private_inference.network import Dense  # noqa: E402
from modelshield.protect.loader import load_model  # noqa: E402

PLAIN = HERE / "plain_mpyc.py"
MODELS = ("breast_cancer LR (pipeline)", "breast_cancer MLP 30-16-2 x^2")


def write_job(net: Any, X: np.ndarray, d: str) -> None:
    layers, weights = [], {}
    for k, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            layers.append({"type": "dense", "shape": list(layer.shape)})
            weights[f"W{k}"], weights[f"b{k}"] = layer.W, layer.b
        elif layer.kind == "square":
            layers.append({"type": "square"})
        else:
            raise SystemExit(f"plain_mpyc.py runs dense and x^2 layers only, not {layer.kind}")
    with open(os.path.join(d, "spec.json"), "w") as fh:
        json.dump({"layers": layers, "rows_shape": list(X.shape)}, fh)
    np.savez(os.path.join(d, "weights.npz"), **weights)
    np.save(os.path.join(d, "rows.npy"), X)


def run_plain(d: str, timeout: float = 900.0) -> dict[str, Any]:
    """``python plain_mpyc.py JOB -M3``: party 0 starts parties 1 and 2 itself and does not wait for them,
    so their figures are polled for."""
    files = [os.path.join(d, f"stats{i}.json") for i in range(3)]
    for f in files:
        if os.path.exists(f):
            os.remove(f)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(PLAIN), d, "-M3", "-B", str(_free_base(3)), "--no-log"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, check=False)
    if p.returncode:
        raise SystemExit(f"plain_mpyc.py failed: {p.stderr.decode(errors='replace')[-2000:]}")
    while not all(os.path.exists(f) for f in files):
        if time.perf_counter() - t0 > timeout:
            raise SystemExit("plain_mpyc.py: parties 1 and 2 did not report")
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    stats = [json.loads(Path(f).read_text()) for f in files]
    return {"predictions": np.rint(np.asarray(stats[1]["predictions"], dtype=float)).astype(int),
            "protocol_seconds": max(s["seconds"] for s in stats), "wall_seconds": wall,
            "bytes_sent": [s["bytes_sent"] for s in stats],
            "messages_to_next_party": [s["messages_to_next_party"] for s in stats],
            "peak_rss_bytes": [s["peak_rss_bytes"] for s in stats],
            "ru_maxrss_bytes": [s["ru_maxrss_bytes"] for s in stats]}


def accuracy(net: Any, pred: np.ndarray, y: np.ndarray) -> float:
    labels = np.asarray(net.classes)[pred] if net.classes is not None else pred
    return float(np.mean(labels.astype(str) == np.asarray(y).astype(str)))


def compare(name: str, model: Any, X: np.ndarray, y: np.ndarray, rounds: int) -> dict[str, Any]:
    net = extract(load_model(model))
    plain_pred = net.predict(X)
    runs: dict[str, list[dict[str, Any]]] = {"plain mpyc": [], "ours": []}
    with tempfile.TemporaryDirectory(prefix="plain-mpyc-") as d:
        write_job(net, X, d)
        res = paired({"plain mpyc": lambda: runs["plain mpyc"].append(run_plain(d)),
                      "ours": lambda: runs["ours"].append(run_mpc(net, X, parties=3))},
                     baseline="plain mpyc", rounds=rounds, warmup=1)
    counted = {k: v[-rounds:] for k, v in runs.items()}  # the warm-up round is the first
    ratio_protocol = [o["protocol_seconds"] / p["protocol_seconds"]
                      for o, p in zip(counted["ours"], counted["plain mpyc"], strict=True)]
    out: dict[str, Any] = {"model": name, "rows": len(X), "plaintext_accuracy": accuracy(net, plain_pred, y)}
    for case, rs in counted.items():
        last = rs[-1]
        out[case] = {
            "ms_per_sample_protocol_median": round(statistics.median(r["protocol_seconds"] for r in rs) / len(X) * 1e3, 3),
            "ms_per_sample_wall_median": round(statistics.median(r["wall_seconds"] for r in rs) / len(X) * 1e3, 3),
            "accuracy": accuracy(net, last["predictions"], y),
            "agreement_with_plaintext": float(np.mean(last["predictions"] == plain_pred)),
            "bytes_sent": last["bytes_sent"], "rounds": max(last["messages_to_next_party"]),
            "peak_rss_bytes": [max(r["peak_rss_bytes"][i] for r in rs) for i in range(3)],
        }
    o, p = out["ours"], out["plain mpyc"]
    out["ours_over_plain"] = {
        "protocol_time": {"median": statistics.median(ratio_protocol), "min": min(ratio_protocol),
                          "max": max(ratio_protocol)},
        "wall_time": {k: res.summary("ours")[k] for k in ("median", "min", "max")},
        "bytes_sent": [round(a / b, 3) for a, b in zip(o["bytes_sent"], p["bytes_sent"], strict=True)],
        "rounds": round(o["rounds"] / p["rounds"], 3),
        "peak_rss": [round(a / b, 3) for a, b in zip(o["peak_rss_bytes"], p["peak_rss_bytes"], strict=True)],
    }
    out["paired"] = res.to_dict()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=114)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", action="append", choices=[*MODELS, "digits MLP 64-32-10 x^2"])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rows = []
    for name in a.model or MODELS:
        model, _, X, y = build_models(only=name)[name]
        row = compare(name, model, X[: a.rows], y[: a.rows], a.rounds)
        r = row["ours_over_plain"]
        print(f"{name}: ours/plain protocol {fmt_ratio(r['protocol_time'])}, wall {fmt_ratio(r['wall_time'])}, "
              f"bytes {r['bytes_sent']}, rounds {r['rounds']}, peak RSS {r['peak_rss']}; accuracy ours "
              f"{row['ours']['accuracy']:.4f} plain {row['plain mpyc']['accuracy']:.4f} (plaintext "
              f"{row['plaintext_accuracy']:.4f})", flush=True)
        print(json.dumps({k: v for k, v in row.items() if k != "paired"}), flush=True)
        rows.append(row)
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
