"""The CKKS primitives, on TenSEAL and its SEAL binding (``tenseal.sealapi``).

The client (:class:`Client`) makes the keys, keeps the secret key and hands the server a *public*
context (``make_context_public()``: public, relinearisation and, when asked, Galois keys; never the
secret key). The server side (:class:`Evaluator`) is built from those bytes only and refuses a context
that carries a secret key (fail closed: a client that leaks its key is told so, not served).

Scale management is exact: every plaintext factor is encoded at ``q * Delta / ct.scale``, where ``q`` is
the prime the next rescale drops, so every sum of products lands back on exactly ``Delta``; no scale drift,
and summands from different layers always add.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from modelshield.errors import FormatError, MissingExtraError, SecurityError

__all__ = ["Client", "Evaluator", "import_tenseal"]


def import_tenseal() -> Any:
    try:
        import tenseal  # lazy: heavy optional extra 'private'
        import tenseal.sealapi
    except ImportError as exc:
        raise MissingExtraError("HE inference needs TenSEAL: pip install 'modelshield[private]'") from exc
    return tenseal


class _Bytes:
    """SEAL's binding saves and loads ciphertexts through file paths only: one private temp folder."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ms-he-")
        self._n = 0

    def dump(self, ct: Any) -> bytes:
        self._n += 1
        path = os.path.join(self._dir.name, f"{self._n}.ct")
        ct.save(path)
        with open(path, "rb") as fh:
            data = fh.read()
        os.unlink(path)
        return data

    def load(self, seal_context: Any, data: bytes) -> Any:
        ts = import_tenseal()
        self._n += 1
        path = os.path.join(self._dir.name, f"{self._n}.ct")
        with open(path, "wb") as fh:
            fh.write(data)
        ct = ts.sealapi.Ciphertext()
        try:
            ct.load(seal_context, path)
        except Exception as exc:  # SEAL refuses a malformed or foreign ciphertext
            raise FormatError(f"not a ciphertext for these parameters ({str(exc).splitlines()[0]})") from None
        finally:
            os.unlink(path)
        return ct

    def close(self) -> None:
        self._dir.cleanup()


class Client:
    """Holds the secret key: encrypts inputs, decrypts results."""

    def __init__(self, ctx: Any, params: Any) -> None:
        self.params = params
        ts = import_tenseal()
        self._seal = ctx.seal_context().data
        secret = ctx.secret_key().data
        self._enc = ts.sealapi.CKKSEncoder(self._seal)
        self._dec = ts.sealapi.Decryptor(self._seal, secret)
        # symmetric (secret-key) encryption: only the client encrypts; SEAL then sends a seed in place of
        # one of the two polynomials, halving the request, and encrypting takes half the time
        self._encryptor = ts.sealapi.Encryptor(self._seal, secret)
        self._scale = 2.0 ** params.scale_bits
        self._io = _Bytes()
        # the evaluation context for the server: the same context made public (drops the secret key;
        # the client keeps it in its SEAL decryptor and encryptor only)
        ctx.make_context_public()
        if ctx.has_secret_key():  # pragma: no cover - TenSEAL contract
            raise SecurityError("TenSEAL kept the secret key in a public context")
        self._public = ctx.serialize()
        self.public_ctx = ctx

    @classmethod
    def create(cls, params: Any, *, galois: bool = False) -> Client:
        ts = import_tenseal()
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                         coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
        ctx.global_scale = 2.0 ** params.scale_bits
        if galois:
            ctx.generate_galois_keys()
        return cls(ctx, params)

    def public_context_bytes(self) -> bytes:
        """The evaluation context for the server: no secret key (``make_context_public``)."""
        return self._public

    def encrypt_bytes(self, values: np.ndarray) -> bytes:
        """A fresh ciphertext of ``values`` (at most N/2), serialized (seeded, compressed)."""
        ts = import_tenseal()
        pt = ts.sealapi.Plaintext()
        self._enc.encode(np.asarray(values, dtype=np.float64).tolist(), self._scale, pt)
        return self._io.dump(self._encryptor.encrypt_symmetric(pt))

    def decrypt(self, ct: Any, n: int) -> np.ndarray:
        ts = import_tenseal()
        pt = ts.sealapi.Plaintext()
        self._dec.decrypt(ct, pt)
        return np.asarray(self._enc.decode_double(pt)[:n])

    def dump(self, ct: Any) -> bytes:
        return self._io.dump(ct)

    def load(self, data: bytes) -> Any:
        return self._io.load(self._seal, data)


