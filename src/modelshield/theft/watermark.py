"""Black-box ownership verification of trigger-set watermarks, with a binomial test.

A trigger set is a secret list of inputs with labels the owner assigned at random and taught to the
model (see :mod:`modelshield.harden.watermark`). A model trained without knowing those labels agrees
with each of them with probability ``1 / n_classes``, *whatever* it predicts on the trigger inputs,
because the labels are a uniformly random (balanced) assignment independent of the model. Its number
of agreements is ``Binomial(n, 1 / n_classes)`` for i.i.d. labels, and less dispersed than that for a
balanced permutation (sampling without replacement), so the binomial p-value of the observed
agreement is a valid (conservative) test of "this model was built without the owner's secret".
``verify_watermark(..., chance=...)`` accepts a measured chance level instead (e.g. the mean agreement
of independently trained models, :func:`measured_chance`) for trigger sets whose labels were not drawn
uniformly.

Ownership proof (what :func:`verify_watermark` checks before any agreement counts)
-----------------------------------------------------------------------------------
An agreement test alone proves nothing: anyone can label noise inputs with a model's own answers
and obtain a "trigger set" that any model (and its copies) reproduces. So a trigger set is bound to
its owner and to a time:

1. **Keyed derivation.** Trigger inputs and labels are derived from a secret 256-bit *watermark
   key* with a keyed PRF (HMAC-SHA256 expanded by SHAKE-256, :func:`derive_trigger_set`); the labels
   are a keyed random balanced permutation, independent of any model. Given the key, anyone re-derives
   the same set, so nobody can present labels of their choosing (e.g. a model's own answers): finding
   a key whose labels match a model's answers on ``n`` triggers takes about ``n_classes ** n`` tries.
2. **Signed commitment.** At embedding time the owner signs (Ed25519 or ECDSA, the keys of
   ``modelshield protect keygen-signing``) a commitment: the SHA-256 digest of the trigger set, a
   commitment to the watermark key, the derivation parameters and a UTC timestamp
   (:class:`Commitment`). The owner publishes it (or has it timestamped by a third party) when the model
   is released, and keeps the key and the trigger set secret until a dispute.
3. **Verification** checks, in this order, and refuses (:class:`~modelshield.errors.IntegrityError`,
   exit 3) at the first failure: the commitment's signature under the owner's public key; that the
   watermark key opens the key commitment (constant-time compare); that the key re-derives exactly the
   committed trigger set (and the trigger file, when given, is that set). Only then is the agreement
   tested.

Threat model and limits. The p-value is that of *one* pre-committed key. An adversary who tries ``K``
keys against a suspect model before committing can reach ``p <= K * alpha`` by luck; the commitment's
timestamp (published before the suspect appeared) is what rules such grinding out, and the default
``alpha`` (1e-6) makes it cost about a million trigger sets of queries. The timestamp is the owner's
own clock: it is only as trustworthy as where the commitment was published. :func:`trigger_agreement`
is the bare statistical test (no proof), for owners measuring their own copies.

References
----------
.. [1] Y. Adi, C. Baum, M. Cisse, B. Pinkas, J. Keshet. "Turning Your Weakness Into a Strength:
   Watermarking Deep Neural Networks by Backdooring". USENIX Security 2018.
.. [2] J. Zhang et al. "Protecting Intellectual Property of Deep Neural Networks with Watermarking".
   AsiaCCS 2018.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelshield._io import write_bytes_safely
from modelshield.errors import DataError, FormatError, IntegrityError
from modelshield.protect.keys import KEY_LEN, PrivateKey, PublicKey, load_key_file, load_public_key, public_pem
from modelshield.theft._records import read_input, read_record, record_bytes
from modelshield.theft.torchutil import as_model

__all__ = [
    "COMMITMENT_FORMAT",
    "DEFAULT_ALPHA",
    "TRIGGER_FORMAT",
    "Commitment",
    "OwnershipClaim",
    "TriggerSet",
    "WatermarkVerdict",
    "binomial_p_value",
    "derivation_params",
    "derive_trigger_set",
    "key_commitment",
    "new_watermark_key",
    "false_claim_rate",
    "measured_chance",
    "open_claim",
    "trigger_agreement",
    "trigger_digest",
    "verify_watermark",
]

#: Format tag stored in every trigger-set NPZ file.
TRIGGER_FORMAT = "modelshield.trigger-set/1"
#: Format tag of a signed watermark commitment (JSON).
COMMITMENT_FORMAT = "modelshield.watermark-commitment/1"
#: Name of the keyed derivation of trigger sets.
DERIVATION = "hmac-sha256+shake256/1"
#: Default significance level of an ownership claim (see the module notes on key grinding).
DEFAULT_ALPHA = 1e-6
_DOMAIN = b"modelshield.watermark/1\x00"


@dataclass(frozen=True, kw_only=True)
class TriggerSet:
    """A watermark's secret: trigger inputs ``X`` and their assigned class *indices* ``labels``.

    ``labels`` index the model's class order (``model.classes``). ``chance`` is the agreement an
    independent model has with the labels (``1 / n_classes`` for uniformly drawn labels).
    """

    X: np.ndarray
    labels: np.ndarray
    n_classes: int
    kind: str = "noise"
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float32)
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or len(labels) != len(X) or len(X) == 0:
            raise DataError(f"a trigger set needs one label per input; got {len(labels)} labels for {len(X)}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError("trigger labels must be class indices (integers)")
        if self.n_classes < 2 or labels.min() < 0 or labels.max() >= self.n_classes:
            raise DataError(f"trigger labels must lie in 0..{self.n_classes - 1}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "labels", labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def chance(self) -> float:
        return 1.0 / self.n_classes

    def to_bytes(self) -> bytes:
        """The NPZ encoding (no pickles: plain arrays and a JSON header)."""
        header = {"format": TRIGGER_FORMAT, "n_classes": int(self.n_classes), "kind": self.kind,
                  "seed": self.seed, "meta": self.meta}
        return record_bytes(self.X, self.labels, header)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the NPZ file, readable by its owner only (mode 0600: it is a secret), atomically;
        refuses to replace an existing file unless ``overwrite``."""
        return write_bytes_safely(path, self.to_bytes(), overwrite, private=True)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "trigger set") -> TriggerSet:
        header, X, labels = read_record(data, source=source, what="trigger set", fmt=TRIGGER_FORMAT)
        return cls(X=X, labels=labels, n_classes=int(header["n_classes"]), kind=str(header.get("kind", "")),
                   seed=header.get("seed"), meta=dict(header.get("meta") or {}))

    @classmethod
    def load(cls, path: str | Path) -> TriggerSet:
        data, source = read_input(path, "trigger set")
        return cls.from_bytes(data, source=source)


