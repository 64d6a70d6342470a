"""Secure aggregation within one group of k clients (Bonawitz et al., CCS 2017, "SecAgg"), in process.

Protocol, per round (clients are numbered ``0..k-1`` inside the group):

1. **Advertise.** Each client makes a fresh X25519 key pair and sends its public key to the server.
2. **Share.** Each client draws a self-mask seed ``b_i`` and Shamir-shares both ``b_i`` and its X25519
   private key ``s_i`` among the k clients with threshold ``k - t`` (``t`` = dropouts tolerated).
3. **Masked input.** Client ``i`` encodes its update as fixed point in the ring Z/2^64 and sends
   ``y_i = x_i + PRG(b_i) + sum_{j>i} PRG(s_ij) - sum_{j<i} PRG(s_ij)`` where ``s_ij`` is
   HKDF-SHA256 of the X25519 agreement between ``i`` and ``j``; PRG is ChaCha20. Every ``y_i`` is
   uniform on the ring whatever ``x_i`` is (one-time pad), so one masked vector says nothing about its update.
4. **Unmask.** The server announces the survivors ``U``. Each survivor returns its shares of ``b_i`` for
   ``i`` in ``U`` and its shares of ``s_j`` for dropped ``j`` -- never both for the same client (fail closed).
   With ``|U| >= k - t`` the server rebuilds the self masks and the dropped clients' pair masks and
   gets exactly ``sum_{i in U} x_i``. With fewer survivors it raises :class:`SecurityError`: the round
   fails loudly, it never "completes" without the group's update.

The threshold ``k - t`` must exceed ``k/2`` (``2t < k``) so that a server lying about who dropped cannot
collect both kinds of share for one client from two disjoint majorities.

Not here (see docs/federated.md): the shares travel in the clear between in-process objects (SecAgg
encrypts them client-to-client through the server with a second key pair), there is no signature/PKI
against an actively malicious server, and no Flower transport.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from modelshield.errors import SecurityError, UserError

__all__ = [
    "FRACTION_BITS",
    "SecAggTranscript",
    "decode",
    "encode",
    "prg",
    "secure_group_sum",
    "shamir_combine",
    "shamir_split",
]

#: Fixed-point fractional bits: a value x is sent as round(x * 2**FRACTION_BITS) mod 2**64.
#: Sums of absolute value below 2**(63 - FRACTION_BITS) (~5.5e11) decode exactly.
FRACTION_BITS = 24
_PRIME = 2**521 - 1  # Mersenne prime field for Shamir shares of 256-bit secrets


def encode(x: np.ndarray) -> np.ndarray:
    """Fixed-point encode floats into the ring Z/2^64 (uint64, wrapping)."""
    q = np.round(np.asarray(x, dtype=np.float64) * float(2**FRACTION_BITS))
    return q.astype(np.int64).view(np.uint64)


def decode(r: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode` for a (sum of) encoded vectors: two's-complement then scale."""
    return np.asarray(r, dtype=np.uint64).view(np.int64).astype(np.float64) / float(2**FRACTION_BITS)


def prg(seed: bytes, n: int) -> np.ndarray:
    """``n`` pseudo-random uint64 from a 32-byte seed (ChaCha20 keystream, zero nonce: one seed, one use)."""
    enc = Cipher(algorithms.ChaCha20(seed, b"\x00" * 16), mode=None).encryptor()
    return np.frombuffer(enc.update(b"\x00" * (8 * n)), dtype=np.uint64).copy()


