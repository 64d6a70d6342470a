"""Extraction detection benchmark (issue 22 A.6): attack family x detector -> queries until alert and the
thief's surrogate fidelity at that point; honest traffic patterns -> false alarms.

Offline: scikit-learn's bundled breast-cancer set, the README's logistic regression, the gateway's monitors
fed directly (the same ``Monitor.update`` the gateway's monitor thread calls). ART's KnockoffNets (random
and adaptive sampling) run when ``adversarial-robustness-toolbox`` is installed.

    .venv/bin/python benchmarks/extraction/bench.py                 # 3 seeds, 1,500 queries, 20 honest streams
    .venv/bin/python benchmarks/extraction/bench.py --seeds 1 --budget 600 --honest 5   # quick look

Writes ``results.json`` next to this file (``--out`` to change) and prints the Markdown tables of the README.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.serve.monitors.base import Alert, Batch
from modelshield.serve.monitors.extraction import CoverageMonitor, PradaMonitor
from modelshield.serve.monitors.extraction_aggregate import SIGNALS, SignalMonitor
from modelshield.serve.monitors.extraction_eval import (
    ATTACKS,
    HONEST,
    Batches,
    Scenario,
    breast_cancer_scenario,
    fidelity,
)

OUTPUTS = ("proba", "rounded", "labels")
DETECTORS = ("coverage", "prada", *(f"signals.{s}" for s in SIGNALS), "signals (any)")


def art_knockoff(strategy: str) -> Any:
    """ART's KnockoffNets as a family: the rows ART queries, replayed through the monitors."""
    from art.attacks.extraction import KnockoffNets
    from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression
    from sklearn.linear_model import LogisticRegression

    class Logged(LogisticRegression):
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            self.log.append(np.array(X, dtype=np.float64))
            return super().predict_proba(X)

    class Thief(LogisticRegression):  # ART fits per query batch, sometimes with one class: keep everything seen
        def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None, **kw: Any) -> Thief:
            y = np.asarray(y).argmax(1) if np.ndim(y) == 2 else np.asarray(y)
            self.X_ = np.vstack([getattr(self, "X_", np.zeros((0, X.shape[1]))), X])
            self.y_ = np.concatenate([getattr(self, "y_", np.zeros(0, dtype=int)), y])
            if len(np.unique(self.y_)) > 1:
                return super().fit(self.X_, self.y_)
            self.classes_, self.coef_ = np.array([0, 1]), np.zeros((1, X.shape[1]))
            self.intercept_ = np.array([1.0 if self.y_[0] == 1 else -1.0])
            return self

    def family(sc: Scenario, rng: np.random.Generator, budget: int) -> Batches:
        v = Logged(max_iter=500)
        v.log = []
        v.fit(sc.X_ref, sc.label(sc.X_ref))
        victim = ScikitlearnLogisticRegression(v)
        n = min(budget, len(sc.seeds)) if strategy == "random" else budget
        att = KnockoffNets(classifier=victim, batch_size_fit=10 if strategy == "random" else 1,
                           batch_size_query=10 if strategy == "random" else 1, nb_epochs=1, nb_stolen=n,
                           sampling_strategy=strategy, reward="all", verbose=False)
        np.random.seed(int(rng.integers(2**31)))  # ART samples with the global NumPy generator
        kw = {"y": np.eye(2)[sc.label(sc.seeds)]} if strategy == "adaptive" else {}
        att.extract(sc.seeds.astype(np.float32), thieved_classifier=ScikitlearnLogisticRegression(Thief(max_iter=500)),
                    **kw)
        rows = np.vstack(v.log)[:budget]
        return [("thief", rows[i: i + 10]) for i in range(0, len(rows), 10)]

    return family


def detectors(sc: Scenario, grouped: bool) -> list[Any]:
    P = sc.proba(sc.X_ref)
    group_of = (lambda k: "owner" if k.startswith("sybil-") else None) if grouped else None
    return [SignalMonitor(sc.X_ref, P, group_of=group_of), CoverageMonitor(sc.X_ref, P),
            PradaMonitor(sc.X_ref, predict=sc.proba)]


def _label(a: Alert) -> str:
    if a.monitor == "extraction.signals":
        return f"signals.{a.data.get('signal')}"
    return a.monitor.split(".", 1)[1]


def run_stream(sc: Scenario, batches: Batches, grouped: bool, is_thief: Any) -> tuple[dict[str, int], int]:
    """First alert (rows sent) per detector that names the thief (a key, its group, or all traffic)."""
    mons = detectors(sc, grouped)
    first: dict[str, int] = {}
    sent = 0
    for t, (key, rows) in enumerate(batches):
        sent += len(rows)
        b = Batch(X=rows, proba=sc.proba(rows), key_id=key, time=float(t))
        for m in mons:
            for a in m.update(b):
                if a.key_id is not None and not is_thief(a.key_id):
                    continue
                first.setdefault(_label(a), sent)
                if a.monitor == "extraction.signals":
                    first.setdefault("signals (any)", sent)
    return first, sent


