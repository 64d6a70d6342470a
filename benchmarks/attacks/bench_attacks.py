"""Attack benchmark: modelshield vs ART, torchattacks and a plain torch PGD loop, in one run.

    .venv/bin/python benchmarks/attacks/bench_attacks.py [--quick] [--only pgd,ensemble,square,hsj]
        [--json benchmarks/attacks/results.json]

Models are trained here on scikit-learn's bundled 8x8 digits (pixels scaled to [0, 1]): an MLP
(64-128-10) and a small CNN; a 100-tree RandomForest for HopSkipJump. Everything runs with
``torch.set_num_threads(1)``. Each row: wall seconds and robust accuracy (or success rate and
median perturbation for HopSkipJump) on the same samples at the same eps.

Peers come from the ``bench`` extra: ``pip install adversarial-robustness-toolbox multiprocess`` and
``pip install --no-deps torchattacks``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

torch.set_num_threads(1)

from modelshield.attacks import PGD, Ensemble, HopSkipJump, Square, default_ensemble  # noqa: E402
from modelshield.attacks.threat import ThreatModel  # noqa: E402
from modelshield.models.sklearn import SklearnModel  # noqa: E402
from modelshield.models.torch import TorchModel  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from paired import fmt_ratio, paired  # noqa: E402

EPS = 0.1
ROWS: list[dict[str, Any]] = []
PAIRED: dict[str, Any] = {}
#: wall clock, or the thread's CPU time (every tool runs in this one thread with one torch thread): CPU time
#: leaves out the time spent waiting for a core on a loaded machine
TIMERS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}  # raw paired measurements (per-round seconds and ratios, load averages)


def log(**row: Any) -> None:
    ROWS.append(row)
    cells = " | ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
    print(cells, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=450, random_state=0, stratify=y)


def train(net: torch.nn.Module, X: np.ndarray, y: np.ndarray, epochs: int = 60) -> torch.nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 128):
            idx = perm[i : i + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


def models(Xtr: np.ndarray, ytr: np.ndarray) -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    cnn = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 16, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    return {"mlp": (train(mlp, Xtr, ytr), (64,)), "cnn": (train(cnn, Xtr, ytr, epochs=30), (64,))}


def acc(net: torch.nn.Module, X: Any, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((net(torch.as_tensor(np.asarray(X, dtype=np.float32))).argmax(1).numpy() == y).mean())


def plain_pgd(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int) -> torch.Tensor:
    """The floor: the 10-line textbook PGD loop (random start, sign step, clip)."""
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(net(xa), y)
        (g,) = torch.autograd.grad(loss, xa)
        xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    return xa.detach()


def bench_pgd(nets: dict, X: np.ndarray, y: np.ndarray, peers: dict, rounds: int, timer: str = "wall") -> None:
    """PGD-20, L-inf eps 0.1, one random start, equal work: every tool runs 20 forward + backward passes
    on all 450 images and is *scored* (one forward pass turns ``x_adv`` into a robust accuracy; modelshield's
    ``generate`` does that itself, and also predicts the clean inputs). Paired helper: warm-up, ``rounds``
    interleaved rounds with alternating order, each tool's time divided by the plain loop's of the same
    round, median [min-max]. On the MLP a round runs each tool 8 times (a call is ~15-50 ms: longer timed
    spans average out the scheduler on a loaded machine). modelshield's early stop does less work (rows
    leave the batch once adversarial), so it is a separate line: its time / ``early_stop=False``'s."""
    steps, alpha = 20, 2.5 * EPS / 20
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for name, (net, _) in nets.items():
        model = TorchModel(net, input_shape=(64,))
        tm = ThreatModel.image(eps=EPS, steps=steps)
        reps = 8 if name == "mlp" else 1
        tools: dict[str, Callable[[], float]] = {
            "plain torch loop": lambda net=net: acc(net, plain_pgd(net, xt, yt, EPS, alpha, steps), y)}
        if "torchattacks" in peers:
            ta = peers["torchattacks"].PGD(net, eps=EPS, alpha=alpha, steps=steps, random_start=True)
            tools["torchattacks"] = lambda ta=ta, net=net: acc(net, ta(xt, yt), y)
        if "art" in peers:
            clf = peers["art"].classifier(net, (64,))
            pgd = peers["art"].PGD(clf, norm=np.inf, eps=EPS, eps_step=alpha, max_iter=steps, num_random_init=1,
                                   batch_size=len(X), verbose=False)
            tools["ART"] = lambda pgd=pgd, net=net: acc(net, pgd.generate(X, y=y), y)
        atk = PGD(threat=tm, early_stop=False)
        tools["modelshield (early_stop=False)"] = lambda atk=atk, model=model: atk.generate(model, X, y).robust_accuracy
        early = PGD(threat=tm, early_stop=True)
        tools["modelshield (early stop)"] = lambda atk=early, model=model: atk.generate(model, X, y).robust_accuracy

        def repeated(fn: Callable[[], float], k: int = reps) -> Callable[[], float]:
            def run() -> float:
                for _ in range(k):
                    out = fn()
                return out
            return run

        torch.manual_seed(0)
        res = paired({k: repeated(f) for k, f in tools.items()}, baseline="plain torch loop",
                     rounds=rounds if name == "mlp" else max(5, rounds // 2), timer=TIMERS[timer])
        PAIRED[f"pgd-{name}-{timer}"] = res.to_dict()
        for label in tools:
            s = res.summary(label)
            log(bench="pgd", model=name, timer=timer, tool=label, seconds=s["median_s"] / reps, vs_plain=fmt_ratio(s),
                rounds=s["rounds"], robust_accuracy=float(res.outputs[label]), load_before=str(res.load_before),
                load_after=str(res.load_after))
        saving = [e / f for e, f in zip(res.seconds["modelshield (early stop)"],
                                        res.seconds["modelshield (early_stop=False)"], strict=True)]
        log(bench="pgd", model=name, timer=timer, tool="early-stop saving (early stop / early_stop=False, same rounds)",
            ratio=fmt_ratio({"median": float(np.median(saving)), "min": min(saving), "max": max(saving)}))


def bench_ensemble(nets: dict, X: np.ndarray, y: np.ndarray, peers: dict, n: int, with_square: bool) -> None:
    X, y = X[:n], y[:n]
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for name, (net, _) in nets.items():
        model = TorchModel(net, input_shape=(64,))
        tm = ThreatModel.image(eps=EPS, steps=100, query_budget=5000)
        ens = Ensemble(threat=tm)  # default members: APGD-CE, APGD-DLR, APGD-T (3 targets)
        r, t = timed(lambda ens=ens, model=model: ens.generate(model, X, y))
        log(bench="autoattack", model=name, tool="modelshield apgd (APGD-CE, APGD-DLR, APGD-T; 100 steps)", n=n,
            seconds=t, robust_accuracy=r.robust_accuracy)
        if with_square:
            ens = Ensemble(attacks=[*default_ensemble(tm), Square(threat=tm, seed=3)])
            r, t = timed(lambda ens=ens, model=model: ens.generate(model, X, y))
            log(bench="autoattack", model=name, tool="modelshield apgd + Square-5000", n=n,
                seconds=t, robust_accuracy=r.robust_accuracy)
        if "torchattacks" in peers:  # torchattacks wants image batches (n, 1, 8, 8)
            img = torch.nn.Sequential(torch.nn.Flatten(), net).eval()
            aa = peers["torchattacks"].AutoAttack(img, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=0)
            xa, t = timed(lambda aa=aa, img=img: aa(xt.reshape(-1, 1, 8, 8), yt))
            log(bench="autoattack", model=name, tool="torchattacks AutoAttack (standard)", n=n, seconds=t,
                robust_accuracy=acc(net, xa.reshape(n, 64), y))


class _Rows(torch.nn.Module):
    """Records the batch size of every forward call (the query pattern of a Square run)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        return self.net(x)


def replay(net: torch.nn.Module, x: torch.Tensor, calls: list[int]) -> None:
    """The forward floor of an attack run: exactly its forward calls (same batch sizes), nothing else."""
    with torch.no_grad():
        for m in calls:
            net(x[:m])


def bench_square(nets: dict, X: np.ndarray, y: np.ndarray, peers: dict, n: int, queries: int, repeat: int) -> None:
    """Square, L-inf eps 0.1, ``queries`` per image. Each tool runs once through a row-counting
    wrapper (untimed) to record its forward calls; then the tools run interleaved ``repeat`` rounds
    (paired rounds, median [min-max]), and each tool's recorded calls are replayed as a plain forward loop: its
    forward floor, i.e. what the same queries cost with zero attack overhead."""
    X, y = X[:n], y[:n]
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    x4 = xt.reshape(-1, 1, 8, 8)
    for name, (net, _) in nets.items():
        img = torch.nn.Sequential(torch.nn.Flatten(), net).eval()
        tm = ThreatModel.image(eps=EPS, query_budget=queries)

        def make(tool: str, module: torch.nn.Module, tm: ThreatModel = tm) -> Callable[[], Any] | None:
            if tool == "modelshield":
                model = TorchModel(module, input_shape=(1, 8, 8))  # image batches: square windows
                return lambda: Square(threat=tm).generate(model, x4.numpy(), y)
            if tool == "torchattacks" and "torchattacks" in peers:
                sq = peers["torchattacks"].Square(module, norm="Linf", eps=EPS, n_queries=queries, n_restarts=1,
                                                  seed=0)
                return lambda: sq(x4, yt)
            if tool == "ART" and "art" in peers:
                clf = peers["art"].classifier(module, (1, 8, 8))
                sq = peers["art"].Square(clf, norm=np.inf, eps=EPS, max_iter=queries, nb_restarts=1, p_init=0.8,
                                         batch_size=n, verbose=False)
                return lambda: sq.generate(x4.numpy(), y=y)
            return None

        def robust(out: Any, net: torch.nn.Module = net) -> float:
            if hasattr(out, "robust_accuracy"):
                return float(out.robust_accuracy)
            return acc(net, np.asarray(out).reshape(n, 64), y)

        tools = {t: fn for t in ("modelshield", "torchattacks", "ART") if (fn := make(t, img)) is not None}
        calls: dict[str, list[int]] = {}
        for tool in tools:
            rows = _Rows(img).eval()
            fn = make(tool, rows)
            assert fn is not None
            np.random.seed(0)
            fn()
            calls[tool] = rows.calls
        # paired rounds: each tool, and each tool's forward floor (its recorded calls replayed), per round
        cases: dict[str, Callable[[], Any]] = {}
        for tool, fn in tools.items():
            cases[tool] = (lambda fn=fn: (np.random.seed(0), fn())[1])
            cases[f"{tool} floor"] = (lambda c=calls[tool], img=img: replay(img, x4, c))
        base = "modelshield" if "modelshield" in tools else next(iter(tools))
        res = paired(cases, baseline=base, rounds=max(repeat, 5))
        PAIRED[f"square-{name}"] = res.to_dict()
        for tool in tools:
            s = res.summary(tool)
            log(bench="square", model=name, tool=tool, n=n, queries=queries, seconds=s["median_s"],
                robust_accuracy=robust(res.outputs[tool]), forward_calls=len(calls[tool]),
                rows_forwarded=sum(calls[tool]), forward_floor_seconds=res.summary(f"{tool} floor")["median_s"],
                vs_modelshield=fmt_ratio(s), rounds=res.summary(tool)["rounds"])
        if "ART" in tools and "modelshield" in tools:
            r = [a / f for a, f in zip(res.seconds["ART"], res.seconds["modelshield floor"], strict=True)]
            log(bench="square", model=name, tool="bound", note="ART seconds / modelshield's forward floor (paired)",
                best_possible_speedup_vs_art=fmt_ratio({"median": float(np.median(r)), "min": min(r), "max": max(r)}))


class _Counting:
    """Wrap a scikit-learn model to count rows queried (for ART's HopSkipJump)."""

    def __init__(self, est: Any) -> None:
        self.est, self.rows = est, 0

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.rows += len(X)
        return self.est.predict_proba(X)


def bench_hsj(Xtr: np.ndarray, ytr: np.ndarray, X: np.ndarray, y: np.ndarray, peers: dict, n: int,
              skip_art: bool = False) -> None:
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(Xtr, ytr)
    X, y = X[:n], y[:n]
    ok = rf.predict(X) == y
    model = SklearnModel(rf)
    res = None
    if "art" in peers and not skip_art:
        from art.estimators.classification import SklearnClassifier

        clf = SklearnClassifier(model=rf, clip_values=(0.0, 1.0))
        hsj = peers["art"].HSJ(clf, norm=2, max_iter=50, max_eval=10000, init_eval=100, init_size=100,
                               batch_size=64, verbose=False)
        counter = _Counting(rf)
        clf._model = counter  # count ART's queries
        np.random.seed(0)
        xa, t = timed(lambda: hsj.generate(X[ok]))
        clf._model = rf
        adv = rf.predict(xa) != y[ok]
        dist = np.linalg.norm((xa - X[ok]).reshape(ok.sum(), -1), axis=1)
        res = float(np.median(dist[adv])) if adv.any() else float("nan")
        log(bench="hsj", model="rf100", tool="ART", n=n, seconds=t, success_rate=float(adv.mean()),
            median_l2=res, queries_per_sample=counter.rows / max(ok.sum(), 1))
    for budget, k in ((5000, 1), (5000, 8), (25000, 8)):
        tm = ThreatModel.image(norm="2", eps=1e-6, query_budget=budget)
        hs = HopSkipJump(threat=tm, max_iter=100, init_evals=100, max_evals=10000, stop_at_eps=False,
                         search_points=k)
        r, t = timed(lambda hs=hs: hs.generate(model, X, y))
        md = r.min_distance[r.clean_correct]
        found = np.isfinite(md)
        log(bench="hsj", model="rf100", tool=f"modelshield (budget {budget}, search_points {k})", n=n, seconds=t,
            success_rate=float(found.mean()), median_l2=float(np.median(md[found])) if found.any() else float("nan"),
            queries_per_sample=float(r.queries[r.clean_correct].mean()))


def load_peers() -> dict[str, Any]:
    peers: dict[str, Any] = {}
    try:
        import torchattacks

        peers["torchattacks"] = torchattacks
    except Exception as exc:
        print(f"torchattacks unavailable: {exc}", file=sys.stderr)
    try:
        import art
        from art.attacks.evasion import HopSkipJump as ArtHSJ
        from art.attacks.evasion import ProjectedGradientDescent, SquareAttack
        from art.estimators.classification import PyTorchClassifier

        class _Art:
            version = art.__version__
            PGD = ProjectedGradientDescent
            Square = SquareAttack
            HSJ = ArtHSJ

            @staticmethod
            def classifier(net: torch.nn.Module, shape: tuple[int, ...]) -> Any:
                return PyTorchClassifier(model=net, loss=torch.nn.CrossEntropyLoss(), input_shape=shape,
                                         nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")

        peers["art"] = _Art
    except Exception as exc:
        print(f"ART unavailable: {exc}", file=sys.stderr)
    return peers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer samples and queries (a smoke run)")
    ap.add_argument("--only", default="pgd,ensemble,square,hsj")
    ap.add_argument("--json", default=None)
    ap.add_argument("--with-square", action="store_true", help="also time the ensemble plus Square-5000")
    ap.add_argument("--timer", default="wall", help="pgd timing: wall, cpu or wall,cpu (both, one after the other)")
    ap.add_argument("--skip-art-hsj", action="store_true", help="skip ART's (slow) HopSkipJump")
    args = ap.parse_args()
    only = set(args.only.split(","))
    peers = load_peers()
    Xtr, Xte, ytr, yte = data()
    nets = models(Xtr, ytr)
    for name, (net, _) in nets.items():
        log(bench="clean", model=name, tool="-", accuracy=acc(net, Xte, yte))
    if "pgd" in only:
        for timer in args.timer.split(","):
            bench_pgd(nets, Xte, yte, peers, rounds=5 if args.quick else 15, timer=timer)
    if "ensemble" in only:
        bench_ensemble(nets, Xte, yte, peers, n=30 if args.quick else 100, with_square=args.with_square)
    if "square" in only:
        bench_square(nets, Xte, yte, peers, n=50 if args.quick else 100, queries=100 if args.quick else 300,
                     repeat=1 if args.quick else 3)
    if "hsj" in only:
        bench_hsj(Xtr, ytr, Xte, yte, peers, n=10 if args.quick else 20, skip_art=args.skip_art_hsj)
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    if "art" in peers:
        versions["adversarial-robustness-toolbox"] = peers["art"].version
    if "torchattacks" in peers:
        versions["torchattacks"] = peers["torchattacks"].__version__
    print(json.dumps(versions))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"versions": versions, "rows": ROWS, "paired": PAIRED}, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