def shamir_split(secret: int, n: int, threshold: int) -> list[tuple[int, int]]:
    """Shamir shares ``(x, f(x))`` for ``x = 1..n`` of ``secret`` over GF(2^521 - 1)."""
    if not 1 <= threshold <= n:
        raise UserError(f"Shamir needs 1 <= threshold <= n, got threshold={threshold}, n={n}")
    coeffs = [secret % _PRIME] + [secrets.randbelow(_PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, n + 1):
        y = 0
        for c in reversed(coeffs):
            y = (y * x + c) % _PRIME
        shares.append((x, y))
    return shares


def shamir_combine(shares: Iterable[tuple[int, int]]) -> int:
    """Lagrange interpolation at 0 of the given shares (needs at least the threshold count)."""
    pts = list(shares)
    secret = 0
    for i, (xi, yi) in enumerate(pts):
        num, den = 1, 1
        for j, (xj, _) in enumerate(pts):
            if i != j:
                num = (num * -xj) % _PRIME
                den = (den * (xi - xj)) % _PRIME
        secret = (secret + yi * num * pow(den, -1, _PRIME)) % _PRIME
    return secret


def _pair_seed(own: X25519PrivateKey, peer: X25519PublicKey, lo: int, hi: int, round_tag: bytes) -> bytes:
    shared = own.exchange(peer)
    info = b"modelshield-secagg-pair|" + round_tag + b"|" + f"{lo}-{hi}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _raw(pk: X25519PublicKey) -> bytes:
    return pk.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass
class SecAggTranscript:
    """Everything the server received in one group round (for tests and audits)."""

    public_keys: dict[int, bytes] = field(default_factory=dict)
    masked: dict[int, np.ndarray] = field(default_factory=dict)
    #: shares returned in the unmask step: ``(holder, owner, kind)`` -> share, kind ``"b"`` or ``"s"``
    revealed: dict[tuple[int, int, str], tuple[int, int]] = field(default_factory=dict)
    survivors: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


class _Client:
    """One honest SecAgg client (in process)."""

    def __init__(self, idx: int, update: np.ndarray) -> None:
        self.idx = idx
        self.x = encode(update)
        self.sk = X25519PrivateKey.generate()
        self.b = os.urandom(32)
        self.held: dict[tuple[int, str], tuple[int, int]] = {}  # shares this client holds, by (owner, kind)

    def masked_input(self, pks: Mapping[int, X25519PublicKey], round_tag: bytes) -> np.ndarray:
        n = self.x.shape[0]
        y = self.x + prg(self.b, n)
        for j, pk in pks.items():
            if j == self.idx:
                continue
            lo, hi = min(self.idx, j), max(self.idx, j)
            m = prg(_pair_seed(self.sk, pk, lo, hi, round_tag), n)
            y = y + m if self.idx < j else y - m
        return y

    def unmask_shares(self, survivors: set[int], dropped: set[int]) -> dict[tuple[int, str], tuple[int, int]]:
        if survivors & dropped:
            # a client both alive and dropped: the server is trying to get both secrets of someone
            raise SecurityError("secure aggregation: the server asked for both shares of one client; refused")
        out = {}
        for owner in survivors:
            out[(owner, "b")] = self.held[(owner, "b")]
        for owner in dropped:
            out[(owner, "s")] = self.held[(owner, "s")]
        return out


def secure_group_sum(
    updates: np.ndarray,
    *,
    dropout_threshold: int,
    dropped: Iterable[int] = (),
    round_tag: bytes = b"r0",
    transcript: SecAggTranscript | None = None,
) -> np.ndarray:
    """Run one SecAgg round over the rows of ``updates`` (one per client) and return the survivors' sum.

    ``dropped`` are clients that go offline after sharing their keys and before sending a masked input.
    Raises :class:`SecurityError` when more than ``dropout_threshold`` clients drop (the sum cannot be
    unmasked) and :class:`UserError` for a threshold the protocol cannot use securely."""
    arr = np.asarray(updates, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise UserError(f"secure aggregation needs a non-empty 2-D stack of updates, got shape {arr.shape}")
    k = arr.shape[0]
    t = dropout_threshold
    if k < 2:
        raise UserError("secure aggregation needs at least 2 clients in a group (1 would reveal its update)")
    if not isinstance(t, int) or t < 0 or 2 * t >= k:
        raise UserError(f"secure aggregation needs 0 <= dropouts t < k/2: t={t!r}, k={k}")
    drop = set(int(d) for d in dropped)
    if not drop <= set(range(k)):
        raise UserError(f"dropped clients {sorted(drop)} are not in the group 0..{k - 1}")
    tr = transcript if transcript is not None else SecAggTranscript()
    threshold = k - t

    clients = [_Client(i, arr[i]) for i in range(k)]
    pks = {c.idx: c.sk.public_key() for c in clients}
    tr.public_keys = {i: _raw(pk) for i, pk in pks.items()}
    # Share: s_i (the X25519 private key as an integer) and b_i, one share to each peer.
    for c in clients:
        s_int = int.from_bytes(c.sk.private_bytes_raw(), "big")
        for kind, secret in (("s", s_int), ("b", int.from_bytes(c.b, "big"))):
            for holder, share in zip(clients, shamir_split(secret, k, threshold), strict=True):
                holder.held[(c.idx, kind)] = share

    survivors = [i for i in range(k) if i not in drop]
    tr.survivors, tr.dropped = survivors, sorted(drop)
    for i in survivors:
        tr.masked[i] = clients[i].masked_input(pks, round_tag)
    if len(survivors) < threshold:
        raise SecurityError(
            f"secure aggregation failed: {len(drop)} of {k} clients dropped, more than the threshold t={t}; "
            "the group sum cannot be unmasked and the round has no update from this group"
        )
    sset = set(survivors)
    responses = {i: clients[i].unmask_shares(sset, drop) for i in survivors}
    for holder, resp in responses.items():
        for (owner, kind), share in resp.items():
            tr.revealed[(holder, owner, kind)] = share

    n = arr.shape[1]
    total = np.zeros(n, dtype=np.uint64)
    for i in survivors:
        total = total + tr.masked[i]
    for i in survivors:  # remove self masks
        b = shamir_combine(responses[h][(i, "b")] for h in survivors[:threshold])
        total = total - prg(b.to_bytes(32, "big"), n)
    for j in drop:  # remove the dropped clients' pair masks with the survivors
        s_int = shamir_combine(responses[h][(j, "s")] for h in survivors[:threshold])
        sk_j = X25519PrivateKey.from_private_bytes(s_int.to_bytes(32, "big"))
        for i in survivors:
            lo, hi = min(i, j), max(i, j)
            m = prg(_pair_seed(sk_j, pks[i], lo, hi, round_tag), n)
            # survivor i added +m if i < j, -m if i > j; undo it
            total = total - m if i < j else total + m
    return decode(total)
