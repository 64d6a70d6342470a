"""Run a model privately on labelled rows and compare with plaintext: the figures the CLI reports."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelshield.private_inference.approx import approx_forward, fit_activations
from modelshield.private_inference.he import Transit, run_he
from modelshield.private_inference.network import Network, _argmax

__all__ = ["compare", "evaluate_he"]


def _labels(net: Network, logits: np.ndarray) -> np.ndarray:
    idx = _argmax(logits)
    return np.asarray(net.classes)[idx] if net.classes is not None else idx


def compare(net: Network, enc_logits: np.ndarray, plain_logits: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    enc = _labels(net, enc_logits)
    plain = _labels(net, plain_logits)
    out: dict[str, Any] = {
        "agreement": float(np.mean(enc == plain)),
        "max_logit_error": float(np.max(np.abs(enc_logits - plain_logits))) if enc_logits.size else 0.0,
    }
    if y is not None:
        ys = np.asarray(y).astype(str)
        out["accuracy"] = float(np.mean(enc.astype(str) == ys))
        out["plaintext_accuracy"] = float(np.mean(plain.astype(str) == ys))
    else:
        out["accuracy"] = out["plaintext_accuracy"] = None
    return out


def evaluate_he(net: Network, X: np.ndarray, y: np.ndarray | None = None, *, mode: str = "batched",
                degree: int | None = None, fit_rows: np.ndarray | None = None,
                transit: Transit | None = None) -> dict[str, Any]:
    """HE inference of ``X`` against the plaintext model. ``max_logit_error`` compares with the same network
    in plaintext with the same polynomials (the encryption's own error); ``plaintext_accuracy`` is the
    original model's; ``approximation_agreement`` says what the polynomials alone cost."""
    X = np.asarray(X, dtype=np.float64)
    ref = X if fit_rows is None else np.asarray(fit_rows, dtype=np.float64)
    polys = fit_activations(net, ref, degree)
    res = run_he(net, polys, X, mode=mode, transit=transit, bound_rows=ref)
    poly_logits = approx_forward(net, polys, X)
    out = compare(net, res.logits, poly_logits, y)
    orig = compare(net, res.logits, net.forward(X), y)
    out["plaintext_accuracy"] = orig["plaintext_accuracy"]
    out["agreement_with_original_model"] = orig["agreement"]
    out.update({
        "mode": mode, "samples": len(X),
        "ms_per_sample": round(res.seconds / max(1, len(X)) * 1e3, 3),
        "server_ms_per_sample": round(res.server_seconds / max(1, len(X)) * 1e3, 3),
        "client_ms_per_sample": round(res.client_seconds / max(1, len(X)) * 1e3, 3),
        "request_bytes": res.request_bytes, "response_bytes": res.response_bytes,
        "public_context_bytes": res.context_bytes,
        "parameters": res.params.to_dict(), **res.extra,
        "activations": [p.to_dict() for p in polys],
        "server_holds_secret_key": False,
    })
    return out
