"""``he-serve`` / ``he-client``: the HE client and server as two processes on loopback TCP.

Frames are length-prefixed; every message is a :class:`~.channel.Sealed` envelope (HMAC-SHA256 under a
session key both sides read from a key file: in deployment, one derived from an authenticated key
exchange). The server announces the circuit's public facts (input width, layout, CKKS parameters) in a
sealed ``hello``; the client checks the parameters against the 128-bit table before making any key
(fail closed), sends its public context and the encrypted rows, and decrypts the answer.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

import numpy as np

from modelshield.errors import DataError, FormatError, ModelShieldError, UserError
from modelshield.private_inference.approx import PolyAct
from modelshield.private_inference.channel import Sealed, open_sealed, seal
from modelshield.private_inference.he import HEClient, HEServer, packable
from modelshield.private_inference.network import Network
from modelshield.private_inference.params import CKKSParams, check_params

__all__ = ["MIN_KEY_BYTES", "client_run", "listen", "serve"]

MIN_KEY_BYTES = 32
MAX_FRAME = 1 << 30


def _send(sock: socket.socket, msg: Sealed) -> None:
    head = json.dumps({"kind": msg.kind, "seq": msg.seq, "tag": msg.tag.hex(),
                       "sizes": [len(p) for p in msg.parts]}).encode()
    sock.sendall(struct.pack(">I", len(head)) + head)
    for p in msg.parts:
        sock.sendall(p)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise FormatError("the peer closed the connection mid-message")
        buf += chunk
    return bytes(buf)


def _recv(sock: socket.socket) -> Sealed:
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    if n > 1 << 20:
        raise FormatError("message header too large")
    try:
        head = json.loads(_recv_exact(sock, n))
        sizes = [int(s) for s in head["sizes"]]
        tag = bytes.fromhex(head["tag"])
        kind, seq = str(head["kind"]), int(head["seq"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"malformed message header ({type(exc).__name__})") from None
    if any(s < 0 for s in sizes) or sum(sizes) > MAX_FRAME:
        raise FormatError("message too large")
    return Sealed(kind, seq, tuple(_recv_exact(sock, s) for s in sizes), tag)


def listen(port: int) -> socket.socket:
    """A loopback listening socket; a port in use is a one-line UserError (exit 2)."""
    if not 1 <= port <= 65535:
        raise UserError(f"port {port}: expected 1..65535", cli_hint="--port")
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        raise UserError(f"port {port}: loopback port in use", cli_hint="choose another --port") from None
    s.listen(1)
    return s


def serve(sock: socket.socket, net: Network, polys: list[PolyAct], params: CKKSParams, key: bytes, *,
          once: bool = True, seed: int = 0) -> int:
    """Answer clients on ``sock`` (one when ``once``); returns how many were served."""
    server = HEServer(net, polys)
    layout = "packed" if packable(net) and net.dense[0].shape[1] <= params.slots else "per-feature"
    tiles = net.dense[0].shape[1] if layout == "packed" else 1
    hello = {"inputs": net.n_inputs, "outputs": net.n_outputs, "layout": layout, "tiles": tiles,
             "params": {"poly_modulus_degree": params.poly_modulus_degree,
                        "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
                        "scale_bits": params.scale_bits, "depth": params.depth}}
    served = 0
    rng = np.random.default_rng(seed)
    while True:
        conn, _ = sock.accept()
        try:
            _answer(conn, server, key, hello, layout, rng)
        except (ModelShieldError, OSError):
            if once:  # one client: its refusal (tampered message: exit 3) is the command's outcome
                raise
            continue  # serving on: one bad or vanished client does not stop the others
        finally:
            conn.close()
        served += 1
        if once:
            return served


def _answer(conn: socket.socket, server: HEServer, key: bytes, hello: dict[str, Any], layout: str,
            rng: np.random.Generator) -> None:
    _send(conn, seal(key, "hello", 0, [json.dumps(hello).encode()]))
    ctx_msg = _recv(conn)
    (ctx,) = open_sealed(key, ctx_msg, kind="context", seq=0)
    req = _recv(conn)
    batch = int(json.loads(open_sealed(key, _recv(conn), kind="meta", seq=0)[0])["batch"])
    if not 1 <= batch <= hello["params"]["poly_modulus_degree"] // 2 // hello["tiles"]:
        raise DataError(f"batch of {batch} rows does not fit the announced parameters")
    if layout == "packed":
        resp = server.evaluate_packed(ctx, key, req, batch, rng)
    else:
        resp = server.evaluate(ctx, key, req)
    _send(conn, resp)


def client_run(host: str, port: int, key: bytes, X: np.ndarray, timeout: float = 600.0) -> tuple[np.ndarray,
                                                                                                  dict[str, Any]]:
    """Encrypt ``X``, have the server at ``host:port`` compute, decrypt; returns (logits, hello)."""
    X = np.asarray(X, dtype=np.float64)
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise UserError(f"cannot reach the HE server at {host}:{port} ({exc.strerror or exc})") from None
    with conn:
        (raw,) = open_sealed(key, _recv(conn), kind="hello", seq=0)
        hello = json.loads(raw)
        q = hello["params"]
        params = CKKSParams(int(q["poly_modulus_degree"]), tuple(int(b) for b in q["coeff_mod_bit_sizes"]),
                            int(q["scale_bits"]), int(q["depth"]))
        check_params(params)  # the server's proposal must be 128-bit secure before any key is made
        if X.shape[1] != hello["inputs"]:
            raise DataError(f"the data has {X.shape[1]} features; the served model takes {hello['inputs']}")
        tiles = int(hello["tiles"])
        per = params.slots // tiles
        if len(X) > per:
            raise DataError(f"at most {per} rows per request with these parameters",
                            cli_hint=f"pass --max-samples {per}")
        client = HEClient(params)
        client.session_key = key
        _send(conn, seal(key, "context", 0, [client.public_context()]))
        req = client.request_packed(X, tiles) if hello["layout"] == "packed" else client.request(X)
        _send(conn, req)
        _send(conn, seal(key, "meta", 0, [json.dumps({"batch": len(X)}).encode()]))
        resp = _recv(conn)
        logits = client.read_packed(resp, len(X), tiles) if hello["layout"] == "packed" else client.read(resp, len(X))
    return logits, hello
