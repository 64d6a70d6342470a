"""Inference under secure multi-party computation (mpyc, Shamir secret sharing, semi-honest parties).

Each party is a separate OS process on loopback (:mod:`._mpc_party`). Party 0 (model owner) secret-shares
the weights, party 1 (client) the rows; they compute ``X @ W + b`` per layer on shares, ReLU by a secure
comparison, x^2 by a secure multiplication, other activations by their polynomial, and the argmax by secure
comparisons; only the predicted classes are opened, to the client alone.

Threat model: semi-honest (passive) parties. mpyc's Shamir threshold is ``t = (m - 1) // 2`` (its
``runtime.setup``), and a degree-``t`` sharing hides a secret from any ``t`` parties only. With 3 parties
``t = 1``: any single party's view hides the other parties' inputs (honest majority: at most one party
colludes). With 2 parties ``t = 0``: the sharing polynomial is the constant secret, every share *is* the
secret, and neither party's input is hidden from the other; such a run is refused unless the caller opts in
(``allow_no_secrecy``), and then its result says ``threshold: 0`` and that the inputs are not hidden.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from modelshield.errors import MissingExtraError, UserError
from modelshield.private_inference.approx import fit_activations
from modelshield.private_inference.network import Dense, Network, _argmax

__all__ = ["PARTIES", "check_parties", "evaluate_mpc", "fixed_point", "run_mpc", "threat_model"]

PARTIES = (2, 3)

NOT_HIDDEN = ("2 parties: mpyc's Shamir threshold t = (m-1)//2 is 0, each share is the secret itself: the inputs "
              "(weights, rows) are not hidden from the other party")


def check_parties(parties: int, *, allow_no_secrecy: bool = False) -> None:
    """Refuse a party count mpyc cannot run here, and 2 parties (no secrecy) unless the caller opts in."""
    if parties not in PARTIES:
        raise UserError(f"{parties} parties: private inference runs with 2 or 3 mpyc parties "
                        "(owner, client, helper)", cli_hint="--parties")
    if parties == 2 and not allow_no_secrecy:
        raise UserError(f"{NOT_HIDDEN}; secret sharing needs 3 parties (honest majority)",
                        cli_hint="use --parties 3, or --allow-no-secrecy for a functional run that hides nothing")


def threat_model(parties: int) -> dict[str, Any]:
    """What an MPC run with ``parties`` mpyc parties protects, and against whom (JSON-ready)."""
    t = (parties - 1) // 2
    out: dict[str, Any] = {"adversary": "semi-honest (passive): parties follow the protocol and may inspect "
                                        "what they receive", "parties": parties, "threshold": t}
    if t == 0:
        return out | {"inputs_hidden": False, "honest_majority": False, "note": NOT_HIDDEN}
    return out | {"inputs_hidden": True, "honest_majority": True,
                  "note": f"honest majority: the inputs stay hidden while at most {t} of the {parties} parties "
                          "collude; only the predicted classes are opened, to the client (party 1); no "
                          "protection against a party that deviates from the protocol"}


#: mpyc's default secure fixed point (``SecFxp()``): a 32-bit word with 16 fractional bits
WORD, FRAC = 32, 16
#: bits of headroom above the largest magnitude seen on the rows (4x)
HEADROOM_BITS = 2


def fixed_point(net: Network, X: np.ndarray) -> dict[str, Any]:
    """mpyc ``SecFxp`` sizes for ``net`` on rows like ``X``: mpyc's 16 fractional bits, and a word of mpyc's
    default 32 bits unless the integer part needs more: the largest magnitude among the rows, the weights and
    every layer's output on the rows, times 4, must fit (no silent wrap-around). More fractional bits would
    cost: mpyc's field grows with them and each truncation draws one random bit per fractional bit."""
    mags = [float(np.max(np.abs(X), initial=0.0))]
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            mags += [float(np.max(np.abs(layer.W), initial=0.0)), float(np.max(np.abs(layer.b), initial=0.0))]
        mags.append(float(np.max(np.abs(net.forward(X, upto=i + 1)), initial=0.0)))
    top = max(mags)
    int_bits = max(1, math.ceil(math.log2(top)) if top > 1 else 1) + HEADROOM_BITS
    return {"bits": max(WORD, int_bits + 1 + FRAC), "fractional_bits": FRAC, "largest_magnitude_on_rows": top,
            "headroom": 2 ** HEADROOM_BITS, "integer_bits_needed": int_bits}


