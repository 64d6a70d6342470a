"""The cost of STRIP at the gateway: requests/s with and without the STRIP input-defence step, paired.

Usage: ``python benchmarks/poisoning/bench_gateway_strip.py [--requests 300] [--rounds 7] [--torch-threads 1]
[--json out.json]``

Torch runs on one thread (``--torch-threads``): a gateway worker per core, as ``modelshield serve`` is deployed;
on a loaded 2-core box torch's default two threads made a 17-row forward pass ~14x slower (4.2 vs 0.30 ms).

One backdoored model (digits, BadNets 2x2 pixel trigger on 10% of the training rows, target 0; PyTorch MLP
64-32, Adam, 40 epochs, seed 0) served by two gateways built from the same config except ``input.strip``
(``enabled: true``, 16 overlays, ``policy: flag``; reference data: 400 clean held-out rows, the drift
reference) -- both with the schema and Mahalanobis OOD detector, policy flag, the noise-consistency
adversarial score off, the drift monitor on, the extraction monitors off (one client cycling through the
same rows is throttled as an extraction), audit log ``durability: normal``.

Two paired measurements (``benchmarks/paired.py``: interleaved rounds, order alternating, per-round ratio):

* ``screen``: ``Gateway.screen_and_predict`` on one clean row, ``--requests`` calls per round (the step
  STRIP adds to, without HTTP or the audit log);
* ``http``: ``POST /v1/predict`` of one clean row through FastAPI's in-process ``TestClient``,
  ``--requests`` sequential requests per round (authentication, limits, audit-log commit, monitors).

Each is measured in wall time and in CPU time (``screen``: this thread's, ``time.thread_time``; ``http``: the
process's, ``time.process_time``), the latter being what a request costs whatever else runs on the box.

Also reported: the share of triggered held-out inputs STRIP flags and of clean ones it flags (one pass).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from paired import fmt_ratio, paired

from modelshield.models.torch import TorchModel
from modelshield.poisoning import _torch as T
from modelshield.poisoning.planted import Trigger, plant_trigger
from modelshield.serve.app import create_app
from modelshield.serve.config import ServeConfig


def build() -> tuple[TorchModel, np.ndarray, np.ndarray, np.ndarray]:
    trig = Trigger.pixel_patch((8, 8), size=2, value=1.0, target=0)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    pl = plant_trigger(Xtr, ytr, trig, fraction=0.1, seed=0)
    model = TorchModel(T.train(T.make_mlp(64, 10, seed=0), pl.X, pl.y, epochs=40, lr=3e-3, seed=0))
    held = Xte[400:]
    return model, Xte[:400], held, trig.apply(held[yte[400:] != 0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--overlays", type=int, default=16)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("results_gateway_strip.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.torch_threads)
    model, ref, held, triggered = build()
    tmp = Path(tempfile.mkdtemp(prefix="ms-strip-bench-"))
    apps, gws, keys = {}, {}, {}
    for name, strip in (("no_strip", {"enabled": False}),
                        ("strip", {"enabled": True, "overlays": args.overlays, "policy": "flag", "seed": 0})):
        cfg = ServeConfig.model_validate({
            "state_dir": str(tmp / name), "audit": {"durability": "normal"},
            "limits": {"rate_per_s": 1e6, "burst": 1e6, "rows_per_s": 1e7, "rows_burst": 1e7, "daily_rows": 10**9},
            "input": {"policy": "flag", "adversarial": False, "strip": strip},
            "extraction": {"enabled": False}})  # repeated queries of one client would be throttled
        apps[name] = create_app(model, cfg, reference=ref)
        gws[name] = apps[name].state.gateway
        keys[name] = gws[name].keys.create("bench", ["predict"])[1]
    det = gws["strip"].defense.detectors["strip"]
    thr = gws["strip"].defense.thresholds["strip"]
    caught = float(np.mean(det.score(triggered) > thr))
    clean_flagged = float(np.mean(det.score(held) > thr))
    rows = held[np.arange(args.requests) % len(held)]  # the clean held-out rows, cycled
    n = len(rows)

    def screen(name: str):
        gw = gws[name]
        return lambda: [gw.screen_and_predict(rows[i : i + 1]) for i in range(n)]

    res_screen = paired({"no_strip": screen("no_strip"), "strip": screen("strip")}, baseline="no_strip",
                        rounds=args.rounds)
    # the same in CPU time of this thread: what a request costs, whatever the other processes on the box do
    res_screen_cpu = paired({"no_strip": screen("no_strip"), "strip": screen("strip")}, baseline="no_strip",
                            rounds=args.rounds, timer=time.thread_time)
    clients = {name: TestClient(app).__enter__() for name, app in apps.items()}
    bodies = [json.dumps({"inputs": rows[i : i + 1].tolist()}) for i in range(n)]

    def http(name: str):
        c, h = clients[name], {"Authorization": f"Bearer {keys[name]}", "Content-Type": "application/json"}

        def run() -> int:
            codes = [c.post("/v1/predict", content=b, headers=h).status_code for b in bodies]
            if set(codes) != {200}:
                raise RuntimeError(f"{name}: not every request was answered 200: {sorted(set(codes))}")
            return len(codes)

        return run

    res_http = paired({"no_strip": http("no_strip"), "strip": http("strip")}, baseline="no_strip",
                      rounds=args.rounds)
    # CPU time of the whole process (client, app and monitor threads)
    res_http_cpu = paired({"no_strip": http("no_strip"), "strip": http("strip")}, baseline="no_strip",
                          rounds=args.rounds, timer=time.process_time)
    for c in clients.values():
        c.__exit__(None, None, None)
    for gw in gws.values():
        gw.close()
    out = {"requests_per_round": n, "overlays": args.overlays, "torch_threads": args.torch_threads, "triggered_flagged": caught,
           "clean_flagged": clean_flagged, "threshold": thr, "screen": res_screen.to_dict(), "http": res_http.to_dict(),
           "screen_cpu": res_screen_cpu.to_dict(), "http_cpu": res_http_cpu.to_dict()}
    for name, res in (("screen", res_screen), ("screen_cpu", res_screen_cpu), ("http", res_http),
                      ("http_cpu", res_http_cpu)):
        base, st = statistics.median(res.seconds["no_strip"]), statistics.median(res.seconds["strip"])
        added = statistics.median(s - b for s, b in zip(res.seconds["strip"], res.seconds["no_strip"], strict=True))
        out[f"{name}_ms_per_request"] = {"no_strip": 1e3 * base / n, "strip": 1e3 * st / n, "added": 1e3 * added / n}
        out[f"{name}_requests_per_s"] = {"no_strip": n / base, "strip": n / st}
        print(f"{name}: {n / base:.0f} req/s without STRIP, {n / st:.0f} with (medians over rounds); "
              f"{1e3 * base / n:.2f} -> {1e3 * st / n:.2f} ms/request, added {1e3 * added / n:.2f} ms (median of "
              f"per-round differences); time ratio strip/no_strip {fmt_ratio(res.summary('strip'))}")
    print(f"STRIP flags {caught:.1%} of {len(triggered)} triggered inputs and {clean_flagged:.1%} of {len(held)} "
          "clean held-out inputs")
    print("load before/after:", res_http.load_before, res_http.load_after)
    args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
