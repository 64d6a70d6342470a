"""DP-SGD step time: non-private SGD vs modelshield's fast path vs Opacus (ghost, hooks), paired.

Same model, data (synthetic), expected batch (256) and optimizer on every side, one torch thread.
Every DP method uses Poisson sampling at q = 256 / n, clipping C = 1 and noise sigma = 1, so the
privacy accounting is identical; only the per-sample-gradient machinery differs. Timing uses the
paired helper (``benchmarks/paired.py``): a warm-up round, then ``--rounds`` rounds in which every
method runs ``--steps`` steps once, the order alternating; each method's time is divided by the
non-private time of the *same* round and reported as median [min-max] with the load average.

Tables:

* ``mlp`` — MLP 50-256-256-10 on 100k x 50 rows, plain SGD: non-private, the fast path
  (``_train_fast``: what ``train_dp_classifier(mode="fast")`` runs per step), Opacus ghost and hooks,
  and two floors: ``nonprivate+noise`` (the non-private step plus drawing and adding the Gaussian
  noise, which any DP-SGD must do) and ``nonprivate+norms`` (plus the per-sample gradient norms too).
* ``mlp-momentum`` — the same with SGD momentum 0.9 on both sides (what ``optimizer="sgd"`` fixes).
* ``cnn`` — a small CNN (two 3x3 convolutions) on 16x16 images: the fast path covers linear layers
  only, so ``train_dp_classifier`` runs Opacus here (``mode="auto"`` = hooks, or ``mode="ghost"``).

    .venv/bin/python benchmarks/privacy/bench_dp.py --rounds 11 --steps 40 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelshield.harden.dp import _train_fast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paired import fmt_ratio, paired

LR = 0.05


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


def make_images(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, 16, 16, generator=g)
    y = (X.flatten(1) @ torch.randn(256, k, generator=g)).argmax(1)
    return X, y


def make_cnn(k: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, k))


Runner = Callable[[], None]


def nonprivate(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int, batch: int, momentum: float,
               extra: str = "") -> Runner:
    """Plain mini-batch SGD on shuffled rows (``extra``: also draw and add the DP noise, and the norms)."""
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=momentum)
    params = list(net.parameters())
    sizes = [p.numel() for p in params]
    flat = torch.empty(sum(sizes))
    views = [v.view(p.shape) for p, v in zip(params, flat.split(sizes), strict=True)]
    gen = torch.Generator().manual_seed(1)
    n = len(X)
    perm = torch.randperm(n, generator=gen)
    pos = [0]
    if extra == "norms":
        return _with_norms(net, X, y, steps, batch, opt, params, flat, views, gen, perm)

    def run() -> None:
        for _ in range(steps):
            s = pos[0] % (n - batch)
            pos[0] += batch
            idx = perm[s : s + batch]
            opt.zero_grad(set_to_none=True)
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            if extra:
                flat.normal_(generator=gen)
                with torch.no_grad():
                    for p, v in zip(params, views, strict=True):
                        p.grad.add_(v, alpha=1.0 / batch)
            opt.step()

    return run


def _with_norms(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int, batch: int, opt: Any,
                params: list[torch.Tensor], flat: torch.Tensor, views: list[torch.Tensor], gen: torch.Generator,
                perm: torch.Tensor) -> Runner:
    """Non-private step + noise + the per-sample gradient norms (recorded with hooks on the activations and
    output gradients, ``||g_i|| * sqrt(||a_i||^2 + 1)`` per linear layer) but no clipping: the norm floor."""
    layers = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    acts: list[torch.Tensor] = []
    grads: list[torch.Tensor] = []

    def fwd_hook(m: Any, inp: Any, out: torch.Tensor) -> None:
        acts.append(inp[0])
        out.register_hook(grads.append)

    for m in layers:
        m.register_forward_hook(fwd_hook)
    n = len(X)
    pos = [0]
    vn = torch.linalg.vector_norm

    def run() -> None:
        for _ in range(steps):
            s = pos[0] % (n - batch)
            pos[0] += batch
            idx = perm[s : s + batch]
            opt.zero_grad(set_to_none=True)
            acts.clear()
            grads.clear()
            torch.nn.functional.cross_entropy(net(X.index_select(0, idx)), y.index_select(0, idx)).backward()
            with torch.no_grad():
                sq = sum(vn(g, dim=1).square_() * (vn(a, dim=1).square_() + 1.0)
                         for a, g in zip(acts, reversed(grads), strict=True))
                sq.sqrt_()  # type: ignore[union-attr]
                flat.normal_(generator=gen)
                for p, v in zip(params, views, strict=True):
                    p.grad.add_(v, alpha=1.0 / batch)
            opt.step()

    return run


def fast(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int, batch: int, momentum: float) -> Runner:
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=momentum)
    gen = torch.Generator().manual_seed(2)
    rng = np.random.default_rng(3)

    def run() -> None:
        _train_fast(net, X, y, q=batch / len(X), steps=steps, sigma=1.0, max_norm=1.0, opt=opt, gen=gen, rng=rng)
        net.train()

    return run


def opacus(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int, batch: int, momentum: float,
           mode: str) -> Runner:
    from opacus import PrivacyEngine

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=momentum)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch)
    crit = torch.nn.CrossEntropyLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="rdp")
        made = engine.make_private(module=net, optimizer=opt, data_loader=loader, noise_multiplier=1.0,
                                   max_grad_norm=1.0, poisson_sampling=True, grad_sample_mode=mode, criterion=crit)
    if mode == "ghost":
        gsm, dpo, crit, dl = made
    else:
        gsm, dpo, dl = made
    warnings.filterwarnings("ignore")

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from dl

    it = batches()

    def run() -> None:
        for _ in range(steps):
            xb, yb = next(it)
            dpo.zero_grad()
            crit(gsm(xb), yb).backward()
            dpo.step()

    return run


TIMERS = {"wall": time.perf_counter, "cpu": time.thread_time}
TIMER = ["wall"]


def table(name: str, cases: dict[str, Runner], rounds: int, steps: int, steps_per_epoch: float) -> dict[str, Any]:
    res = paired(cases, baseline="nonprivate", rounds=rounds, timer=TIMERS[TIMER[0]])
    print(f"\n## {name}: {rounds} paired rounds of {steps} steps, {TIMER[0]} time; load average before "
          f"{res.load_before}, after {res.load_after}")
    print("| method | ms / step (median) | s / epoch | vs non-private, median [min-max] |")
    print("|---|---:|---:|---:|")
    for c in res.order:
        s = res.summary(c)
        per_step = s["median_s"] / steps
        print(f"| {c} | {per_step * 1e3:.2f} | {per_step * steps_per_epoch:.2f} | {fmt_ratio(s)} |")
    return res.to_dict()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40, help="steps per method per round")
    ap.add_argument("--rounds", type=int, default=11, help="paired rounds (>= 5)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tables", default="mlp,mlp-momentum,cnn")
    ap.add_argument("--no-hooks", action="store_true", help="leave out Opacus hooks (40-60x slower)")
    ap.add_argument("--timer", choices=sorted(TIMERS), default="wall",
                    help="wall clock, or the thread's CPU time (excludes time spent waiting for a core on a loaded "
                         "machine; every method runs in this one thread)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    TIMER[0] = args.timer
    torch.set_num_threads(args.threads)
    X, y = make_data(args.rows, args.features, args.classes)
    d, k, b, st = args.features, args.classes, args.batch, args.steps
    out: dict[str, Any] = {"args": vars(args)}
    spe = args.rows / b
    for name in args.tables.split(","):
        if name in ("mlp", "mlp-momentum"):
            mom = 0.9 if name == "mlp-momentum" else 0.0
            cases = {"nonprivate": nonprivate(make_model(d, k), X, y, st, b, mom),
                     "nonprivate+noise": nonprivate(make_model(d, k), X, y, st, b, mom, extra="noise"),
                     "nonprivate+noise+norms": nonprivate(make_model(d, k), X, y, st, b, mom, extra="norms"),
                     "modelshield fast": fast(make_model(d, k), X, y, st, b, mom),
                     "opacus ghost": opacus(make_model(d, k), X, y, st, b, mom, "ghost")}
            out[name] = table(f"{name} (MLP {d}-256-256-{k}, {args.rows} rows, momentum {mom})", cases,
                              args.rounds, st, spe)
            if name == "mlp" and not args.no_hooks:  # its own paired table: a hooks round is 40x longer, and
                # the short cases above are timed closer together (better pairing) without it
                hooks = {"nonprivate": nonprivate(make_model(d, k), X, y, st, b, mom),
                         "opacus hooks": opacus(make_model(d, k), X, y, st, b, mom, "hooks")}
                out["mlp-hooks"] = table(f"mlp-hooks (same MLP, momentum {mom})", hooks, max(5, args.rounds // 2),
                                         st, spe)
        elif name == "cnn":
            Xi, yi = make_images(20_000, k)
            cases = {"nonprivate": nonprivate(make_cnn(k), Xi, yi, st, b, 0.0),
                     "nonprivate+noise": nonprivate(make_cnn(k), Xi, yi, st, b, 0.0, extra="noise"),
                     "opacus ghost": opacus(make_cnn(k), Xi, yi, st, b, 0.0, "ghost")}
            if not args.no_hooks:
                cases["opacus hooks"] = opacus(make_cnn(k), Xi, yi, st, b, 0.0, "hooks")
            out[name] = table("cnn (conv 1-8-16 + linear, 16x16 images, 20000 rows; fast path n/a: Opacus)", cases,
                              args.rounds, st, 20_000 / b)
        else:
            raise SystemExit(f"unknown table {name!r}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
