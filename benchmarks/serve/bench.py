"""Bare FastAPI vs the modelshield gateway with every protection on, loaded from a second process.

Usage: ``python benchmarks/serve/bench.py [--seconds 4] [--concurrency 8] [--rounds 6] [--sequential 600] [--json out.json]
[--before-src DIR]``

``--before-src DIR`` (a ``src`` folder of an older checkout, e.g. ``git archive HEAD src | tar -x -C /tmp/old``)
adds ``gateway_before`` / ``gateway_normal_before``: the same two gateways running that code, loaded in the
same alternation, so a change is measured paired in time against the code it replaces.

The three servers (bare, gateway, gateway with ``durability: normal``) each run one uvicorn worker on
loopback, all started at once; the load generator is this process (asyncio + httpx, persistent
connections), and it loads one server at a time, alternating, so that every comparison is paired in
time on a shared machine. Latency (p50/p99) comes from a sequential client taking turns between the
servers every 50 requests (no queueing); throughput from ``--concurrency`` clients in ``--seconds``
windows, ``--rounds`` windows per server; the ratio is the median of the per-round ratios.
The gateway (``gateway``: audit ``durability: full``; ``gateway_normal``: ``durability: normal``) has:
API-key auth, token bucket + daily budget (limits set high enough not to refuse),
input schema + Mahalanobis OOD + the robustness module's noise-consistency adversarial score
(policy flag), output rounding, drift + PRADA + coverage
monitors, and the hash-chained SQLite audit log written before each response (``synchronous=FULL``: each
request's record is committed on the event loop with one fsync; ``NORMAL``: no fsync, survives a process crash
but not a power loss).
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


GATEWAYS = {"gateway": ("serve.yaml", "state"), "gateway_normal": ("serve-normal.yaml", "state-normal"),
            "gateway_before": ("serve-before.yaml", "state-before"),
            "gateway_normal_before": ("serve-normal-before.yaml", "state-normal-before")}


def prepare(work: Path, gateways: list[str]) -> tuple[np.ndarray, dict[str, str]]:
    """Write the model, the reference data and one config per gateway into ``work``; ``(X, server env)``."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), work / "model.joblib")
    np.savez(work / "ref.npz", X=X, y=y)
    # each gateway its own state directory (keys, audit database): two servers writing one SQLite
    # file with different ``synchronous`` settings would slow each other down
    for kind in gateways:
        name, state = GATEWAYS[kind]
        durability = "normal" if "normal" in kind else "full"
        (work / name).write_text(yaml.safe_dump({
            "state_dir": str(work / state), "reference": str(work / "ref.npz"),
            "limits": {"rate_per_s": 1e6, "burst": 1e6, "daily_rows": 10**9, "rows_per_s": 1e9, "rows_burst": 1e9},
            "input": {"policy": "flag"}, "outputs": {"decimals": 4},
            "audit": {"durability": durability}, "extraction": {"action": "alert"},
        }))
    return X, {**os.environ, "MS_BENCH_MODEL": str(work / "model.joblib"), "OMP_NUM_THREADS": "1"}