def attacks(args: argparse.Namespace) -> list[dict[str, Any]]:
    fams: dict[str, Any] = dict(ATTACKS)
    try:
        fams["art_knockoff_random"] = art_knockoff("random")
        fams["art_knockoff_adaptive"] = art_knockoff("adaptive")
    except ImportError as exc:
        print(f"ART not available ({exc}); its KnockoffNets rows are skipped", file=sys.stderr)
    out = []
    for name, fam in fams.items():
        variants = [("sybil_split (owner group)", True), ("sybil_split (no group: all traffic)", False)] \
            if name == "sybil_split" else [(name, False)]
        for label, grouped in variants:
            for seed in range(args.seeds):
                sc = breast_cancer_scenario(seed=seed)
                rng = np.random.default_rng(seed)
                budget = {"sybil_split": 900, "jacobian": min(args.budget, 600),  # JbDA refits per batch,
                          "art_knockoff_adaptive": min(args.budget, 300)}.get(name, args.budget)  # ART: per query
                t0 = time.perf_counter()
                batches = fam(sc, rng, budget)
                is_thief = (lambda k: k.startswith("sybil-")) if name == "sybil_split" else (lambda k: k == "thief")
                first, sent = run_stream(sc, batches, grouped, is_thief)
                Q = np.vstack([r for _, r in batches])
                row: dict[str, Any] = {"family": label, "seed": seed, "queries": sent, "first_alert": first,
                                       "fidelity_final": {o: fidelity(sc, Q, o) for o in OUTPUTS},
                                       "fidelity_at_alert": {}}
                for det, n in first.items():
                    row["fidelity_at_alert"][det] = {o: fidelity(sc, Q[:n], o) for o in OUTPUTS}
                row["seconds"] = round(time.perf_counter() - t0, 2)
                out.append(row)
                print(f"{label} seed {seed}: {first} ({row['seconds']}s)", file=sys.stderr)
    return out


def honest(args: argparse.Namespace) -> list[dict[str, Any]]:
    sc = breast_cancer_scenario(seed=0)
    out = []
    for name, fam in HONEST.items():
        flagged: dict[str, int] = {d: 0 for d in DETECTORS}
        for s in range(args.honest):
            rng = np.random.default_rng(1000 + s)
            first, _ = run_stream(sc, fam(sc, rng, args.honest_queries), False, lambda k: True)
            for d in first:
                flagged[d] += 1
        out.append({"family": name, "streams": args.honest, "queries": args.honest_queries, "flagged": flagged})
        print(f"honest {name}: {flagged}", file=sys.stderr)
    return out


def baseline(args: argparse.Namespace) -> dict[str, Any]:
    """What the thief's own natural rows give before any attack query."""
    res = {o: [] for o in OUTPUTS}
    for seed in range(args.seeds):
        sc = breast_cancer_scenario(seed=seed)
        for o in OUTPUTS:
            res[o].append(fidelity(sc, sc.seeds, o))
    return {"rows": 85, **{o: float(np.mean(v)) for o, v in res.items()}}


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def markdown(res: dict[str, Any]) -> str:
    lines = ["| attack family | detector | alerted (seeds) | queries until alert (median) | fidelity at alert: "
             "proba / rounded / labels | fidelity at full budget: proba / rounded / labels |",
             "|---|---|---|---|---|---|"]
    fams: dict[str, list[dict[str, Any]]] = {}
    for r in res["attacks"]:
        fams.setdefault(r["family"], []).append(r)
    for fam, rows in fams.items():
        final = " / ".join(_fmt(float(np.mean([r["fidelity_final"][o] for r in rows]))) for o in OUTPUTS)
        for det in DETECTORS:
            hits = [r for r in rows if det in r["first_alert"]]
            if not hits:
                lines.append(f"| {fam} ({rows[0]['queries']} q) | {det} | 0/{len(rows)} | never | — | {final} |")
                continue
            med = int(np.median([r["first_alert"][det] for r in hits]))
            at = " / ".join(_fmt(float(np.mean([r["fidelity_at_alert"][det][o] for r in hits]))) for o in OUTPUTS)
            lines.append(f"| {fam} ({rows[0]['queries']} q) | {det} | {len(hits)}/{len(rows)} | {med} | {at} | {final} |")
    lines += ["", "| honest pattern | streams x queries | " + " | ".join(DETECTORS) + " |",
              "|---|---|" + "---|" * len(DETECTORS)]
    for h in res["honest"]:
        lines.append(f"| {h['family']} | {h['streams']} x {h['queries']} | "
                     + " | ".join(f"{h['flagged'][d]}/{h['streams']}" for d in DETECTORS) + " |")
    b = res["baseline"]
    lines += ["", f"The thief's own {b['rows']} natural rows alone: fidelity {b['proba']:.3f} (proba) / "
                  f"{b['rounded']:.3f} (rounded) / {b['labels']:.3f} (labels)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=1500)
    ap.add_argument("--honest", type=int, default=20, help="honest streams per pattern")
    ap.add_argument("--honest-queries", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    if args.seeds < 1 or args.budget < 100 or args.honest < 1 or args.honest_queries < 10:
        ap.error("--seeds >= 1, --budget >= 100, --honest >= 1, --honest-queries >= 10")
    res = {"baseline": baseline(args), "attacks": attacks(args), "honest": honest(args),
           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    args.out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(markdown(res))


if __name__ == "__main__":
    main()