@dataclass(frozen=True, kw_only=True)
class WatermarkVerdict:
    """Outcome of :func:`verify_watermark`."""

    p_value: float
    agreement: float
    matches: int
    n: int
    chance: float
    alpha: float
    created: str | None = None
    proof: str = "none"

    @property
    def owned(self) -> bool:
        """True when the agreement is significant at level ``alpha`` (one-sided)."""
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {"owned": self.owned, "p_value": self.p_value, "agreement": self.agreement,
                "matches": self.matches, "n": self.n, "chance": self.chance, "alpha": self.alpha,
                "proof": self.proof, "committed_at": self.created}


def binomial_p_value(matches: int, n: int, chance: float) -> float:
    """One-sided p-value ``P[Binomial(n, chance) >= matches]``."""
    from scipy.stats import binom  # lazy: scipy is slow to import; only this computation needs it

    if not 0.0 < chance < 1.0:
        raise DataError(f"chance agreement must lie strictly between 0 and 1, got {chance}")
    return float(binom.sf(int(matches) - 1, int(n), float(chance)))


def _agreement(model: Any, triggers: TriggerSet) -> np.ndarray:
    m = as_model(model, triggers.X.shape[1:])
    pred = m.predict_index(triggers.X)
    if m.n_classes != triggers.n_classes:
        raise DataError(f"the model has {m.n_classes} classes but the trigger set was made for "
                        f"{triggers.n_classes}")
    return pred == triggers.labels


