"""DP-SGD step time: non-private training vs modelshield's fast path vs Opacus (hooks, ghost).

Same model (MLP 50-256-256-10), same data (synthetic, 100k x 50 by default), same expected batch
(256), one thread. Every DP method uses Poisson sampling at q = 256 / n, clipping C = 1 and noise
sigma = 1, so the privacy accounting is identical; only the per-sample-gradient machinery differs.
Methods run interleaved (round robin) to spread machine-load noise evenly; seconds per epoch are
seconds per step x n / 256.

    .venv/bin/python benchmarks/privacy/bench_dp.py --steps 40 --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import numpy as np
import torch

from modelshield.harden.dp import _train_fast


def make_data(n: int, d: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    W = torch.randn(d, k, generator=g)
    y = (X @ W + 0.5 * torch.randn(n, k, generator=g)).argmax(1)
    return X, y


def make_model(d: int, k: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, k))


def run_nonprivate(X, y, steps: int, batch: int) -> float:
    net = make_model(X.shape[1], int(y.max()) + 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    n = len(X)
    g = torch.Generator().manual_seed(1)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=g)
    for s in range(steps):
        idx = perm[(s * batch) % (n - batch) : (s * batch) % (n - batch) + batch]
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def run_fast(X, y, steps: int, batch: int) -> float:
    net = make_model(X.shape[1], int(y.max()) + 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    t0 = time.perf_counter()
    _train_fast(net, X, y, q=batch / len(X), steps=steps, sigma=1.0, max_norm=1.0, opt=opt,
                gen=torch.Generator().manual_seed(2), rng=np.random.default_rng(3))
    return (time.perf_counter() - t0) / steps


def run_opacus(X, y, steps: int, batch: int, mode: str) -> float:
    from opacus import PrivacyEngine

    net = make_model(X.shape[1], int(y.max()) + 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="rdp")
        crit = torch.nn.CrossEntropyLoss()
        made = engine.make_private(module=net, optimizer=opt, data_loader=loader, noise_multiplier=1.0,
                                   max_grad_norm=1.0, poisson_sampling=True, grad_sample_mode=mode, criterion=crit)
    if mode == "ghost":
        gsm, dpo, crit, dl = made
    else:
        gsm, dpo, dl = made
    warnings.filterwarnings("ignore")
    it = iter(dl)
    t0 = time.perf_counter()
    for _ in range(steps):
        xb, yb = next(it)
        dpo.zero_grad()
        crit(gsm(xb), yb).backward()
        dpo.step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="nonprivate,fast,ghost,hooks")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X, y = make_data(args.rows, args.features, args.classes)
    methods = args.methods.split(",")
    fns = {
        "nonprivate": lambda s: run_nonprivate(X, y, s, args.batch),
        "fast": lambda s: run_fast(X, y, s, args.batch),
        "ghost": lambda s: run_opacus(X, y, s, args.batch, "ghost"),
        "hooks": lambda s: run_opacus(X, y, s, args.batch, "hooks"),
    }
    for m in methods:  # warm up (imports, allocator)
        fns[m](3)
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.rounds):
        for m in methods:
            times[m].append(fns[m](args.steps))
    steps_per_epoch = args.rows / args.batch
    base = min(times["nonprivate"]) if "nonprivate" in times else None
    rows = []
    for m in methods:
        best = min(times[m])
        rows.append({"method": m, "s_per_step": best, "s_per_epoch": best * steps_per_epoch,
                     "x_nonprivate": best / base if base else None, "all_s_per_step": times[m]})
        ratio = f"{best / base:5.2f}x" if base else ""
        print(f"{m:11s} {best * 1e3:8.2f} ms/step  {best * steps_per_epoch:7.2f} s/epoch  {ratio}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "torch": torch.__version__, "platform": platform.platform(),
                       "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
