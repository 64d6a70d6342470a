"""Bare FastAPI vs the modelshield gateway with every protection on, loaded from a second process.

Usage: ``python benchmarks/serve/bench.py [--seconds 10] [--concurrency 8] [--rounds 3] [--json out.json]``

Both servers run one uvicorn worker on loopback, one at a time (never side by side), in alternating
rounds; the load generator is this process (asyncio + httpx, persistent connections). Latency
(p50/p99) comes from a sequential client (no queueing); throughput from ``--concurrency`` clients.
The gateway has: API-key auth, token bucket + daily budget (limits set high enough not to refuse),
input schema + Mahalanobis OOD screening (policy flag), output rounding, drift + PRADA + coverage
monitors, and the hash-chained SQLite audit log with ``synchronous=FULL`` (one fsync per commit,
group-committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
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

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def start(kind: str, work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    if kind == "bare":
        cmd = [str(BIN / "uvicorn"), "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
        cwd = HERE
    else:
        cmd = [str(BIN / "modelshield"), "serve", str(work / "model.joblib"), "--trust", "--config",
               str(work / "serve.yaml"), "--port", str(port)]
        cwd = work
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, proc)
    return proc, url


async def sequential(url: str, headers: dict[str, str], rows: list, n: int) -> list[float]:
    lat = []
    async with httpx.AsyncClient(headers=headers, timeout=30) as c:
        for i in range(n):
            t0 = time.perf_counter()
            r = await c.post(f"{url}/v1/predict", json={"inputs": [rows[i % len(rows)]]})
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return lat


async def load(url: str, headers: dict[str, str], rows: list, seconds: float, conc: int) -> tuple[int, list[float]]:
    stop = time.perf_counter() + seconds
    lat: list[float] = []
    count = 0

    async def worker(w: int) -> None:
        nonlocal count
        async with httpx.AsyncClient(headers=headers, timeout=30) as c:
            i = w
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await c.post(f"{url}/v1/predict", json={"inputs": [rows[i % len(rows)]]})
                lat.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                count += 1
                i += conc

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conc)))
    return int(count / (time.perf_counter() - t0)), lat


def pct(a: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(a) * 1000, q)), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--sequential", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ms-bench-serve-"))
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), work / "model.joblib")
    np.savez(work / "ref.npz", X=X, y=y)
    (work / "serve.yaml").write_text(yaml.safe_dump({
        "state_dir": str(work / "state"), "reference": str(work / "ref.npz"),
        "limits": {"rate_per_s": 1e6, "burst": 1e6, "daily_rows": 10**9},
        "input": {"policy": "flag"}, "outputs": {"decimals": 4},
        "audit": {"durability": "full"}, "extraction": {"action": "alert"},
    }))
    env = {**os.environ, "MS_BENCH_MODEL": str(work / "model.joblib"), "OMP_NUM_THREADS": "1"}
    key = subprocess.run([str(BIN / "modelshield"), "keys", "create", "--name", "bench", "--state-dir",
                          str(work / "state")], capture_output=True, text=True, check=True, env=env).stdout.strip()
    rows = X[:200].tolist()
    res: dict[str, dict[str, list]] = {"bare": {}, "gateway": {}}
    try:
        for rnd in range(args.rounds):
            for kind in ("bare", "gateway") if rnd % 2 == 0 else ("gateway", "bare"):
                proc, url = start(kind, work, env)
                try:
                    h = {"Authorization": f"Bearer {key}"} if kind == "gateway" else {}
                    asyncio.run(sequential(url, h, rows, 100))  # warm-up
                    lat = asyncio.run(sequential(url, h, rows, args.sequential))
                    rps, clat = asyncio.run(load(url, h, rows, args.seconds, args.concurrency))
                finally:
                    proc.terminate()
                    proc.wait(30)
                r = res[kind]
                r.setdefault("p50_ms", []).append(pct(lat, 50))
                r.setdefault("p99_ms", []).append(pct(lat, 99))
                r.setdefault("rps", []).append(rps)
                r.setdefault("loaded_p50_ms", []).append(pct(clat, 50))
                r.setdefault("loaded_p99_ms", []).append(pct(clat, 99))
                print(f"round {rnd} {kind:8s} p50 {r['p50_ms'][-1]:.2f} ms  p99 {r['p99_ms'][-1]:.2f} ms  "
                      f"{rps} req/s (c={args.concurrency}, p50 {r['loaded_p50_ms'][-1]:.1f} ms)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: {m: float(np.median(v)) for m, v in r.items()} for k, r in res.items()}
    summary = {
        "bare": med["bare"], "gateway": med["gateway"],
        "throughput_ratio": round(med["gateway"]["rps"] / med["bare"]["rps"], 3),
        "p50_overhead_ms": round(med["gateway"]["p50_ms"] - med["bare"]["p50_ms"], 3),
        "rounds": res, "concurrency": args.concurrency, "seconds": args.seconds,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_at_end": os.getloadavg()},
    }
    print(json.dumps({k: summary[k] for k in ("bare", "gateway", "throughput_ratio", "p50_overhead_ms")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