def trigger_agreement(
    model: Any,
    triggers: TriggerSet,
    *,
    alpha: float = DEFAULT_ALPHA,
    chance: float | None = None,
) -> WatermarkVerdict:
    """The bare agreement test of ``model`` on ``triggers`` (binomial, one-sided). **Not an ownership
    proof**: it does not check where the trigger set came from (a set labelled with a model's own
    answers passes it). Use it to measure your own copies; claim ownership with
    :func:`verify_watermark`.

    ``chance`` is the agreement of an independent model: ``1 / n_classes`` by default (exact for
    labels drawn uniformly at random), or a measured value from :func:`measured_chance`.
    """
    agree = _agreement(model, triggers)
    k, n = int(agree.sum()), len(agree)
    p0 = triggers.chance if chance is None else float(chance)
    return WatermarkVerdict(p_value=binomial_p_value(k, n, p0), agreement=k / n, matches=k, n=n, chance=p0,
                            alpha=float(alpha))


def verify_watermark(
    model: Any,
    *,
    commitment: Commitment,
    public_key: PublicKey,
    key: bytes,
    triggers: TriggerSet | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> WatermarkVerdict:
    """Test whether a suspect ``model`` carries the owner's watermark, with proof of origin.

    Before any agreement counts, the ``commitment`` must be signed by ``public_key``, the watermark
    ``key`` must open its key commitment, and the key must re-derive exactly the committed trigger set
    (``triggers``, when given, must be that set). Any failure raises
    :class:`~modelshield.errors.IntegrityError` (fail closed). Then the binomial agreement test runs on
    the re-derived set.

    Parameters
    ----------
    model : the suspect, any adapter or object :func:`modelshield.load_model` wraps; only its
        predictions on the trigger inputs are used.
    commitment : the owner's signed :class:`Commitment`, published at embedding time.
    public_key : the owner's public key (Ed25519 or ECDSA), obtained independently of the claim.
    key : the owner's 32-byte watermark key, revealed to the verifier.
    alpha : significance level; ``owned`` is ``p_value < alpha``.

    Examples
    --------
    >>> v = verify_watermark(suspect, commitment=Commitment.load("wm.commit.json"),  # doctest: +SKIP
    ...                      public_key=load_public_key("owner.pub"), key=load_key_file("wm.key"))
    >>> v.owned, v.p_value  # doctest: +SKIP
    (True, 7.9e-31)
    """
    derived = commitment.open(public_key, key, triggers)
    v = trigger_agreement(model, derived, alpha=alpha)
    return WatermarkVerdict(p_value=v.p_value, agreement=v.agreement, matches=v.matches, n=v.n, chance=v.chance,
                            alpha=v.alpha, created=commitment.created, proof="verified")


def measured_chance(models: Sequence[Any], triggers: TriggerSet) -> float:
    """Mean trigger agreement of independently trained ``models`` (a measured null), at least
    ``1 / n_classes`` so that a lucky calibration never makes the test anti-conservative."""
    rates = [float(_agreement(m, triggers).mean()) for m in models]
    return max(float(np.mean(rates)) if rates else 0.0, triggers.chance)


def false_claim_rate(
    models: Sequence[Any], triggers: TriggerSet, *, alpha: float = DEFAULT_ALPHA, chance: float | None = None
) -> float:
    """Fraction of independently trained ``models`` that :func:`verify_watermark` would call owned."""
    if not models:
        raise DataError("false_claim_rate needs at least one independent model")
    verdicts = [trigger_agreement(m, triggers, alpha=alpha, chance=chance) for m in models]
    return float(np.mean([v.owned for v in verdicts]))


# -- keyed derivation ----------------------------------------------------------------------------
def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _stream(key: bytes, label: str, params: dict[str, Any], nbytes: int) -> bytes:
    """``nbytes`` pseudo-random bytes: SHAKE-256 of HMAC-SHA256(key, domain | label | params)."""
    seed = hmac.new(key, _DOMAIN + label.encode() + b"\x00" + _canonical(params), hashlib.sha256).digest()
    return hashlib.shake_256(seed).digest(nbytes)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_LEN:
        raise DataError(f"a watermark key has {KEY_LEN} bytes (make one with modelshield protect keygen)")
    return bytes(key)


def _box(value: np.ndarray | float | None, default: float, d: int) -> list[float]:
    arr = np.asarray(default if value is None else value, dtype=np.float64).reshape(-1)
    if arr.size not in (1, d) or not np.all(np.isfinite(arr)):
        raise DataError(f"trigger bounds must be finite, one value or one per feature ({d})")
    return [float(v) for v in np.broadcast_to(arr, (d,))]


def derivation_params(
    n: int, *, input_shape: Sequence[int], n_classes: int,
    lower: np.ndarray | float | None = None, upper: np.ndarray | float | None = None, kind: str = "noise",
) -> dict[str, Any]:
    """The public parameters of a keyed trigger set (stored in its commitment)."""
    if kind != "noise":
        raise DataError(f"unknown trigger kind {kind!r}; expected noise")
    if n < 1 or n_classes < 2:
        raise DataError("a trigger set needs at least one trigger and two classes")
    shape = [int(v) for v in input_shape]
    d = int(np.prod(shape)) if shape else 1
    lo, hi = _box(lower, -3.0, d), _box(upper, 3.0, d)
    if any(h < lo_ for lo_, h in zip(lo, hi, strict=True)):
        raise DataError("trigger bounds: lower must not exceed upper")
    return {"derivation": DERIVATION, "kind": kind, "n": int(n), "input_shape": shape, "n_classes": int(n_classes),
            "lower": lo, "upper": hi}


def _uniform(key: bytes, label: str, params: dict[str, Any], count: int) -> np.ndarray:
    raw = np.frombuffer(_stream(key, label, params, 8 * count), dtype="<u8")
    return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _derive(key: bytes, params: dict[str, Any]) -> TriggerSet:
    n, c, shape = params["n"], params["n_classes"], tuple(params["input_shape"])
    d = int(np.prod(shape)) if shape else 1
    lo, hi = np.asarray(params["lower"]), np.asarray(params["upper"])
    X = (_uniform(key, "inputs", params, n * d).reshape(n, d) * (hi - lo) + lo).reshape((n, *shape))
    # keyed Fisher-Yates shuffle of a balanced multiset (each class n / c times): independent of any model
    labels = np.resize(np.arange(c), n)
    u = _uniform(key, "labels", params, n)
    for i in range(n - 1, 0, -1):
        j = int(u[i] * (i + 1))
        labels[i], labels[j] = labels[j], labels[i]
    return TriggerSet(X=X, labels=labels, n_classes=c, kind=params["kind"], seed=None,
                      meta={"input_shape": list(shape), "derivation": DERIVATION})


def derive_trigger_set(
    key: bytes, n: int, *, input_shape: Sequence[int], n_classes: int,
    lower: np.ndarray | float | None = None, upper: np.ndarray | float | None = None, kind: str = "noise",
) -> TriggerSet:
    """The trigger set a secret watermark ``key`` defines: ``n`` noise inputs uniform in the box
    ``[lower, upper]`` (default ``[-3, 3]`` per feature) and keyed random, balanced labels.

    Deterministic in ``(key, parameters)`` and independent of numpy's random generators (HMAC-SHA256
    and SHAKE-256 only), so it re-derives identically anywhere, years later.
    """
    params = derivation_params(n, input_shape=input_shape, n_classes=n_classes, lower=lower, upper=upper, kind=kind)
    return _derive(_check_key(key), params)


def trigger_digest(triggers: TriggerSet) -> str:
    """SHA-256 (hex) of a trigger set's inputs (float32, little endian), labels and class count."""
    h = hashlib.sha256(_DOMAIN + b"trigger-set\x00")
    X = np.ascontiguousarray(triggers.X, dtype="<f4")
    h.update(_canonical({"shape": list(X.shape), "n_classes": int(triggers.n_classes)}))
    h.update(X.tobytes())
    h.update(np.ascontiguousarray(triggers.labels, dtype="<i8").tobytes())
    return h.hexdigest()


def key_commitment(key: bytes) -> str:
    """A commitment to the watermark key (SHA-256 of a domain tag and the 256-bit key)."""
    return hashlib.sha256(_DOMAIN + b"key-commitment\x00" + _check_key(key)).hexdigest()


def _signed_message(payload: bytes) -> bytes:
    return COMMITMENT_FORMAT.encode() + b"\x00" + payload


def _sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    raise DataError(f"unsupported signing key {type(key).__name__}; use Ed25519 or ECDSA P-256")


def _verify(key: PublicKey, sig: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, message)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Commitment:
    """A signed, timestamped commitment to a keyed trigger set (publish it at embedding time).

    ``payload`` is the exact signed JSON bytes; :attr:`fields` their parsed content: ``created`` (UTC,
    ISO 8601), ``trigger_sha256`` (:func:`trigger_digest`), ``key_commitment``
    (:func:`key_commitment`), ``params`` (:func:`derivation_params`), optional ``model_sha256`` and
    ``note``. The file holds no secret.
    """

    payload: bytes
    signature: bytes

    @property
    def fields(self) -> dict[str, Any]:
        return _parse_payload(self.payload, "commitment")

    @property
    def created(self) -> str:
        return str(self.fields["created"])

    @classmethod
    def create(
        cls, triggers: TriggerSet, key: bytes, signing_key: PrivateKey, *, params: dict[str, Any],
        created: datetime | None = None, model_sha256: str | None = None, note: str | None = None,
    ) -> Commitment:
        """Commit to ``triggers`` (which ``key`` must derive from ``params``) and sign with ``signing_key``."""
        if not hmac.compare_digest(trigger_digest(_derive(_check_key(key), params)), trigger_digest(triggers)):
            raise DataError("the trigger set is not the one this watermark key derives; commit keyed sets only")
        when = (created or datetime.now(timezone.utc)).astimezone(timezone.utc)
        body: dict[str, Any] = {
            "format": COMMITMENT_FORMAT, "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "trigger_sha256": trigger_digest(triggers), "key_commitment": key_commitment(key), "params": params,
            "public_key_sha256": hashlib.sha256(public_pem(signing_key)).hexdigest(),
        }
        if model_sha256 is not None:
            body["model_sha256"] = model_sha256
        if note is not None:
            body["note"] = note
        payload = _canonical(body)
        return cls(payload=payload, signature=_sign(signing_key, _signed_message(payload)))

    def to_bytes(self) -> bytes:
        doc = {"format": COMMITMENT_FORMAT, "payload": base64.b64encode(self.payload).decode("ascii"),
               "signature": base64.b64encode(self.signature).decode("ascii")}
        return (json.dumps(doc, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "commitment") -> Commitment:
        try:
            doc = json.loads(data.decode("utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != COMMITMENT_FORMAT:
                raise FormatError(f"{source}: not a modelshield watermark commitment")
            payload = base64.b64decode(doc["payload"], validate=True)
            signature = base64.b64decode(doc["signature"], validate=True)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, binascii.Error):
            raise FormatError(f"{source}: not a readable watermark commitment (JSON)") from None
        _parse_payload(payload, source)
        return cls(payload=payload, signature=signature)

    @classmethod
    def load(cls, path: str | Path) -> Commitment:
        data, source = read_input(path, "watermark commitment")
        return cls.from_bytes(data, source=source)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write atomically; an existing file is replaced only with ``overwrite`` (else :class:`OutputError`)."""
        return write_bytes_safely(path, self.to_bytes(), overwrite)

    def open(self, public_key: PublicKey, key: bytes, triggers: TriggerSet | None = None) -> TriggerSet:
        """Check the proof and return the committed trigger set; :class:`IntegrityError` on any failure.

        Order: the signature (nothing in the payload is trusted before it), the key commitment
        (constant-time), the re-derivation of the committed digest, the presented trigger set."""
        if not _verify(public_key, self.signature, _signed_message(self.payload)):
            raise IntegrityError("watermark commitment refused: its signature does not verify under this public "
                                 "key (altered, or signed by someone else)")
        body = self.fields
        try:
            key = _check_key(key)
        except DataError as exc:
            raise IntegrityError(f"watermark commitment refused: {exc}") from None
        if not hmac.compare_digest(key_commitment(key), str(body["key_commitment"])):
            raise IntegrityError("watermark commitment refused: the watermark key does not open its key commitment")
        try:
            derived = _derive(key, _checked_params(body["params"]))
        except (DataError, KeyError, TypeError, ValueError):
            raise IntegrityError("watermark commitment refused: its derivation parameters are invalid") from None
        if not hmac.compare_digest(trigger_digest(derived), str(body["trigger_sha256"])):
            raise IntegrityError("watermark commitment refused: the key does not derive the committed trigger set")
        if triggers is not None and not hmac.compare_digest(trigger_digest(triggers), trigger_digest(derived)):
            raise IntegrityError("watermark refused: the trigger set is not the committed one (its inputs or labels "
                                 "differ from what the watermark key derives)")
        return derived


def _checked_params(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict) or params.get("derivation") != DERIVATION:
        raise DataError("unknown trigger derivation")
    again = derivation_params(int(params["n"]), input_shape=params["input_shape"],
                              n_classes=int(params["n_classes"]), lower=params["lower"], upper=params["upper"],
                              kind=str(params["kind"]))
    if again != params:
        raise DataError("non-canonical derivation parameters")
    return again


def _parse_payload(payload: bytes, source: str) -> dict[str, Any]:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FormatError(f"{source}: the commitment payload is not JSON") from None
    need = {"format", "created", "trigger_sha256", "key_commitment", "params"}
    if not isinstance(body, dict) or body.get("format") != COMMITMENT_FORMAT or not need <= set(body):
        raise FormatError(f"{source}: not a modelshield watermark commitment payload")
    return body


def new_watermark_key() -> bytes:
    """A fresh random 256-bit watermark key (OS CSPRNG)."""
    return os.urandom(KEY_LEN)


@dataclass(frozen=True, kw_only=True)
class OwnershipClaim:
    """An owner's watermark evidence, read from its files and already checked (:func:`open_claim`): the
    signed commitment, the owner's public key, the revealed watermark key and the committed trigger set
    it re-derives. :meth:`verify` tests a suspect model against it."""

    commitment: Commitment
    public_key: PublicKey
    key: bytes
    triggers: TriggerSet
    presented: TriggerSet | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one trigger input (the width a suspect model must take)."""
        return tuple(self.triggers.X.shape[1:])

    def verify(self, model: Any, *, alpha: float = DEFAULT_ALPHA) -> WatermarkVerdict:
        """:func:`verify_watermark` of ``model`` with this evidence (the proof is checked again)."""
        return verify_watermark(model, commitment=self.commitment, public_key=self.public_key, key=self.key,
                                triggers=self.presented, alpha=alpha)

    def __repr__(self) -> str:  # never show the secret key
        return f"OwnershipClaim(created={self.commitment.created!r}, triggers={len(self.triggers)})"


def open_claim(
    commitment: str | Path,
    public_key: str | Path,
    watermark_key: str | Path,
    triggers: str | Path | None = None,
) -> OwnershipClaim:
    """Read an ownership claim from its files (the commitment JSON, the owner's public key PEM, the
    watermark key file and, optionally, the trigger-set NPZ) and open it (:meth:`Commitment.open`), so a
    refused proof raises :class:`~modelshield.errors.IntegrityError` before any suspect is loaded.
    A missing file raises :class:`~modelshield.errors.InputNotFoundError`, an unreadable one
    :class:`~modelshield.errors.FormatError`."""
    com = Commitment.load(commitment)
    pub = load_public_key(public_key)
    key = load_key_file(watermark_key)
    presented = TriggerSet.load(triggers) if triggers is not None else None
    derived = com.open(pub, key, presented)
    return OwnershipClaim(commitment=com, public_key=pub, key=key, triggers=derived, presented=presented)
