"""Inference on CKKS ciphertexts: the client keeps the secret key, the server computes on ciphertexts.

Batched mode (ours): samples are packed in the slots, one ciphertext per input feature holding up to
N/2 samples; a dense layer is then plaintext-scalar multiply-adds with one rescale per output unit, the
bias an exact plaintext addition, and an activation polynomial is a power basis (x^2, x^3, x^4) whose
coefficients fold into the next layer's weights. No rotations, so the client sends no Galois keys.

Per-sample mode (TenSEAL's vector path): one ``CKKSVector`` per sample and ``mm`` (needs Galois keys).
``vec.mm(W) + b`` followed by another ``mm`` is silently wrong in TenSEAL (the bias reaches one replicated
copy only), so the bias is folded into the matrix with a constant input unit instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.errors import DataError, SecurityError
from modelshield.private_inference import _seal
from modelshield.private_inference.approx import PolyAct, approx_forward, poly_depth
from modelshield.private_inference.channel import Sealed, new_session_key, open_sealed, seal
from modelshield.private_inference.network import Act, Dense, Network
from modelshield.private_inference.params import CKKSParams, check_params, choose_params, widen_last_prime

__all__ = ["HEClient", "HEServer", "HEResult", "batched_depth", "per_sample_depth", "run_he"]

Transit = Callable[[Sealed], Sealed]


def batched_depth(net: Network, polys: list[PolyAct]) -> int:
    deg = {p.layer: p.degree for p in polys}
    return sum(1 if isinstance(layer, Dense) else poly_depth(deg[i]) for i, layer in enumerate(net.layers))


def per_sample_depth(net: Network, polys: list[PolyAct]) -> int:
    deg = {p.layer: p for p in polys}

    def act(p: PolyAct) -> int:
        if p.degree <= 1:
            return 0 if p.coeffs == (0.0, 1.0) else 1
        return 1 if p.kind == "square" else math.ceil(math.log2(p.degree)) + 1

    return sum(1 if isinstance(layer, Dense) else act(deg[i]) for i, layer in enumerate(net.layers))


def value_bound(net: Network, polys: list[PolyAct], X: np.ndarray) -> float:
    """The largest magnitude any layer's output takes on ``X`` (with a factor 2 of margin). Inputs are left
    out: a fresh ciphertext has the whole modulus; only what reaches the last prime must fit in it."""
    acts = {str(p.layer): p for p in polys}
    big = 1.0
    for i in range(1, len(net.layers) + 1):
        big = max(big, float(np.max(np.abs(net.forward(X, acts, upto=i)))) if len(X) else 1.0)
    return 2.0 * big


def _powers(ev: Any, z: Any, degree: int) -> dict[int, Any]:
    """``{k: z**k}`` for k = 1..``degree`` (at most 4) in the fewest multiplicative levels (log2 of the degree)."""
    powers = {1: z}
    if degree >= 2:
        powers[2] = ev.square(z)
    if degree >= 3:
        powers[3] = ev.multiply(powers[2], z)
    if degree >= 4:
        powers[4] = ev.square(powers[2])
    return powers


class HEServer:
    """Holds the model; computes on ciphertexts under a public context it is given per session."""

    def __init__(self, net: Network, polys: list[PolyAct]) -> None:
        self.net = net
        self.polys = {p.layer: p for p in polys}

    def evaluate(self, public_context: bytes, session_key: bytes, request: Sealed) -> Sealed:
        ev = _seal.Evaluator(public_context)  # refuses a context carrying the secret key
        parts = open_sealed(session_key, request, kind="request", seq=0)
        if len(parts) != self.net.n_inputs:
            raise DataError(f"the request holds {len(parts)} feature ciphertexts; the model takes {self.net.n_inputs}")
        # feature list: each feature = (terms [(coef, ct)], constant)
        feats: list[tuple[list[tuple[float, Any]], float]] = [([(1.0, ev.load(p))], 0.0) for p in parts]
        for i, layer in enumerate(self.net.layers):
            if isinstance(layer, Dense):
                feats = self._dense(ev, layer, feats)
            else:
                feats = self._act(ev, self.polys[i], feats)
        outs = []
        for terms, const in feats:  # the last layer is Dense: one term of coefficient 1
            (coef, ct), = terms
            assert coef == 1.0 and const == 0.0
            outs.append(ev.dump(ct))
        return seal(session_key, "response", 1, outs)

    def evaluate_packed(self, public_context: bytes, session_key: bytes, request: Sealed, batch: int,
                        rng: np.random.Generator) -> Sealed:
        """One hidden layer, hidden units packed in blocks: the request holds, per feature, the batch tiled
        once per hidden unit. The hidden layer is one slot-wise multiply-add per feature; the output layer
        one slot-wise product per class, whose per-unit blocks the client sums after decryption. Blocks
        are masked with Gaussian values that sum to zero per sample, as large as the last prime leaves
        room for (sigma = headroom / 128 / sqrt(units)), so the client learns the logits and, statistically,
        not the per-unit contributions."""
        ev = _seal.Evaluator(public_context)
        parts = open_sealed(session_key, request, kind="request", seq=0)
        d1, _, d2 = self.net.layers
        assert isinstance(d1, Dense) and isinstance(d2, Dense)
        if len(parts) != d1.shape[0]:
            raise DataError(f"the request holds {len(parts)} feature ciphertexts; the model takes {d1.shape[0]}")
        h = d1.shape[1]
        cts = [ev.load(p) for p in parts]
        q = ev.q_next(cts[0])
        acc = None
        for j, ct in enumerate(cts):
            prod = ev.mul_vector(ct, np.repeat(d1.W[j], batch), q)
            acc = prod if acc is None else ev.add_inplace(acc, prod)
        ev.add_vector_inplace(acc, np.repeat(d1.b, batch))
        z = ev.rescale(acc)
        poly = self.polys[1]
        c = poly.coeffs
        powers = _powers(ev, z, poly.degree)
        terms = [(c[p], ct) for p, ct in powers.items() if c[p] != 0.0]
        low = min((ct for _, ct in terms), key=ev.level)
        q2 = ev.q_next(low)
        outs = []
        for k in range(d2.shape[1]):
            out = None
            for coef, ct in terms:
                prod = ev.mul_vector(ev.mod_switch_to(ct, low), np.repeat(coef * d2.W[:, k], batch), q2)
                out = prod if out is None else ev.add_inplace(out, prod)
            const = np.zeros((h, batch))
            const[0] = d2.b[k] + c[0] * float(d2.W[:, k].sum())
            sigma = ev.headroom(out) / 128.0 / np.sqrt(h)
            self.mask_sigma = sigma
            mask = rng.normal(0.0, sigma, size=(h, batch))
            mask -= mask.mean(axis=0, keepdims=True)  # blocks sum to zero per sample
            ev.add_vector_inplace(out, (const + mask).reshape(-1))
            outs.append(ev.dump(ev.rescale(out)))
        return seal(session_key, "response", 1, outs)

    @staticmethod
    def _dense(ev: Any, layer: Dense, feats: list) -> list:
        cts = [ct for terms, _ in feats for _, ct in terms]
        low = min(cts, key=ev.level)
        aligned = {id(ct): ev.mod_switch_to(ct, low) for ct in cts}
        q = ev.q_next(low)
        out = []
        for o in range(layer.shape[1]):
            acc = None
            bias = float(layer.b[o])
            for f, (terms, const) in enumerate(feats):
                w = float(layer.W[f, o])
                bias += w * const
                for coef, ct in terms:
                    if w * coef == 0.0:
                        continue
                    prod = ev.mul_scalar(aligned[id(ct)], w * coef, q)
                    acc = prod if acc is None else ev.add_inplace(acc, prod)
            if acc is None:  # an all-zero column: 0 * x keeps the ciphertext form
                acc = ev.mul_scalar(aligned[id(cts[0])], 0.0, q)
            ev.add_scalar_inplace(acc, bias)
            out.append(([(1.0, ev.rescale(acc))], 0.0))
        return out

    @staticmethod
    def _act(ev: Any, poly: PolyAct, feats: list) -> list:
        c = poly.coeffs
        out = []
        for terms, const in feats:
            (coef, z), = terms
            assert coef == 1.0 and const == 0.0
            powers = _powers(ev, z, poly.degree)
            out.append(([(float(c[k]), powers[k]) for k in powers if c[k] != 0.0], float(c[0])))
        return out


@dataclass
class HEResult:
    logits: np.ndarray
    params: CKKSParams
    mode: str
    seconds: float
    client_seconds: float
    server_seconds: float
    request_bytes: int
    response_bytes: int
    context_bytes: int
    server_had_secret_key: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class HEClient:
    def __init__(self, params: CKKSParams, *, galois: bool = False) -> None:
        check_params(params)
        self.params = params
        self.session_key = new_session_key()
        self._c = _seal.Client.create(params, galois=galois)

    def public_context(self) -> bytes:
        return self._c.public_context_bytes()

    def request(self, X: np.ndarray) -> Sealed:
        return seal(self.session_key, "request", 0, [self._c.encrypt_bytes(X[:, j]) for j in range(X.shape[1])])

    def request_packed(self, X: np.ndarray, tiles: int) -> Sealed:
        return seal(self.session_key, "request", 0,
                    [self._c.encrypt_bytes(np.tile(X[:, j], tiles)) for j in range(X.shape[1])])

    def read_packed(self, response: Sealed, n: int, tiles: int) -> np.ndarray:
        parts = open_sealed(self.session_key, response, kind="response", seq=1)
        return np.stack([self._c.decrypt(self._c.load(p), n * tiles).reshape(tiles, n).sum(axis=0) for p in parts],
                        axis=1)

    def read(self, response: Sealed, n: int) -> np.ndarray:
        parts = open_sealed(self.session_key, response, kind="response", seq=1)
        return np.stack([self._c.decrypt(self._c.load(p), n) for p in parts], axis=1)


def packable(net: Network) -> bool:
    """One hidden layer (Dense, activation, Dense): the packed layout applies."""
    return len(net.layers) == 3 and isinstance(net.layers[1], Act)


def run_batched(net: Network, polys: list[PolyAct], X: np.ndarray, params: CKKSParams, *,
                transit: Transit | None = None, layout: str = "auto", seed: int = 0) -> HEResult:
    """Client and server in one process (evaluation); ``transit`` may alter messages on the way.
    ``layout``: ``per-feature`` (one ciphertext per feature), ``packed`` (one hidden layer, units in
    blocks) or ``auto`` (packed when it applies)."""
    X = np.asarray(X, dtype=np.float64)
    h = net.dense[0].shape[1]
    if layout == "auto":
        layout = "packed" if packable(net) and h <= params.slots else "per-feature"
    t0 = time.perf_counter()
    client = HEClient(params)
    server = HEServer(net, polys)
    ctx = client.public_context()
    setup = time.perf_counter() - t0
    if layout == "packed":
        rng = np.random.default_rng(seed)
        per_batch = params.slots // h
        logits, tc, ts_, req_b, resp_b = _round_trips(
            X, per_batch, transit, request=lambda chunk: client.request_packed(chunk, h),
            evaluate=lambda req, n: server.evaluate_packed(ctx, client.session_key, req, n, rng),
            read=lambda resp, n: client.read_packed(resp, n, h))
        extra: dict[str, Any] = {"layout": "packed", "batch_per_request": per_batch,
                                 "mask_sigma": round(float(getattr(server, "mask_sigma", 0.0)), 3)}
    else:
        logits, tc, ts_, req_b, resp_b = _round_trips(
            X, params.slots, transit, request=client.request,
            evaluate=lambda req, n: server.evaluate(ctx, client.session_key, req), read=client.read)
        extra = {"layout": "per-feature", "batch_per_request": params.slots}
    return HEResult(logits, params, "batched", time.perf_counter() - t0, setup + tc, ts_, req_b, resp_b, len(ctx),
                    extra=extra)


def _round_trips(X: np.ndarray, batch: int, transit: Transit | None, *, request: Callable[[np.ndarray], Sealed],
                 evaluate: Callable[[Sealed, int], Sealed], read: Callable[[Sealed, int], np.ndarray]
                 ) -> tuple[np.ndarray, float, float, int, int]:
    """``X`` in batches of ``batch`` rows: client ``request`` -> ``transit`` -> server ``evaluate`` -> ``transit``
    -> client ``read``. Returns the logits, client and server seconds, request and response bytes."""
    tc = ts_ = 0.0
    logits, req_b, resp_b = [], 0, 0
    for start in range(0, len(X), batch):
        chunk = X[start:start + batch]
        t = time.perf_counter()
        req = request(chunk)
        tc += time.perf_counter() - t
        req_b += sum(map(len, req.parts))
        if transit is not None:
            req = transit(req)
        t = time.perf_counter()
        resp = evaluate(req, len(chunk))
        ts_ += time.perf_counter() - t
        resp_b += sum(map(len, resp.parts))
        if transit is not None:
            resp = transit(resp)
        t = time.perf_counter()
        logits.append(read(resp, len(chunk)))
        tc += time.perf_counter() - t
    return np.concatenate(logits), tc, ts_, req_b, resp_b


def _augment(net: Network, polys: list[PolyAct]) -> list[tuple[str, Any]]:
    """Per-sample program: dense layers with the bias folded in via a constant unit (value tracked)."""
    prog: list[tuple[str, Any]] = []
    pol = {p.layer: p for p in polys}
    u = 1.0  # value of the constant unit entering the next dense layer
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            n_in, n_out = layer.shape
            last = i == len(net.layers) - 1
            W = np.zeros((n_in + 1, n_out + (0 if last else 1)))
            W[:n_in, :n_out] = layer.W
            W[n_in, :n_out] = layer.b / u
            if not last:
                nxt = pol.get(i + 1)
                target = 1.0
                if nxt is not None:
                    target = max((1.0, 2.0, 0.5, -1.0, 3.0), key=lambda t: abs(float(nxt(np.array([t]))[0])))
                W[n_in, n_out] = target / u
                u = target
            prog.append(("mm", W))
        else:
            p = pol[i]
            u = float(p(np.array([u]))[0])
            prog.append(("square", None) if p.kind == "square" else ("poly", list(p.coeffs)))
    return prog


def run_per_sample(net: Network, polys: list[PolyAct], X: np.ndarray, params: CKKSParams) -> HEResult:
    """One encrypted vector per sample (TenSEAL ``CKKSVector.mm``, Galois keys); client and server here."""
    ts = _seal.import_tenseal()
    check_params(params)
    t0 = time.perf_counter()
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                     coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
    ctx.global_scale = 2.0 ** params.scale_bits
    ctx.generate_galois_keys()
    # the Galois keys are the bulk of the memory: serialized once for the server (no secret key), then dropped
    # from the client's context (it only encrypts and decrypts): at most two copies alive at a time
    pub_bytes = ctx.serialize(save_secret_key=False)
    ctx = ts.context_from(ctx.serialize(save_secret_key=True, save_galois_keys=False))
    server_ctx = ts.context_from(pub_bytes)
    context_bytes = len(pub_bytes)
    del pub_bytes
    if server_ctx.has_secret_key():
        raise SecurityError("the per-sample evaluation context carries the secret key")
    prog = _augment(net, polys)
    rows, tc, tsv, rb, sb = [], time.perf_counter() - t0, 0.0, 0, 0
    for x in np.asarray(X, dtype=np.float64):
        t = time.perf_counter()
        req = ts.ckks_vector(ctx, np.append(x, 1.0).tolist()).serialize()
        tc += time.perf_counter() - t
        t = time.perf_counter()
        v = ts.ckks_vector_from(server_ctx, req)
        for op, arg in prog:
            v = v.mm(arg) if op == "mm" else v.square() if op == "square" else v.polyval(arg)
        resp = v.serialize()
        tsv += time.perf_counter() - t
        t = time.perf_counter()
        rows.append(ts.ckks_vector_from(ctx, resp).decrypt())
        tc += time.perf_counter() - t
        rb += len(req)
        sb += len(resp)
    total = time.perf_counter() - t0
    return HEResult(np.asarray(rows), params, "per-sample", total, tc, tsv, rb, sb, context_bytes)


def run_he(net: Network, polys: list[PolyAct], X: np.ndarray, *, mode: str = "batched",
           params: CKKSParams | None = None, transit: Transit | None = None,
           bound_rows: np.ndarray | None = None) -> HEResult:
    """Encrypted inference of ``X`` (see the module docstring); parameters chosen when not given."""
    if mode not in ("batched", "per-sample"):
        raise DataError(f"unknown HE mode {mode!r}; expected batched or per-sample")
    if np.asarray(X).shape[1] != net.n_inputs:
        raise DataError(f"the data has {np.asarray(X).shape[1]} features; the model takes {net.n_inputs}")
    if params is None:
        ref = X if bound_rows is None else bound_rows
        depth = batched_depth(net, polys) if mode == "batched" else per_sample_depth(net, polys)
        params = choose_params(depth, value_bound(net, polys, ref), min_degree=4096 if mode == "batched" else 8192)
        if mode == "batched" and packable(net):
            params = widen_last_prime(params)
    if mode == "batched":
        return run_batched(net, polys, X, params, transit=transit)
    return run_per_sample(net, polys, X, params)


def plaintext_logits(net: Network, polys: list[PolyAct], X: np.ndarray) -> np.ndarray:
    return approx_forward(net, polys, X)
