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
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import create_key, prepare, start

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
    gateways = ["gateway_normal", "gateway"] + (["gateway_normal_before"] if args.before_src else [])
    X, env = prepare(work, gateways)
    servers: dict[str, tuple[subprocess.Popen, str, dict[str, str]]] = {}
    try:
        p, url = start("bare", work, env)
        servers["bare"] = (p, url, {})
        for kind in gateways:
            e = {**env, "PYTHONPATH": str(args.before_src.resolve())} if kind.endswith("_before") else env
            key = create_key(work, kind, e)
            p, url = start(kind, work, e)
            servers[kind] = (p, url, {"Authorization": f"Bearer {key}"})
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
