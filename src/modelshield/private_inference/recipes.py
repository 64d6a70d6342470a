"""Private-inference workflows over the engine: what ``modelshield private ...`` runs, callable without the CLI.

:func:`prepare` turns a loaded model (and optionally a table of rows) into the layer chain and the rows,
checked against each other; :func:`serve_model` and :func:`classify_remote` are the two ends of the
loopback HE service; :func:`read_session_key`, :func:`parse_address` and :func:`check_degree` validate
their inputs with neutral messages (the flag to fix rides in ``cli_hint``); :func:`describe_plan` renders
a plan, and :func:`describe_he` / :func:`describe_mpc` a run, as text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.data.loaders import load_dataset
from modelshield.errors import DataError, InputNotFoundError, UserError
from modelshield.private_inference.approx import fit_activations
from modelshield.private_inference.channel import Sealed
from modelshield.private_inference.network import Network, extract
from modelshield.private_inference.params import CKKSParams
from modelshield.private_inference.planner import batched_params
from modelshield.private_inference.transport import MIN_KEY_BYTES, client_run, listen, serve

__all__ = ["DEGREES", "Prepared", "check_degree", "classify_remote", "describe_he", "describe_mpc", "describe_plan",
           "parse_address", "prepare", "read_rows", "read_session_key", "serve_model", "tamper_in_transit"]

#: The degrees an activation polynomial may have.
DEGREES = range(1, 5)


@dataclass(frozen=True)
class Prepared:
    """A model's layer chain and, when rows were given, the rows (``X``) and their labels (``y``)."""

    net: Network
    X: np.ndarray | None = None
    y: np.ndarray | None = None


def check_degree(degree: int | None) -> None:
    """``None`` (the default degree) or a degree in :data:`DEGREES`; anything else is a UserError."""
    if degree is not None and degree not in DEGREES:
        raise UserError(f"the activation polynomials' degree must be between 1 and 4, got {degree}",
                        cli_hint="--degree")