def create_key(work: Path, kind: str, env: dict[str, str], scope: str = "predict") -> str:
    """A new API key in gateway ``kind``'s state directory (``modelshield keys create``)."""
    return subprocess.run([str(BIN / "modelshield"), "keys", "create", "--name", f"bench-{scope}", "--scope", scope,
                           "--state-dir", str(work / GATEWAYS[kind][1])], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def start(kind: str, work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    if kind == "bare":
        cmd = [str(BIN / "uvicorn"), "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
        cwd = HERE
    else:
        cfg = GATEWAYS[kind][0]
        cmd = [str(BIN / "modelshield"), "serve", str(work / "model.joblib"), "--trust", "--config",
               str(work / cfg), "--port", str(port)]
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


def components(work: Path, X: np.ndarray) -> dict[str, float]:
    """In-process cost of each protection per one-row request (microseconds, median of 2000)."""
    from modelshield import load_model
    from modelshield.serve.app import Gateway
    from modelshield.serve.auditlog import AuditRecord, input_hash
    from modelshield.serve.config import load_config
    from modelshield.serve.monitors import Batch

    cfg = load_config(work / "serve.yaml", state_dir=str(work / "state-components"))
    gw = Gateway(load_model(joblib.load(work / "model.joblib")), cfg)
    _, key = gw.keys.create("c", ["predict"])
    header = f"Bearer {key}"
    body = json.dumps({"inputs": X[:1].tolist()}).encode()
    Xs = [X[i : i + 1] for i in range(len(X))]
    P = [gw.model.predict_proba(x) for x in Xs[:50]]

    loop = asyncio.new_event_loop()

    def med(fn, n=2000) -> float:
        ts = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            fn(i)
            ts.append(time.perf_counter_ns() - t0)
        return round(float(np.median(ts)) / 1000, 1)

    out = {
        "auth": med(lambda i: gw.auth.authenticate(header)),
        "parse+hash": med(lambda i: (input_hash(body), gw.parse(body, "application/json"))),
        "limits": med(lambda i: gw.limiter.check("k", 1)),
        # the gateway's one model call: the detector's batch [x; 16 noisy copies] also answers x
        "input_screen+predict": med(lambda i: gw.screen_and_predict(Xs[i % len(Xs)])),
        "predict_alone": med(lambda i: gw.model.predict_proba(Xs[i % len(Xs)])),  # what the bare app does
        "output_hardening": med(lambda i: gw.outputs.body(P[i % 50], gw.classes)),
        # what the request path does: append_async commits on the event loop (SQLite, audit.commit auto)
        "audit_append_durable": med(lambda i: loop.run_until_complete(gw.audit.append_async(
            AuditRecord(kind="request", request_id=str(i), output={"predictions": [1]}))), 500),
        "monitors_background": med(lambda i: [m.update(Batch(X=Xs[i % len(Xs)], proba=P[i % 50], key_id="k"))
                                              for m in gw.monitors], 500),
    }
    gw.close()
    loop.close()
    return out


def versions() -> dict[str, str | None]:
    """Versions of the serving stack (uvicorn picks uvloop/httptools for both servers when installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in ("modelshield", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "scikit-learn", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--sequential", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--before-src", type=Path, help="src folder of older code to load side by side")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ms-bench-serve-"))
    gateways = ["gateway", "gateway_normal"] + (["gateway_before", "gateway_normal_before"] if args.before_src else [])
    X, env = prepare(work, gateways)
    keys = {kind: create_key(work, kind, env) for kind in gateways}
    # a separate monitor-scoped key reads the audit group-commit sizes from /admin/stats (not on the hot path)
    stat_keys = {kind: create_key(work, kind, env, scope="monitor") for kind in ("gateway", "gateway_normal")}
    env_before = {**env, "PYTHONPATH": str(args.before_src.resolve())} if args.before_src else env
    rows = X[:200].tolist()
    comp = components(work, X)
    print("per-request cost in process (us, median):", comp, flush=True)
    kinds = ("bare", *gateways)
    res: dict[str, dict[str, list]] = {k: {} for k in kinds}
    procs: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for kind in kinds:  # all up at once; an idle server costs nothing, and every comparison is paired in time
            procs[kind] = start(kind, work, env_before if kind.endswith("_before") else env)
        hdr = {k: ({"Authorization": f"Bearer {keys[k]}"} if k != "bare" else {}) for k in kinds}
        for k in kinds:
            asyncio.run(sequential(procs[k][1], hdr[k], rows, 100))  # warm-up
        # latency: one request to each server in turn (rotating order), so load changes hit all alike
        lat: dict[str, list[float]] = {k: [] for k in kinds}
        for i in range(args.sequential // 50):
            order = kinds[i % len(kinds) :] + kinds[: i % len(kinds)]
            for k in order:
                lat[k] += asyncio.run(sequential(procs[k][1], hdr[k], rows[i:] + rows[:i], 50))
        for k in kinds:
            res[k]["p50_ms"] = [pct(lat[k], 50)]
            res[k]["p99_ms"] = [pct(lat[k], 99)]
        def batch_sizes(k: str) -> dict[int, int]:
            r = httpx.get(f"{procs[k][1]}/admin/stats", headers={"Authorization": f"Bearer {stat_keys[k]}"}, timeout=30)
            r.raise_for_status()
            return {int(n): c for n, c in r.json()["audit"]["batch_sizes"].items()}

        before = {k: batch_sizes(k) for k in ("gateway", "gateway_normal")}
        # throughput: short windows, alternating servers, ``rounds`` times
        for rnd in range(args.rounds):
            for k in (kinds if rnd % 2 == 0 else kinds[::-1]):
                rps, clat = asyncio.run(load(procs[k][1], hdr[k], rows, args.seconds, args.concurrency))
                r = res[k]
                r.setdefault("rps", []).append(rps)
                r.setdefault("loaded_p50_ms", []).append(pct(clat, 50))
                r.setdefault("loaded_p99_ms", []).append(pct(clat, 99))
                print(f"round {rnd} {k:14s} {rps} req/s (c={args.concurrency}, p50 {r['loaded_p50_ms'][-1]:.1f} ms, "
                      f"p99 {r['loaded_p99_ms'][-1]:.1f} ms)", flush=True)
        audit_batches = {}
        for k in ("gateway", "gateway_normal"):  # records per committed transaction during the throughput windows
            after = batch_sizes(k)
            diff = {n: after.get(n, 0) - before[k].get(n, 0) for n in sorted(after)}
            diff = {n: c for n, c in diff.items() if c > 0}
            n_tx, n_rec = sum(diff.values()), sum(n * c for n, c in diff.items())
            audit_batches[k] = {"transactions": n_tx, "records": n_rec,
                                "mean_records_per_commit": round(n_rec / max(n_tx, 1), 2), "histogram": diff}
            print(f"audit group commit {k:14s} {audit_batches[k]['mean_records_per_commit']} records/commit "
                  f"over {n_tx} commits", flush=True)
        for k in kinds:
            print(f"sequential {k:14s} p50 {res[k]['p50_ms'][0]:.2f} ms  p99 {res[k]['p99_ms'][0]:.2f} ms", flush=True)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    ratios = [g / b for g, b in zip(res["gateway"]["rps"], res["bare"]["rps"])]
    ratios_n = [g / b for g, b in zip(res["gateway_normal"]["rps"], res["bare"]["rps"])]
    before = {}
    for k in gateways[2:]:
        before[f"throughput_ratio_{k}"] = round(float(np.median(
            [g / b for g, b in zip(res[k]["rps"], res["bare"]["rps"])])), 3)
        before[f"p50_overhead_ms_{k}"] = round(float(np.median(res[k]["p50_ms"]) - np.median(res["bare"]["p50_ms"])), 3)
    med = {k: {m: float(np.median(v)) for m, v in r.items()} for k, r in res.items()}
    summary = {
        **med,
        "throughput_ratio": round(float(np.median(ratios)), 3),
        "p50_overhead_ms": round(med["gateway"]["p50_ms"] - med["bare"]["p50_ms"], 3),
        "throughput_ratio_normal": round(float(np.median(ratios_n)), 3),
        "p50_overhead_ms_normal": round(med["gateway_normal"]["p50_ms"] - med["bare"]["p50_ms"], 3),
        **before,
        "components_us": comp, "audit_group_commit": audit_batches, "rounds": res, "concurrency": args.concurrency, "seconds": args.seconds,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_at_end": os.getloadavg()},
        "versions": versions(),
    }
    print(json.dumps({k: v for k, v in summary.items() if k not in ("rounds",)}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
