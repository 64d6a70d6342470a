"""CKKS parameter choice against the HE-standard 128-bit table, and the cost model behind the planner.

The security table is the one in the Homomorphic Encryption Standard (Albrecht et al., 2018, table 1,
classical 128-bit security, ternary secret): the largest total coefficient-modulus size allowed for each
ring degree. SEAL refuses anything above it (``sec_level_type::tc128``); we refuse it first, with a message.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from modelshield.errors import UserError
from modelshield.private_inference import _seal

__all__ = ["MAX_COEFF_BITS_128", "CKKSParams", "choose_params", "OpCosts", "DEFAULT_COSTS"]

#: ring degree N -> maximum total bits of the coefficient modulus for 128-bit classical security
MAX_COEFF_BITS_128: dict[int, int] = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
MAX_PRIME_BITS = 60
SCALES = (30, 28, 26, 25)  # scale bits tried, most precise first


class InfeasibleError(UserError):
    """No 128-bit-secure parameter set fits the circuit (exit 2)."""


@dataclass(frozen=True)
class CKKSParams:
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int
    depth: int

    @property
    def total_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def security_bits(self) -> int:
        return 128 if self.total_bits <= MAX_COEFF_BITS_128.get(self.poly_modulus_degree, -1) else 0

    def ciphertext_bytes(self, level_primes: int | None = None) -> int:
        """Uncompressed size of a fresh ciphertext (2 polynomials x primes x N x 8 bytes)."""
        k = len(self.coeff_mod_bit_sizes) - 1 if level_primes is None else level_primes
        return 2 * k * self.poly_modulus_degree * 8

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["coeff_mod_bit_sizes"] = list(self.coeff_mod_bit_sizes)
        d.update(total_bits=self.total_bits, max_bits_128=MAX_COEFF_BITS_128[self.poly_modulus_degree],
                 security_bits=self.security_bits, slots=self.slots, scale=f"2^{self.scale_bits}")
        return d


def check_params(p: CKKSParams) -> None:
    """Refuse parameters above the 128-bit table (the message names the numbers)."""
    limit = MAX_COEFF_BITS_128.get(p.poly_modulus_degree)
    if limit is None:
        raise InfeasibleError(f"ring degree {p.poly_modulus_degree} is not in the HE-standard table "
                              f"({', '.join(map(str, MAX_COEFF_BITS_128))})")
    if p.total_bits > limit:
        raise InfeasibleError(f"coefficient modulus {list(p.coeff_mod_bit_sizes)} = {p.total_bits} bits exceeds "
                              f"the 128-bit limit of {limit} bits for N={p.poly_modulus_degree}")
    if max(p.coeff_mod_bit_sizes) > MAX_PRIME_BITS:
        raise InfeasibleError(f"a prime of more than {MAX_PRIME_BITS} bits: {list(p.coeff_mod_bit_sizes)}")


def choose_params(depth: int, max_abs: float, *, min_degree: int = 4096) -> CKKSParams:
    """The smallest 128-bit-secure CKKS parameters for a circuit of multiplicative ``depth`` whose values
    stay below ``max_abs`` in magnitude: chain ``[p0, scale x depth, special]`` with ``p0`` holding the
    scale plus the integer bits (8 bits of margin)."""
    if depth < 1:
        raise InfeasibleError("a circuit of depth 0 needs no encryption parameters")
    int_bits = max(1, math.ceil(math.log2(max(max_abs, 1.0) + 1.0))) + 8
    for n in sorted(MAX_COEFF_BITS_128):
        if n < min_degree:
            continue
        for s in SCALES:
            p0 = min(MAX_PRIME_BITS, s + int_bits)
            if p0 - s < int_bits - 4:  # not even 4 bits of margin left for the integer part
                continue
            chain = (p0, *([s] * depth), max(p0, s))
            p = CKKSParams(n, chain, s, depth)
            if p.total_bits <= MAX_COEFF_BITS_128[n]:
                return p
    biggest = max(MAX_COEFF_BITS_128)
    raise InfeasibleError(f"multiplicative depth {depth} needs more than {MAX_COEFF_BITS_128[biggest]} bits of "
                          f"coefficient modulus: no 128-bit-secure CKKS parameters (N <= {biggest}) allow it; "
                          "use fewer layers or lower-degree activations")


def widen_last_prime(p: CKKSParams) -> CKKSParams:
    """The same ring degree with the first (and special) prime raised as far as the 128-bit table allows
    (at most 60 bits): more room above the logits, which the packed layout fills with masks."""
    limit = MAX_COEFF_BITS_128[p.poly_modulus_degree]
    middle = p.coeff_mod_bit_sizes[1:-1]
    for p0 in range(MAX_PRIME_BITS, p.coeff_mod_bit_sizes[0], -1):
        chain = (p0, *middle, p0)
        if sum(chain) <= limit:
            return CKKSParams(p.poly_modulus_degree, chain, p.scale_bits, p.depth)
    return p


@dataclass(frozen=True)
class OpCosts:
    """Milliseconds per operation at ``ref_degree`` with ``ref_primes`` primes; scaled by N log N x primes.

    ``keygen``: the client's context and public-context serialization; ``encrypt``: encode + encrypt +
    serialize one ciphertext; ``load``: the server parsing one; ``mul_ct``: multiply, relinearise, rescale."""

    keygen: float = 700.0
    encrypt: float = 35.0
    load: float = 8.0
    mul_plain: float = 1.5
    mul_vector: float = 4.0  # slot-wise product with a freshly encoded vector (the packed layout)
    add: float = 0.4
    rescale: float = 5.0
    mul_ct: float = 40.0
    decrypt: float = 6.0
    ref_degree: int = 8192
    ref_primes: int = 4
    calibrated: bool = False
    per_sample_ms: float | None = None  # measured per-sample latency (TenSEAL mm path), when calibrated

    def at(self, op: str, n: int, primes: int) -> float:
        f = (n * math.log2(n)) / (self.ref_degree * math.log2(self.ref_degree)) * primes / self.ref_primes
        return float(getattr(self, op)) * f


#: measured on the project's shared, loaded 2-core box with TenSEAL 0.3.18 (N=8192, 4 primes)
DEFAULT_COSTS = OpCosts()


def calibrate(params: CKKSParams, repeats: int = 3, per_sample: tuple[list[tuple[int, int]], CKKSParams] | None = None
              ) -> OpCosts:
    """Measure the per-operation costs here at ``params`` (a second or two); needs TenSEAL. With
    ``per_sample`` (the dense shapes and the per-sample parameters) also time one encrypted sample through
    TenSEAL's ``mm`` path on random weights."""
    t: dict[str, float] = {}
    start = time.perf_counter()
    client = _seal.Client.create(params, galois=False)
    blob = client.public_context_bytes()
    t["keygen"] = (time.perf_counter() - start) * 1e3
    server = _seal.Evaluator(blob)
    x = np.linspace(-1, 1, params.slots)

    def timed(name: str, fn) -> object:  # type: ignore[no-untyped-def]
        begin = time.perf_counter()
        for _ in range(repeats):
            out = fn()
        t[name] = (time.perf_counter() - begin) / repeats * 1e3
        return out

    data = timed("encrypt", lambda: client.encrypt_bytes(x))
    ct = timed("load", lambda: server.load(data))
    prod = timed("mul_plain", lambda: server.mul_scalar(ct, 0.37, server.q_next(ct)))
    timed("mul_vector", lambda: server.mul_vector(ct, x, server.q_next(ct)))
    timed("add", lambda: server.add_inplace(prod, prod))
    timed("rescale", lambda: server.rescale(server.mul_scalar(ct, 0.37, server.q_next(ct))))
    t["rescale"] -= t["mul_plain"]
    sq = timed("mul_ct", lambda: server.square(ct))
    timed("decrypt", lambda: client.decrypt(sq, 8))
    ps = None
    if per_sample is not None:
        ps = _time_per_sample(*per_sample)
    primes = len(params.coeff_mod_bit_sizes) - 1
    return OpCosts(ref_degree=params.poly_modulus_degree, ref_primes=primes, calibrated=True, per_sample_ms=ps,
                   **{k: round(max(v, 0.0), 4) for k, v in t.items()})


def _time_per_sample(shapes: list[tuple[int, int]], params: CKKSParams) -> float:
    ts = _seal.import_tenseal()
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                     coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
    ctx.global_scale = 2.0 ** params.scale_bits
    ctx.generate_galois_keys()
    rng = np.random.default_rng(0)
    begin = time.perf_counter()
    v = ts.ckks_vector(ctx, rng.normal(size=shapes[0][0] + 1).tolist())
    for k, (n_in, n_out) in enumerate(shapes):
        last = k == len(shapes) - 1
        v = v.mm(rng.normal(size=(n_in + 1, n_out + (0 if last else 1))).tolist())
        if k < len(shapes) - 1:
            v = v.square()
    v.decrypt()
    return (time.perf_counter() - begin) * 1e3