def read_rows(net: Network, data: str | Path, *, target: str | None = None, max_samples: int | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """The first ``max_samples`` rows of a table as float64 (and their labels when ``target`` names a column);
    the width must match the model's inputs and every cell must be a finite number."""
    ds = load_dataset(data, target=target)
    X = np.asarray(ds.X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != net.n_inputs:
        raise DataError(f"{data}: {X.shape[-1]} features per row; the model takes {net.n_inputs}",
                        cli_hint="name the label column with --target")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{data}: missing or infinite values; private inference needs numbers in every cell")
    y = None if ds.y is None else np.asarray(ds.y)
    return X[:max_samples], (None if y is None else y[:max_samples])


def prepare(model: Any, source: str | Path | None = None, data: str | Path | None = None, *,
            target: str | None = None, max_samples: int = 2000, protected: bool = False) -> Prepared:
    """The layer chain of ``model`` (loaded from ``source``) and up to ``max_samples`` rows of ``data``, with
    the chain checked against the model on those rows. An ONNX model's layers are read from ``source`` (the
    bytes the loader already verified and scanned; parsed, never run), so it must not be encrypted."""
    if max_samples < 1:
        raise UserError(f"the number of rows to use must be at least 1, got {max_samples}",
                        cli_hint="--max-samples")
    onnx_bytes = None
    if getattr(model, "framework", "") == "onnx":
        if protected or source is None:
            raise UserError("private inference reads an ONNX model's layers from the file: decrypt it first")
        onnx_bytes = Path(source).read_bytes()
    net = extract(model, onnx_bytes=onnx_bytes)
    if data is None:
        return Prepared(net)
    X, y = read_rows(net, data, target=target, max_samples=max_samples)
    net.verify(model, X)
    return Prepared(net, X, y)


def tamper_in_transit(msg: Sealed) -> Sealed:
    """Flip one byte of an HE request's first part (a transit hook that proves the receiver refuses it)."""
    if msg.kind != "request" or not msg.parts:
        return msg
    first = bytearray(msg.parts[0])
    first[len(first) // 2] ^= 0x01
    return replace(msg, parts=(bytes(first), *msg.parts[1:]))


def read_session_key(path: str | Path) -> bytes:
    """The shared session key in ``path`` (at least :data:`~.transport.MIN_KEY_BYTES` bytes)."""
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"session key file {p}: file not found", cli_hint="--session-key-file")
    key = p.read_bytes()
    if len(key) < MIN_KEY_BYTES:
        raise UserError(f"session key file {p}: at least {MIN_KEY_BYTES} bytes of key expected",
                        cli_hint="make one with 'modelshield private session-key'")
    return key


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"server address {text!r}: expected HOST:PORT", cli_hint="--server")
    return host, int(port)


def serve_model(net: Network, key: bytes, port: int, *, rows: np.ndarray | None = None, degree: int | None = None,
                forever: bool = False, on_listening: Callable[[CKKSParams], None] | None = None) -> int:
    """Serve ``net`` on encrypted inputs on 127.0.0.1:``port``; returns how many clients were served (one
    unless ``forever``). ``rows`` fit the activation polynomials and bound the values (needed when an
    activation is not a polynomial); ``on_listening`` is called with the parameters once the port is bound."""
    check_degree(degree)
    fit = rows if rows is not None else np.zeros((0, net.n_inputs))
    polys = fit_activations(net, fit, degree)
    if any(not p.exact for p in polys) and not len(fit):
        raise UserError("the model has non-polynomial activations: their polynomials need rows to be fitted on",
                        cli_hint="pass --data")
    params = batched_params(net, polys, fit)
    with listen(port) as sock:
        if on_listening is not None:
            on_listening(params)
        return serve(sock, net, polys, params, key, once=not forever)


def classify_remote(address: str, key: bytes, data: str | Path, *, target: str | None = None,
                    max_samples: int = 200) -> dict[str, Any]:
    """Encrypt up to ``max_samples`` rows of ``data``, have the HE server at ``address`` (``HOST:PORT``)
    classify them and decrypt the answer here; the JSON-ready figures (predicted class indices, ms/sample,
    layout, parameters, and the accuracy when ``target`` names a label column of class indices)."""
    host, port = parse_address(address)
    ds = load_dataset(data, target=target)
    X = np.asarray(ds.X, dtype=np.float64)[:max_samples]
    t0 = time.perf_counter()
    logits, hello = client_run(host, port, key, X)
    ms = (time.perf_counter() - t0) / max(1, len(X)) * 1e3
    pred = (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else logits.argmax(1)
    out: dict[str, Any] = {"samples": len(X), "predicted_index": pred.tolist(), "ms_per_sample": round(ms, 3),
                           "layout": hello["layout"], "parameters": hello["params"]}
    if ds.y is not None:
        y = np.asarray(ds.y)[:max_samples]
        out["accuracy_if_labels_are_class_indices"] = float(np.mean(pred.astype(str) == y.astype(str)))
    return out


def describe_plan(p: dict[str, Any]) -> list[str]:
    """A plan from :func:`~.planner.plan` as text lines (what ``private plan`` prints)."""
    lines = [f"private inference plan ({p['technique']}): {p['model']}, {p['inputs']} inputs -> "
             f"{p['outputs']} outputs: feasible"]
    for row in p["layers"]:
        extra = f" ({row['how']})" if "how" in row else ""
        shape = f" {row['shape'][0]}->{row['shape'][1]}" if "shape" in row else ""
        lines.append(f"  [{row['index']}] {row['type']}{shape}: supported{extra}")
    for a in p.get("activations", []):
        lines.append(f"  activation {a['activation']} at layer {a['layer']}: degree {a['degree']}, max error "
                     f"{a['max_abs_error']:.3g} on the data's range {a['fit_range']}")
    if "approximation" in p:
        lines.append(f"  polynomials vs model: {json.dumps(p['approximation'])}")
    e = p["estimate"]
    if p["technique"] != "he":
        return [*lines, f"  threshold: {p['threshold']}, {_secrecy(p['threshold'])}",
                f"  expected: {e['rounds']} rounds, ~{e['bytes_sent_per_party']} bytes sent per party "
                f"({e['parties']} parties)"]
    for mode in ("batched", "per_sample"):
        q = p["parameters"][mode]
        lines.append(f"  {mode}: depth {q['depth']}, N={q['poly_modulus_degree']}, coeff "
                     f"{q['coeff_mod_bit_sizes']} = {q['total_bits']} bits <= {q['max_bits_128']} "
                     f"(128-bit), scale {q['scale']}")
    return [*lines, f"  expected: batched {e['batched']['ms_per_sample']} ms/sample (batch "
                    f"{e['batched']['batch_size']}), request {e['batched']['request_bytes']} bytes, per-sample "
                    f"{e['per_sample']['ms_per_sample']} ms"]


def _accuracy(r: dict[str, Any]) -> str:
    return "n/a" if r["accuracy"] is None else f"{r['accuracy']:.4f} (plaintext {r['plaintext_accuracy']:.4f})"


def describe_he(r: dict[str, Any]) -> str:
    """One line on a run of :func:`~.evaluate.evaluate_he` (what ``private he-infer`` prints)."""
    q = r["parameters"]
    return (f"HE {r['mode']}: {r['samples']} rows, accuracy {_accuracy(r)}, argmax agreement {r['agreement']:.4f}, "
            f"max logit error {r['max_logit_error']:.3g}, {r['ms_per_sample']} ms/sample; "
            f"N={q['poly_modulus_degree']} coeff {q['coeff_mod_bit_sizes']} scale {q['scale']}")


def _secrecy(threshold: int) -> str:
    if threshold >= 1:
        return "inputs hidden from any single party (semi-honest parties, honest majority)"
    return "inputs NOT hidden: each share is the secret itself (a functional run only)"


def describe_mpc(r: dict[str, Any]) -> str:
    """One line on a run of :func:`~.mpc.evaluate_mpc` (what ``private mpc-infer`` prints)."""
    rss = r.get("peak_rss_bytes")
    peak = f", peak RSS per party {[round(b / 2**20, 1) for b in rss]} MiB" if rss else ""
    return (f"MPC {r['parties']} parties: {r['samples']} rows, accuracy {_accuracy(r)}, agreement "
            f"{r['agreement']:.4f}, {r['ms_per_sample']} ms/sample, bytes sent per party {r['bytes_sent']}{peak}; "
            f"threshold: {r['threshold']}, {_secrecy(r['threshold'])}")