def _free_base(m: int) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + m < 65536 and all(_port_free(base + i) for i in range(m)):
            return base
    raise UserError("no free block of loopback ports for the MPC parties", cli_hint="pass --port")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_mpc(net: Network, X: np.ndarray, *, parties: int = 3, port: int | None = None, timeout: float = 300.0,
            degree: int | None = None, bits: int | None = None, frac: int | None = None,
            allow_no_secrecy: bool = False
            ) -> dict[str, Any]:
    """Predicted class indices of ``X`` under MPC, with per-party bytes sent, messages and peak RSS.
    Two parties are refused unless ``allow_no_secrecy`` (see the module docstring). ``bits``/``frac``: the
    fixed-point word and fraction, by default sized from the values ``X`` produces (:func:`fixed_point`)."""
    check_parties(parties, allow_no_secrecy=allow_no_secrecy)
    if importlib.util.find_spec("mpyc") is None:  # the parties import it; not imported here (it logs on import)
        raise MissingExtraError("mpyc", "private", "MPC inference")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != net.n_inputs:
        raise UserError(f"the data has {X.shape[-1]} features; the model takes {net.n_inputs}")
    if port is not None:
        if not 1024 <= port <= 65535 - parties:
            raise UserError(f"first port {port}: expected 1024..{65535 - parties}", cli_hint="--port")
        busy = [port + i for i in range(parties) if not _port_free(port + i)]
        if busy:
            raise UserError(f"first port {port}: loopback port {busy[0]} is in use",
                            cli_hint="choose another --port")
    base = port if port is not None else _free_base(parties)
    fxp = fixed_point(net, X) if bits is None or frac is None else {"bits": bits, "fractional_bits": frac}
    bits, frac = bits or fxp["bits"], frac or fxp["fractional_bits"]
    fxp |= {"bits": bits, "fractional_bits": frac}
    polys = {p.layer: p for p in fit_activations(net, X, degree)}
    layers = []
    weights: dict[str, np.ndarray] = {}
    for k, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            layers.append({"type": "dense", "shape": list(layer.shape)})
            weights[f"W{k}"], weights[f"b{k}"] = layer.W, layer.b
        elif layer.kind in ("relu", "square"):
            layers.append({"type": layer.kind})
        else:
            layers.append({"type": "poly", "coeffs": list(polys[k].coeffs)})
    with tempfile.TemporaryDirectory(prefix="ms-mpc-") as d:
        np.save(os.path.join(d, "rows.npy"), X)
        np.savez(os.path.join(d, "w.npz"), **weights)
        job = {"bits": bits, "frac": frac, "weights": os.path.join(d, "w.npz"), "rows": os.path.join(d, "rows.npy"),
               "rows_shape": list(X.shape), "layers": layers, "out": os.path.join(d, "out{party}.json")}
        with open(os.path.join(d, "job.json"), "w") as fh:
            json.dump(job, fh)
        t0 = time.perf_counter()
        procs = [subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "modelshield.private_inference._mpc_party", os.path.join(d, "job.json"),
             f"-M{parties}", "-I", str(i), "-B", str(base), "--no-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(parties)]
        errors = []
        try:
            for p in procs:
                remaining = max(1.0, timeout - (time.perf_counter() - t0))
                _, err = p.communicate(timeout=remaining)
                if p.returncode:
                    errors.append(err.decode(errors="replace").strip().splitlines()[-1:] or ["exit"])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
                p.wait()
            raise UserError(f"the MPC parties did not finish within {timeout:g} s",
                            cli_hint="raise --timeout") from None
        wall = time.perf_counter() - t0
        if errors:
            raise UserError(f"an MPC party failed: {errors[0][0]}")
        stats = []
        for i in range(parties):
            with open(os.path.join(d, f"out{i}.json")) as fh:
                stats.append(json.load(fh))
    return {"predictions": np.asarray(stats[1]["predictions"]), "parties": parties, "threshold": (parties - 1) // 2,
            "threat_model": threat_model(parties), "bytes_sent": [s["bytes_sent"] for s in stats],
            "peak_rss_bytes": [s["peak_rss_bytes"] for s in stats],
            "messages_to_next_party": [s["messages_to_next_party"] for s in stats],
            "protocol_seconds": max(s["seconds"] for s in stats), "wall_seconds": wall,
            "fixed_point": fxp}


def evaluate_mpc(net: Network, X: np.ndarray, y: np.ndarray | None = None, **kw: Any) -> dict[str, Any]:
    """MPC inference of ``X`` compared with the plaintext model (same JSON fields as HE, plus bytes/rounds)."""
    r = run_mpc(net, X, **kw)
    plain = _argmax(net.forward(X))
    enc = r.pop("predictions")
    labels = (lambda idx: np.asarray(net.classes)[idx]) if net.classes is not None else (lambda idx: idx)
    out: dict[str, Any] = {"agreement": float(np.mean(enc == plain)), "samples": len(X)}
    if y is not None:
        ys = np.asarray(y).astype(str)
        out["accuracy"] = float(np.mean(labels(enc).astype(str) == ys))
        out["plaintext_accuracy"] = float(np.mean(labels(plain).astype(str) == ys))
    else:
        out["accuracy"] = out["plaintext_accuracy"] = None
    out["ms_per_sample"] = round(r["protocol_seconds"] / max(1, len(X)) * 1e3, 3)
    out["rounds"] = max(r["messages_to_next_party"])
    out["rounds_note"] = ("messages each party sent to the next one: an upper bound on the communication rounds "
                          "(mpyc batches the messages of one round per peer)")
    if r["threshold"] == 0:
        out["warning"] = f"{NOT_HIDDEN}: a functional run only"
    out.update(r)
    return out