class Evaluator:
    """The server side: built from a public context's bytes only."""

    def __init__(self, public_context: bytes) -> None:
        ts = import_tenseal()
        try:
            ctx = ts.context_from(public_context)
        except Exception as exc:  # protobuf or SEAL parse errors
            raise FormatError(f"not a TenSEAL context ({type(exc).__name__})") from None
        if ctx.has_secret_key() or ctx.is_private():
            raise SecurityError("the evaluation context carries the client's secret key; refusing to hold it "
                                "(the client must send make_context_public())")
        self.ctx = ctx
        self._seal = ctx.seal_context().data
        self._ev = ts.sealapi.Evaluator(self._seal)
        self._enc = ts.sealapi.CKKSEncoder(self._seal)
        self._relin = ctx.relin_keys().data
        self.delta = float(ctx.global_scale)
        self._io = _Bytes()
        self._ts = ts

    # -- bytes
    def load(self, data: bytes) -> Any:
        return self._io.load(self._seal, data)

    def dump(self, ct: Any) -> bytes:
        return self._io.dump(ct)

    # -- levels and scales
    def level(self, ct: Any) -> int:
        return int(ct.coeff_modulus_size())

    def q_next(self, ct: Any) -> float:
        """The prime the next rescale of ``ct`` drops."""
        data = self._seal.get_context_data(ct.parms_id())
        return float(data.parms().coeff_modulus()[-1].value())

    def headroom(self, ct: Any) -> float:
        """The largest magnitude a value may reach once ``ct`` is rescaled to the last prime (at scale delta)."""
        q0 = float(self._seal.get_context_data(ct.parms_id()).parms().coeff_modulus()[0].value())
        return q0 / self.delta / 2.0

    def mod_switch_to(self, ct: Any, target: Any) -> Any:
        if self.level(ct) == self.level(target):
            return ct
        out = self._ts.sealapi.Ciphertext()
        self._ev.mod_switch_to(ct, target.parms_id(), out)
        return out

    # -- arithmetic
    def copy(self, ct: Any) -> Any:
        out = self._ts.sealapi.Ciphertext()
        self._ev.negate(ct, out)
        self._ev.negate_inplace(out)
        return out

    def mul_scalar(self, ct: Any, w: float, q: float) -> Any:
        """``ct * w`` encoded so that the product, rescaled by ``q``, has scale exactly ``delta``."""
        pt = self._ts.sealapi.Plaintext()
        self._enc.encode(float(w), ct.parms_id(), q * self.delta / ct.scale, pt)
        out = self._ts.sealapi.Ciphertext()
        self._ev.multiply_plain(ct, pt, out)
        out.scale = q * self.delta  # the exact intended scale (the product's differs by rounding only)
        return out

    def add_inplace(self, acc: Any, ct: Any) -> Any:
        self._ev.add_inplace(acc, ct)
        return acc

    def mul_vector(self, ct: Any, w: np.ndarray, q: float) -> Any:
        """``ct * w`` slot-wise (``w`` padded with zeros), product scale ``q * delta`` as :meth:`mul_scalar`."""
        pt = self._ts.sealapi.Plaintext()
        self._enc.encode(np.asarray(w, dtype=np.float64).tolist(), ct.parms_id(), q * self.delta / ct.scale, pt)
        out = self._ts.sealapi.Ciphertext()
        self._ev.multiply_plain(ct, pt, out)
        out.scale = q * self.delta
        return out

    def add_vector_inplace(self, acc: Any, b: np.ndarray) -> Any:
        pt = self._ts.sealapi.Plaintext()
        self._enc.encode(np.asarray(b, dtype=np.float64).tolist(), acc.parms_id(), acc.scale, pt)
        self._ev.add_plain_inplace(acc, pt)
        return acc

    def add_scalar_inplace(self, acc: Any, b: float) -> Any:
        pt = self._ts.sealapi.Plaintext()
        self._enc.encode(float(b), acc.parms_id(), acc.scale, pt)
        self._ev.add_plain_inplace(acc, pt)
        return acc

    def rescale(self, ct: Any) -> Any:
        self._ev.rescale_to_next_inplace(ct)
        return ct

    def multiply(self, a: Any, b: Any) -> Any:
        b = self.mod_switch_to(b, a) if self.level(b) > self.level(a) else b
        a = self.mod_switch_to(a, b) if self.level(a) > self.level(b) else a
        out = self._ts.sealapi.Ciphertext()
        self._ev.multiply(a, b, out)
        self._ev.relinearize_inplace(out, self._relin)
        self._ev.rescale_to_next_inplace(out)
        return out

    def square(self, ct: Any) -> Any:
        out = self._ts.sealapi.Ciphertext()
        self._ev.square(ct, out)
        self._ev.relinearize_inplace(out, self._relin)
        self._ev.rescale_to_next_inplace(out)
        return out
