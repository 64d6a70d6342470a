"""Workflows over the federated engine for the command line and the API: read a data set, validate every
option before training (neutral messages; the flag to fix rides in ``cli_hint``), run the simulation on a
backend (``engine``: in process; ``flower``: a Flower simulation, the ``fl`` extra), and shape the result
as the JSON document, the figures and the HTML section of ``modelshield fl simulate``."""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from modelshield.data.loaders import load_dataset
from modelshield.errors import MissingExtraError, UserError
from modelshield.findings import Figure, Series

from .simulate import ACCOUNTANT, ConfigError, FederatedConfig, FederatedPlan, SimulationResult, prepare, run

__all__ = ["BACKENDS", "FLAGS", "FederatedRun", "check_backend", "fl_figures", "fl_payload", "plan_from_file",
           "render_section", "run_plan", "threat_model"]

BACKENDS = ("engine", "flower")
#: FederatedConfig field -> the command-line flag that sets it (the ``cli_hint`` of a validation error)
FLAGS: dict[str, str] = {
    "clients": "--clients", "rounds": "--rounds", "partition": "--partition", "aggregator": "--aggregator",
    "group_size": "--secagg-group", "dropouts": "--secagg-dropouts", "fraction": "--fraction",
    "dp_noise": "--dp-noise", "clip": "--clip", "delta": "--delta", "malicious": "--malicious",
    "attack": "--attack", "model": "--model", "target": "--target", "backdoor_target": "--backdoor-target",
    "seed": "--seed", "local_epochs": "--local-epochs", "lr": "--lr", "batch_size": "--batch-size",
    "hidden": "--hidden", "test_size": "--test-size", "byzantine": "--malicious",
}


@dataclass(frozen=True)
class FederatedRun:
    """One finished run: its plan, result and backend (``seconds``: wall time of the rounds)."""

    plan: FederatedPlan
    result: SimulationResult
    backend: str
    seconds: float


def plan_from_file(data: str | Path, target: str, cfg: FederatedConfig) -> FederatedPlan:
    """Read ``data`` (CSV, Parquet or NPZ), hold out ``cfg.test_size`` and validate ``cfg`` against it."""
    ds = load_dataset(data, target=target)
    if ds.y is None:
        raise UserError(f"{data}: no label column", cli_hint="--target")
    if ds.X.ndim != 2:
        raise UserError(f"{data}: federated simulation needs tabular rows, got shape {ds.X.shape}")
    try:
        return prepare(ds.X, ds.y, cfg)
    except ConfigError as exc:
        exc.cli_hint = FLAGS.get(exc.option, exc.cli_hint)
        raise


def check_backend(backend: str) -> None:
    """``backend`` is known and, for ``flower``, flwr is installed (checked before any process starts)."""
    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}", cli_hint="--backend")
    if backend == "flower" and importlib.util.find_spec("flwr") is None:
        raise MissingExtraError("flwr", "fl", "the Flower simulation backend")


def run_plan(plan: FederatedPlan, backend: str = "engine") -> FederatedRun:
    """Run a validated plan on ``backend`` (``engine`` or ``flower``)."""
    check_backend(backend)
    t0 = time.perf_counter()
    if backend == "flower":
        try:  # lazy: flwr and Ray are heavy optional dependencies (the fl extra)
            from .flower import run_flower  # lazy: Flower is an optional extra (modelshield[fl])
        except ImportError as exc:
            raise MissingExtraError("flwr", "fl", "the Flower simulation backend") from exc
        result = run_flower(plan)
    else:
        result = run(plan)
    return FederatedRun(plan=plan, result=result, backend=backend, seconds=time.perf_counter() - t0)


def threat_model(cfg: FederatedConfig) -> list[str]:
    """The run's threat model and guarantees, in words."""
    out = []
    if cfg.group_size > 1:
        out.append(f"Secure aggregation within groups of k={cfg.group_size} clients: an honest-but-curious server "
                   f"sees each group's sum only, never one client's update; a group's sum is released only with at "
                   f"least {cfg.group_size - cfg.dropouts} survivors (t={cfg.dropouts} dropouts tolerated), else "
                   "the group fails the round. No protection against a server that deviates from the protocol.")
    else:
        out.append("No secure aggregation: the server sees every client's update.")
    if cfg.aggregator == "fedavg":
        out.append("FedAvg: no tolerance of malicious clients (one unbounded update moves the model anywhere).")
    else:
        unit = "group sums" if cfg.group_size > 1 else "client updates"
        out.append(f"Robust aggregation ({cfg.aggregator}) across {unit}: tolerates up to f malicious inputs "
                   "(a group with one malicious client counts as one malicious group sum); declared attackers "
                   f"{cfg.malicious:.0%} of {cfg.clients} clients.")
    if cfg.dp_noise > 0:
        out.append(f"Client-level differential privacy: each honest client clips its update to L2 norm C={cfg.clip} "
                   f"and adds its share of Gaussian noise so every released sum carries noise sigma*C "
                   f"(sigma={cfg.dp_noise}); the guarantee covers adding or removing one client's whole data.")
    else:
        out.append("No differential privacy: the model may memorise individual clients' data.")
    return out


