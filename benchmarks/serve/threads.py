"""Server CPU per request, per thread: where the gateway spends what the bare endpoint does not.

Usage: ``python benchmarks/serve/threads.py [--requests 3000] [--windows 3] [--before-src DIR]``

Starts the bare app and the gateway (``durability: normal`` and ``full``; with ``--before-src``, also the
``normal`` gateway running that older ``src`` folder), then sends ``--requests`` one-row requests from 8
concurrent clients to each server in turn, ``--windows`` times, and reads each server thread's CPU time
from ``/proc/<pid>/task/*/stat`` before and after. CPU time per request is much less sensitive than
requests/s to the other jobs on a shared machine. Threads: ``main`` (event loop: HTTP, routing, the
request path, inline screening + prediction), ``pool`` (worker threads: the bare app's sync endpoint; the
gateway's screening of big batches), ``other`` (the gateway's audit writer and monitors).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import joblib
import numpy as np
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import BIN, HERE, free_port, wait_up

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[int(tid)] = (int(f[11]) + int(f[12])) / TICK
    return out


async def fixed(url: str, headers: dict[str, str], rows: list, n: int, conc: int = 8) -> float:
    async def worker(w: int) -> None:
        async with httpx.AsyncClient(headers=headers, timeout=30) as c:
            for j in range(n // conc):
                r = await c.post(f"{url}/v1/predict", json={"inputs": [rows[(w + j * conc) % len(rows)]]})
                assert r.status_code == 200, r.text

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conc)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--before-src", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ms-bench-threads-"))
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), work / "model.joblib")
    np.savez(work / "ref.npz", X=X, y=y)
    env = {**os.environ, "MS_BENCH_MODEL": str(work / "model.joblib"), "OMP_NUM_THREADS": "1"}
    servers: dict[str, tuple[subprocess.Popen, str, dict[str, str]]] = {}
    variants = [("gateway_normal", "normal", None), ("gateway", "full", None)]
    if args.before_src:
        variants.append(("gateway_normal_before", "normal", str(args.before_src.resolve())))
    try:
        port = free_port()
        p = subprocess.Popen([str(BIN / "uvicorn"), "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
                              "--log-level", "warning", "--no-access-log"], cwd=HERE, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers["bare"] = (p, f"http://127.0.0.1:{port}", {})
        wait_up(servers["bare"][1], p)
        for name, durability, src in variants:
            e = {**env, "PYTHONPATH": src} if src else env
            (work / f"{name}.yaml").write_text(yaml.safe_dump({
                "state_dir": str(work / name), "reference": str(work / "ref.npz"),
                "limits": {"rate_per_s": 1e6, "burst": 1e6, "daily_rows": 10**9},
                "input": {"policy": "flag"}, "outputs": {"decimals": 4},
                "audit": {"durability": durability}, "extraction": {"action": "alert"}}))
            key = subprocess.run([str(BIN / "modelshield"), "keys", "create", "--name", "b", "--state-dir",
                                  str(work / name)], capture_output=True, text=True, check=True, env=e).stdout.strip()
            port = free_port()
            p = subprocess.Popen([str(BIN / "modelshield"), "serve", str(work / "model.joblib"), "--trust", "--config",
                                  str(work / f"{name}.yaml"), "--port", str(port)], cwd=work, env=e,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers[name] = (p, f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"})
            wait_up(servers[name][1], p)
        rows = X[:200].tolist()
        for _, url, hdr in servers.values():  # warm-up
            asyncio.run(fixed(url, hdr, rows, 400))
        res: dict[str, list[tuple[float, float, dict[str, float]]]] = {k: [] for k in servers}
        for _ in range(args.windows):
            for k, (p, url, hdr) in servers.items():
                c0 = thread_cpu(p.pid)
                wall = asyncio.run(fixed(url, hdr, rows, args.requests))
                c1 = thread_cpu(p.pid)
                per = {t: (c1[t] - c0.get(t, 0.0)) / args.requests * 1e6 for t in c1}
                main_us = per.pop(p.pid, 0.0)
                # every other thread together: the bare app's worker pool; the gateway's audit writer,
                # monitors and (idle for one-row requests) pool. /proc does not tell them apart: Python
                # 3.11 does not name OS threads. Threads that ended during the window are left out.
                other = sum(per.values())
                res[k].append((main_us + other, args.requests / wall, {"main": main_us, "other": other}))
        print(f"{'server':22s} {'CPU us/req':>10s} {'main':>6s} {'other':>6s} {'req/s':>6s}")
        for k, v in res.items():
            tot = float(np.median([a for a, _, _ in v]))
            rps = float(np.median([b for _, b, _ in v]))
            med = {t: float(np.median([d[t] for _, _, d in v])) for t in ("main", "other")}
            print(f"{k:22s} {tot:10.0f} {med['main']:6.0f} {med['other']:6.0f} {rps:6.0f}")
    finally:
        for p, _, _ in servers.values():
            p.terminate()
            p.wait(30)


if __name__ == "__main__":
    main()
