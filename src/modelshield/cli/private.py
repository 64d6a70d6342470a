"""CLI area ``private``: ``modelshield private plan | he-infer | mpc-infer`` (private inference)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import UserError

__all__ = ["register"]


def _read(model: str, data: Path | None, target: str | None, load: LoadFlags, max_samples: int
          ) -> tuple[Any, Any, np.ndarray | None, np.ndarray | None]:
    """The model's layer chain (verified against the model on the rows) and the rows."""
    from modelshield.data.loaders import load_dataset
    from modelshield.private_inference import extract

    if max_samples < 1:
        raise UserError("--max-samples must be >= 1")
    m = load.load(model)
    onnx_bytes = None
    if getattr(m, "framework", "") == "onnx":
        onnx_bytes = Path(model).read_bytes()  # already verified and scanned by the loader: parsed, never run
        if load.protected:
            raise UserError("private inference reads an ONNX model's layers from the file: decrypt it first")
    net = extract(m, onnx_bytes=onnx_bytes)
    X = y = None
    if data is not None:
        ds = load_dataset(data, target=target)
        X = np.asarray(ds.X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != net.n_inputs:
            raise UserError(f"{data}: {X.shape[-1]} features per row; the model takes {net.n_inputs} "
                            "(name the label column with --target)")
        if not np.all(np.isfinite(X)):
            raise UserError(f"{data}: missing or infinite values; private inference needs numbers in every cell")
        y = None if ds.y is None else np.asarray(ds.y)
        X, y = X[:max_samples], (None if y is None else y[:max_samples])
        net.verify(m, X)
    return m, net, X, y


def _print_plan(p: dict[str, Any]) -> None:
    console.print(f"private inference plan ({p['technique']}): {p['model']}, {p['inputs']} inputs -> "
                  f"{p['outputs']} outputs: feasible")
    for row in p["layers"]:
        extra = f" ({row['how']})" if "how" in row else ""
        shape = f" {row['shape'][0]}->{row['shape'][1]}" if "shape" in row else ""
        console.print(f"  [{row['index']}] {row['type']}{shape}: supported{extra}", markup=False)
    for a in p.get("activations", []):
        console.print(f"  activation {a['activation']} at layer {a['layer']}: degree {a['degree']}, max error "
                      f"{a['max_abs_error']:.3g} on the data's range {a['fit_range']}", markup=False)
    if "approximation" in p:
        console.print(f"  polynomials vs model: {json.dumps(p['approximation'])}", markup=False)
    if p["technique"] == "he":
        for mode in ("batched", "per_sample"):
            q = p["parameters"][mode]
            console.print(f"  {mode}: depth {q['depth']}, N={q['poly_modulus_degree']}, coeff "
                          f"{q['coeff_mod_bit_sizes']} = {q['total_bits']} bits <= {q['max_bits_128']} "
                          f"(128-bit), scale {q['scale']}", markup=False)
        e = p["estimate"]
        console.print(f"  expected: batched {e['batched']['ms_per_sample']} ms/sample (batch "
                      f"{e['batched']['batch_size']}), request {e['batched']['request_bytes']} bytes, per-sample "
                      f"{e['per_sample']['ms_per_sample']} ms", markup=False)
    else:
        e = p["estimate"]
        console.print(f"  expected: {e['rounds']} rounds, ~{e['bytes_sent_per_party']} bytes sent per party "
                      f"({e['parties']} parties)", markup=False)


def register(app: typer.Typer, harden: typer.Typer) -> None:
    private = typer.Typer(help="Private inference: homomorphic encryption (CKKS) and multi-party computation.",
                          no_args_is_help=True)

    @private.command("plan")
    @load_options
    def plan_cmd(
        model: str = typer.Argument(..., help="Model: scikit-learn linear/MLP (pipeline with a scaler), "
                                              "PyTorch, TorchScript or ONNX MLP."),
        technique: str = typer.Option("he", "--technique", help="he or mpc."),
        data: Path = typer.Option(None, "--data", "-d", help="Rows to fit activation polynomials and check on."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (CSV/Parquet)."),
        degree: int = typer.Option(None, "--degree", help="Degree of the activation polynomials (1-4)."),
        parties: int = typer.Option(3, "--parties", help="MPC parties (2 or 3)."),
        calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate",
                                       help="Time the HE operations here first (a few seconds; default) or use "
                                            "the fixed cost table."),
        max_samples: int = typer.Option(2000, "--max-samples", help="Use at most this many rows."),
        json_out: Path = typer.Option(None, "--json", help="Write the plan as JSON here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --json file."),
        *,
        load: LoadFlags,
    ) -> None:
        """Say whether MODEL can run under HE or MPC, with which parameters, and what it costs."""
        from modelshield.private_inference import plan

        check_outputs({"--json": json_out}, [model, data, *load.inputs], force)
        if degree is not None and not 1 <= degree <= 4:
            raise UserError("--degree must be between 1 and 4")
        _, net, X, y = _read(model, data, target, load, max_samples)
        p = plan(net, technique, X, y, degree=degree, parties=parties, calibrate_costs=calibrate)
        _print_plan(p)
        if json_out is not None:
            write_json(json_out, p, force)

    @private.command("he-infer")
    @load_options
    def he_infer(
        model: str = typer.Argument(..., help="Model file (see 'private plan')."),
        data: Path = typer.Option(..., "--data", "-d", help="Labelled rows to run encrypted."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (CSV/Parquet)."),
        mode: str = typer.Option("batched", "--mode", help="batched (samples in slots) or per-sample."),
        degree: int = typer.Option(None, "--degree", help="Degree of the activation polynomials (1-4)."),
        max_samples: int = typer.Option(200, "--max-samples", help="Run at most this many rows."),
        json_out: Path = typer.Option(None, "--json", help="Write the results as JSON here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --json file."),
        tamper_self_test: bool = typer.Option(False, "--tamper-self-test", hidden=True,
                                              help="Flip one byte of the request in transit (proves the refusal)."),
        *,
        load: LoadFlags,
    ) -> None:
        """Run MODEL on encrypted rows (client and server in this process) and compare with plaintext."""
        from modelshield.private_inference import evaluate_he

        check_outputs({"--json": json_out}, [model, data, *load.inputs], force)
        if mode not in ("batched", "per-sample"):
            raise UserError(f"unknown --mode {mode!r}; expected batched or per-sample")
        if degree is not None and not 1 <= degree <= 4:
            raise UserError("--degree must be between 1 and 4")
        _, net, X, y = _read(model, data, target, load, max_samples)
        transit = _flip_one_byte if tamper_self_test else None
        if tamper_self_test and mode != "batched":
            raise UserError("--tamper-self-test applies to the batched mode")
        r = evaluate_he(net, X, y, mode=mode, degree=degree, transit=transit)
        acc = "n/a" if r["accuracy"] is None else f"{r['accuracy']:.4f} (plaintext {r['plaintext_accuracy']:.4f})"
        q = r["parameters"]
        console.print(f"HE {mode}: {r['samples']} rows, accuracy {acc}, argmax agreement {r['agreement']:.4f}, "
                      f"max logit error {r['max_logit_error']:.3g}, {r['ms_per_sample']} ms/sample; "
                      f"N={q['poly_modulus_degree']} coeff {q['coeff_mod_bit_sizes']} scale {q['scale']}",
                      markup=False)
        if json_out is not None:
            write_json(json_out, r, force)

    @private.command("mpc-infer")
    @load_options
    def mpc_infer(
        model: str = typer.Argument(..., help="Model file (see 'private plan')."),
        data: Path = typer.Option(..., "--data", "-d", help="Labelled rows to run under MPC."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (CSV/Parquet)."),
        parties: int = typer.Option(3, "--parties", help="Parties (2 or 3), each a separate OS process."),
        port: int = typer.Option(None, "--port", help="First loopback port (default: free ports)."),
        max_samples: int = typer.Option(200, "--max-samples", help="Run at most this many rows."),
        timeout: float = typer.Option(300.0, "--timeout", help="Seconds before the parties are stopped."),
        json_out: Path = typer.Option(None, "--json", help="Write the results as JSON here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --json file."),
        *,
        load: LoadFlags,
    ) -> None:
        """Run MODEL under mpyc secret sharing among PARTIES local processes and compare with plaintext."""
        from modelshield.private_inference.mpc import evaluate_mpc

        check_outputs({"--json": json_out}, [model, data, *load.inputs], force)
        _, net, X, y = _read(model, data, target, load, max_samples)
        r = evaluate_mpc(net, X, y, parties=parties, port=port, timeout=timeout)
        acc = "n/a" if r["accuracy"] is None else f"{r['accuracy']:.4f} (plaintext {r['plaintext_accuracy']:.4f})"
        console.print(f"MPC {parties} parties: {r['samples']} rows, accuracy {acc}, agreement {r['agreement']:.4f}, "
                      f"{r['ms_per_sample']} ms/sample, bytes sent per party {r['bytes_sent']}", markup=False)
        if json_out is not None:
            write_json(json_out, r, force)

    @private.command("session-key")
    def session_key(
        out: Path = typer.Argument(..., help="Where to write a new 32-byte session key (mode 0600)."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing file."),
    ) -> None:
        """Make the session key he-serve and he-client authenticate their messages with."""
        from modelshield._io import write_bytes_safely
        from modelshield.private_inference.channel import new_session_key

        write_bytes_safely(out, new_session_key(), force, private=True)
        console.print(f"wrote {out} (give it to the client and the server over a trusted channel)")

    @private.command("he-serve")
    @load_options
    def he_serve(
        model: str = typer.Argument(..., help="Model file (see 'private plan')."),
        session_key_file: Path = typer.Option(..., "--session-key-file", help="Shared session key "
                                                                               "('private session-key')."),
        port: int = typer.Option(..., "--port", help="Loopback port to listen on."),
        data: Path = typer.Option(None, "--data", "-d", help="Rows to fit activation polynomials and bound values."),
        target: str = typer.Option(None, "--target", "-t", help="Label column of --data."),
        degree: int = typer.Option(None, "--degree", help="Degree of the activation polynomials (1-4)."),
        forever: bool = typer.Option(False, "--forever", help="Keep serving (default: answer one client)."),
        *,
        load: LoadFlags,
    ) -> None:
        """Serve MODEL on encrypted inputs (CKKS) on 127.0.0.1:PORT; never receives a secret key."""
        from modelshield.private_inference import fit_activations
        from modelshield.private_inference.he import batched_depth, packable, value_bound
        from modelshield.private_inference.params import choose_params, widen_last_prime
        from modelshield.private_inference.transport import listen, serve

        key = _session_key(session_key_file)
        _, net, X, _ = _read(model, data, target, load, 10_000)
        rows = X if X is not None else np.zeros((0, net.n_inputs))
        polys = fit_activations(net, rows, degree)
        if any(not p.exact for p in polys) and X is None:
            raise UserError("the model has non-polynomial activations: pass --data to fit their polynomials")
        params = choose_params(batched_depth(net, polys), value_bound(net, polys, rows) if len(rows) else 1e3)
        if packable(net):
            params = widen_last_prime(params)  # room for the packed layout's masks
        sock = listen(port)
        with sock:
            console.print(f"serving on 127.0.0.1:{port} (N={params.poly_modulus_degree}, "
                          f"coeff {list(params.coeff_mod_bit_sizes)})", markup=False)
            n = serve(sock, net, polys, params, key, once=not forever)
        console.print(f"served {n} client(s)")

    @private.command("he-client")
    def he_client(
        server: str = typer.Option(..., "--server", help="HOST:PORT of 'private he-serve'."),
        session_key_file: Path = typer.Option(..., "--session-key-file", help="Shared session key."),
        data: Path = typer.Option(..., "--data", "-d", help="Rows to classify (stay encrypted in transit)."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (for accuracy)."),
        max_samples: int = typer.Option(200, "--max-samples", help="Send at most this many rows."),
        json_out: Path = typer.Option(None, "--json", help="Write predictions and figures as JSON here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --json file."),
    ) -> None:
        """Encrypt rows, have he-serve classify them, decrypt (the secret key stays here)."""
        import time

        from modelshield.data.loaders import load_dataset
        from modelshield.private_inference.transport import client_run

        check_outputs({"--json": json_out}, [data, session_key_file], force)
        key = _session_key(session_key_file)
        host, _, port_s = server.rpartition(":")
        if not host or not port_s.isdigit():
            raise UserError(f"--server {server!r}: expected HOST:PORT")
        ds = load_dataset(data, target=target)
        X = np.asarray(ds.X, dtype=np.float64)[:max_samples]
        t0 = time.perf_counter()
        logits, hello = client_run(host, int(port_s), key, X)
        ms = (time.perf_counter() - t0) / max(1, len(X)) * 1e3
        pred = (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else logits.argmax(1)
        out: dict[str, Any] = {"samples": len(X), "predicted_index": pred.tolist(), "ms_per_sample": round(ms, 3),
                               "layout": hello["layout"], "parameters": hello["params"]}
        if ds.y is not None:
            y = np.asarray(ds.y)[:max_samples]
            out["accuracy_if_labels_are_class_indices"] = float(np.mean(pred.astype(str) == y.astype(str)))
        console.print(f"HE client: {len(X)} rows classified, {out['ms_per_sample']} ms/sample", markup=False)
        if json_out is not None:
            write_json(json_out, out, force)

    app.add_typer(private, name="private")


def _session_key(path: Path) -> bytes:
    from modelshield.private_inference.transport import MIN_KEY_BYTES

    if not path.is_file():
        raise UserError(f"--session-key-file {path}: file not found")
    key = path.read_bytes()
    if len(key) < MIN_KEY_BYTES:
        raise UserError(f"--session-key-file {path}: at least {MIN_KEY_BYTES} bytes of key expected")
    return key


def _flip_one_byte(msg: Any) -> Any:
    from dataclasses import replace

    if msg.kind != "request" or not msg.parts:
        return msg
    first = bytearray(msg.parts[0])
    first[len(first) // 2] ^= 0x01
    return replace(msg, parts=(bytes(first), *msg.parts[1:]))
