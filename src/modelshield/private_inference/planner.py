"""The planner: says before any encryption whether a model can run privately, and what it costs.

:func:`plan` lists each layer and whether it is supported, and for HE the multiplicative depth, each
activation's polynomial with its measured error and the accuracy it costs, the CKKS parameters (checked
against the HE-standard 128-bit table) and expected latency, ciphertext sizes and memory for batched and
per-sample modes; for MPC the rounds and communication of the mpyc protocol.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np

from modelshield.errors import UserError
from modelshield.private_inference.approx import PolyAct, approx_forward, fit_activations, poly_depth
from modelshield.private_inference.he import batched_depth, packable, per_sample_depth, value_bound
from modelshield.private_inference.mpc import check_parties, threat_model
from modelshield.private_inference.network import Act, Dense, Network, _argmax
from modelshield.private_inference.params import (
    DEFAULT_COSTS,
    CKKSParams,
    OpCosts,
    calibrate,
    choose_params,
    widen_last_prime,
)

__all__ = ["TECHNIQUES", "batched_params", "he_estimate", "mpc_estimate", "plan"]

TECHNIQUES = ("he", "mpc")


def _layers(net: Network, polys: list[PolyAct], technique: str) -> list[dict[str, Any]]:
    pol = {p.layer: p for p in polys}
    rows = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            rows.append({"index": i, "layer": layer.name, "type": "dense", "shape": list(layer.shape),
                         "supported": True, "depth": 1 if technique == "he" else None})
        else:
            p = pol[i]
            how = ("exact polynomial" if p.exact else f"degree-{p.degree} polynomial fit") if technique == "he" \
                else ("secure multiplication" if layer.kind == "square" else
                      "secure comparison" if layer.kind == "relu" else f"degree-{p.degree} polynomial fit")
            rows.append({"index": i, "layer": layer.name, "type": layer.kind, "supported": True, "how": how,
                         "depth": poly_depth(p.degree) if technique == "he" else None})
    return rows


def _counts(net: Network, polys: list[PolyAct]) -> dict[str, int]:
    """Homomorphic operations of one batched evaluation (packed layout for one hidden layer, else one
    ciphertext per feature)."""
    pol = {p.layer: p for p in polys}
    if packable(net):
        d1, d2 = net.dense
        p = pol[1]
        terms = max(1, sum(1 for k in range(1, p.degree + 1) if p.coeffs[k] != 0.0))
        return {"mul_vector": d1.shape[0] + terms * d2.shape[1], "add": d1.shape[0] + terms * d2.shape[1],
                "rescale": 1 + d2.shape[1], "mul_ct": {0: 0, 1: 0, 2: 1, 3: 2, 4: 3}[p.degree]}
    terms = net.n_inputs
    c = {"mul_plain": 0, "add": 0, "rescale": 0, "mul_ct": 0}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            n_out = layer.shape[1]
            c["mul_plain"] += terms * n_out
            c["add"] += terms * n_out
            c["rescale"] += n_out
            terms = n_out
        else:
            d = pol[i].degree
            c["mul_ct"] += terms * {0: 0, 1: 0, 2: 1, 3: 2, 4: 3}[d]
            terms *= max(1, sum(1 for k in range(1, d + 1) if pol[i].coeffs[k] != 0.0))
    return c


def he_estimate(net: Network, polys: list[PolyAct], params: CKKSParams, n_samples: int,
                costs: OpCosts = DEFAULT_COSTS) -> dict[str, Any]:
    """Expected latency (client key generation, encryption, server work, decryption), sizes and memory."""
    n = params.poly_modulus_degree
    k = len(params.coeff_mod_bit_sizes) - 1
    c = _counts(net, polys)
    server_ms = sum(costs.at(op, n, k) * cnt for op, cnt in c.items()) + net.n_inputs * costs.at("load", n, k)
    per_request = params.slots // net.dense[0].shape[1] if packable(net) else params.slots
    batches = max(1, math.ceil(n_samples / per_request))
    client_ms = (net.n_inputs * costs.at("encrypt", n, k) + net.n_outputs * costs.at("decrypt", n, 1))
    setup_ms = costs.at("keygen", n, k)
    total = setup_ms + batches * (server_ms + client_ms)
    ct_in = params.ciphertext_bytes(k)
    ct_out = params.ciphertext_bytes(1)
    widest = max(max(d.shape) for d in net.dense)
    if costs.per_sample_ms is not None:
        ps_ms = costs.per_sample_ms
    else:  # TenSEAL's mm: about one rotation per matrix row; a rotation costs about one relinearisation
        ps_ms = sum(costs.at("mul_ct", n, k) * (d.shape[0] + 1) for d in net.dense) + costs.at("encrypt", n, k)
    return {
        "batched": {
            "ciphertexts_in": net.n_inputs * batches, "ciphertexts_out": net.n_outputs * batches,
            "ciphertext_bytes_in": ct_in // 2, "ciphertext_bytes_out": ct_out,
            "request_bytes": net.n_inputs * ct_in // 2 * batches, "response_bytes": net.n_outputs * ct_out * batches,
            "operations": c, "setup_ms": round(setup_ms, 1), "ms_per_batch": round(server_ms + client_ms, 1),
            "batch_size": min(n_samples, per_request), "layout": "packed" if packable(net) else "per-feature",
            "ms_per_sample": round(total / max(1, n_samples), 3),
            "ms_per_sample_full_slots": round((server_ms + client_ms) / per_request, 4),
            "server_memory_bytes": int(ct_in * (net.n_inputs + 2 * widest * 4)),
        },
        "per_sample": {"ciphertext_bytes_in": ct_in, "galois_keys": True, "ms_per_sample": round(ps_ms, 1)},
        "costs_calibrated": costs.calibrated,
        "sizes_note": "uncompressed upper bounds (requests: seeded, half size); SEAL compresses further",
    }


def mpc_estimate(net: Network, parties: int, n_samples: int, bits: int = 32) -> dict[str, Any]:
    """mpyc's cost for secure fixed point: each multiplication layer is one resharing round plus a
    truncation; a comparison (ReLU, argmax step) about ``log2(bits)`` + 2 rounds of bit decomposition."""
    acts = [layer for layer in net.layers if isinstance(layer, Act)]
    k = net.n_outputs
    rounds = 0
    muls = 0
    cmps = 0
    for layer in net.layers:
        if isinstance(layer, Dense):
            rounds += 2
            muls += layer.shape[1]
        elif layer.kind == "square":
            rounds += 2
        else:
            rounds += int(math.log2(bits)) + 2
            cmps += 1
    argmax_cmps = max(1, k - 1)
    rounds += math.ceil(math.log2(max(k, 2))) * (int(math.log2(bits)) + 2)
    field_bytes = 2 * bits // 8 + 8
    per_sample_elems = sum(d.shape[1] for d in net.dense) * 2 + (cmps + argmax_cmps) * bits * 3
    return {
        "parties": parties, "rounds": rounds,
        "bytes_sent_per_party": int(per_sample_elems * field_bytes * (parties - 1) * n_samples
                                    + sum(d.W.size + d.b.size for d in net.dense) * field_bytes * (parties - 1)),
        "secure_multiplications_per_sample": muls, "secure_comparisons_per_sample": cmps + argmax_cmps,
        "note": "coarse model of mpyc's secure fixed-point protocols; the measured figures are in mpc-infer",
        "nonlinear_layers": [a.kind for a in acts],
    }


def batched_params(net: Network, polys: list[PolyAct], rows: np.ndarray) -> CKKSParams:
    """The CKKS parameters of the batched layout for ``net`` with ``polys``: depth from the circuit, scale from
    the values ``rows`` take (a default bound without rows), the last prime widened for the packed masks."""
    bound = value_bound(net, polys, rows) if len(rows) else 1e3
    params = choose_params(batched_depth(net, polys), bound)
    return widen_last_prime(params) if packable(net) else params  # room for the packed layout's masks


def plan(net: Network, technique: str, X: np.ndarray | None = None, y: np.ndarray | None = None, *,
         degree: int | None = None, parties: int = 3, calibrate_costs: bool = False,
         allow_no_secrecy: bool = False) -> dict[str, Any]:
    """The plan (a JSON-ready dict) for running ``net`` privately; raises when it cannot be done (for MPC,
    2 parties too unless ``allow_no_secrecy``: their shares hide nothing, see :mod:`.mpc`)."""
    if technique not in TECHNIQUES:
        raise UserError(f"unknown technique {technique!r}; expected he or mpc", cli_hint="--technique")
    if X is not None and np.asarray(X).shape[1] != net.n_inputs:
        raise UserError(f"the data has {np.asarray(X).shape[1]} features; the model takes {net.n_inputs}")
    rows = np.asarray(X, dtype=np.float64) if X is not None else np.zeros((0, net.n_inputs))
    polys = fit_activations(net, rows, degree)
    out: dict[str, Any] = {"technique": technique, "model": net.source, "inputs": net.n_inputs,
                           "outputs": net.n_outputs, "feasible": True, "notes": list(net.notes),
                           "layers": _layers(net, polys, technique)}
    need_fit = [p for p in polys if not p.exact]
    if need_fit and not len(rows) and technique == "he":
        raise UserError("the model has non-polynomial activations "
                        f"({', '.join(sorted({p.kind for p in need_fit}))}): their polynomials are fitted on the "
                        "range the inputs take, which needs rows", cli_hint="pass --data")
    if len(rows):
        plain = net.forward(rows)
        approx = approx_forward(net, polys, rows)
        acc = {"argmax_agreement_with_model": float(np.mean(_argmax(plain) == _argmax(approx)))}
        if y is not None and net.classes is not None:
            pred = np.asarray(net.classes)[_argmax(approx)]
            acc["accuracy_with_polynomials"] = float(np.mean(pred.astype(str) == np.asarray(y).astype(str)))
            acc["plaintext_accuracy"] = float(np.mean(np.asarray(net.classes)[_argmax(plain)].astype(str)
                                                      == np.asarray(y).astype(str)))
        out["approximation"] = acc
    if technique == "he":
        out["activations"] = [p.to_dict() for p in polys]
        bound = value_bound(net, polys, rows) if len(rows) else 1e3
        b_params = batched_params(net, polys, rows)
        s_params = choose_params(per_sample_depth(net, polys), bound, min_degree=8192)
        costs = DEFAULT_COSTS
        if calibrate_costs:
            if importlib.util.find_spec("tenseal") is not None:
                costs = calibrate(b_params, per_sample=([d.shape for d in net.dense], s_params))
            else:
                out["notes"].append("TenSEAL is not installed: latencies from the fixed cost table, not measured")
        n = len(rows) or b_params.slots
        est = he_estimate(net, polys, b_params, n, costs)
        out["multiplicative_depth"] = {"batched": b_params.depth, "per_sample": s_params.depth}
        out["parameters"] = {"batched": b_params.to_dict(), "per_sample": s_params.to_dict()}
        out["security"] = "128-bit classical (HE standard table: max coefficient-modulus bits per ring degree)"
        out["estimate"] = est
    else:
        check_parties(parties, allow_no_secrecy=allow_no_secrecy)
        out["threshold"] = (parties - 1) // 2
        out["threat_model"] = threat_model(parties)
        out["estimate"] = mpc_estimate(net, parties, len(rows) or 1)
        out["activations"] = [p.to_dict() for p in polys if not p.exact and p.kind != "relu"]
    return out