def fl_payload(fr: FederatedRun) -> dict[str, Any]:
    """The JSON document of one run."""
    res, cfg = fr.result, fr.plan.cfg
    eps = res.epsilon
    return {
        "backend": fr.backend,
        "rounds": [{"round": r.round, "accuracy": r.accuracy, "backdoor_success": r.backdoor_success,
                    "failures": r.failures, "groups": r.groups} for r in res.rounds],
        "final_accuracy": res.final_accuracy,
        "final_backdoor_success": res.final_backdoor_success,
        "epsilon": eps,
        "privacy": {"epsilon": eps, "delta": cfg.delta if eps is not None else None,
                    "accountant": ACCOUNTANT if eps is not None else None, "unit": "client",
                    "noise_multiplier": cfg.dp_noise, "clip": cfg.clip, "sample_rate": cfg.fraction,
                    "rounds": cfg.rounds},
        "configuration": res.config,
        "threat_model": threat_model(cfg),
        "seconds": round(fr.seconds, 3),
        "seconds_per_round": round(fr.seconds / max(cfg.rounds, 1), 4),
    }


def fl_figures(fr: FederatedRun) -> list[Figure]:
    """Accuracy and backdoor success per round."""
    rs = fr.result.rounds
    x = [r.round for r in rs]
    name = f"{fr.plan.cfg.aggregator}" + (f", SecAgg k={fr.plan.cfg.group_size}" if fr.plan.cfg.group_size > 1
                                          else "") + (f", DP sigma={fr.plan.cfg.dp_noise}" if fr.plan.cfg.dp_noise
                                                      else "")
    return [
        Figure(title="Held-out accuracy per round", kind="line", x_label="round", y_label="accuracy",
               y_range=(0.0, 1.0), series=(Series(name=name, x=x, y=[r.accuracy for r in rs]),)),
        Figure(title="Backdoor success per round", kind="line", x_label="round", y_label="backdoor success",
               y_range=(0.0, 1.0), series=(Series(name=name, x=x, y=[r.backdoor_success for r in rs]),)),
    ]


def render_section(payload: dict[str, Any], svgs: list[str], *, page: bool = True) -> str:
    """An HTML ``<section>`` (a whole self-contained page when ``page``) with the configuration, the threat
    model, the figures (``svgs``: inline SVG from the report renderer) and the per-round table."""
    cfg = payload["configuration"]
    eps = payload["epsilon"]
    keys = ("clients", "rounds", "fraction", "partition", "model", "aggregator", "group_size", "dp_noise",
            "clip", "malicious", "attack", "seed")
    conf = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(cfg.get(k)))}</td></tr>" for k in keys)
    rows = "".join(f"<tr><td>{r['round']}</td><td>{r['accuracy']:.4f}</td><td>{r['backdoor_success']:.4f}</td>"
                   f"<td>{r['failures']}</td></tr>" for r in payload["rounds"])
    eps_text = "none (no DP)" if eps is None else (f"{eps:.3f} at delta={payload['privacy']['delta']:g} "
                                                  f"({escape(payload['privacy']['accountant'])})")
    body = (
        '<section class="federated" id="federated">\n<h2>Federated learning under attack</h2>\n'
        f"<p>Backend: {escape(payload['backend'])}. Final accuracy {payload['final_accuracy']:.4f}, "
        f"backdoor success {payload['final_backdoor_success']:.4f}, client-level epsilon {eps_text}.</p>\n"
        f"<table class=\"config\">{conf}</table>\n<h3>Threat model</h3>\n<ul>"
        + "".join(f"<li>{escape(t)}</li>" for t in payload["threat_model"]) + "</ul>\n"
        + "\n".join(f'<figure class="figure">{s}</figure>' for s in svgs)
        + "\n<table class=\"rounds\"><tr><th>round</th><th>accuracy</th><th>backdoor success</th>"
        f"<th>failures</th></tr>{rows}</table>\n</section>"
    )
    if not page:
        return body
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>modelshield federated run'
            "</title><style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
            "table{border-collapse:collapse}td,th{border:1px solid #d1d5db;padding:2px 8px;text-align:left}"
            f"</style></head><body>\n{body}\n</body></html>\n")
