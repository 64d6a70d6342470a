"""Model signing and verification in the OpenSSF ``model-signing`` format (v1.0 predicate).

A signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) holding a DSSE
envelope over an in-toto Statement v1 whose predicate (``https://model_signing/signature/v1.0``)
lists one SHA-256 digest per file ("resources") plus the serialization parameters; the subject's
digest is SHA-256 over the concatenated per-file digests in name order. This is exactly what
``model_signing sign key`` writes, so:

* a model signed with ``model_signing`` (key mode, ECDSA P-256/384/521) verifies here, and
* a model signed here with an ECDSA key verifies with ``model_signing verify key``.

Ed25519 signatures use the same bundle; ``model_signing`` 1.x cannot verify them because its key
mode accepts elliptic-curve (ECDSA) keys only.

Verification recomputes every file digest and names each changed, added or removed file.
Hashing streams each file through one reused 4 MiB buffer (memory does not grow with file size) and
hashes the files of a directory in parallel threads.

References
----------
OpenSSF model-signing: https://github.com/sigstore/model-transparency ;
DSSE v1: https://github.com/secure-systems-lab/dsse ; in-toto Statement v1:
https://github.com/in-toto/attestation/tree/main/spec/v1 .
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelshield.errors import InputNotFoundError, IntegrityError, OutputError, UserError
from modelshield.protect.keys import PrivateKey, PublicKey, public_pem

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PREDICATE_TYPE",
    "Manifest",
    "Verification",
    "build_manifest",
    "default_signature_path",
    "hash_file",
    "sign",
    "sign_manifest",
    "verify",
    "verify_bytes",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
_READ_CHUNK = 1 << 22


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Per-file SHA-256 digests of a model (file: one entry named ``"."``; directory: relative paths)."""

    name: str
    files: dict[str, str]
    ignore_paths: tuple[str, ...] = ()

    @property
    def root_digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(bytes.fromhex(self.files[name]))
        return h.hexdigest()

    def diff(self, actual: Manifest) -> list[str]:
        """Human-readable differences, ``self`` being the signed (expected) manifest."""
        out = []
        for name in sorted(set(self.files) | set(actual.files)):
            want, got = self.files.get(name), actual.files.get(name)
            label = actual.name if name == "." else name
            if want is None:
                out.append(f"added (not signed): {label}")
            elif got is None:
                out.append(f"removed: {label}")
            elif want != got:
                out.append(f"changed: {label}")
        return out


@dataclass(frozen=True, kw_only=True)
class Verification:
    """A successful verification: what was checked and by which key."""

    path: Path
    signature: Path
    files: int
    key_type: str
    root_digest: str
    manifest: Manifest = field(repr=False)


# --- hashing --------------------------------------------------------------------------------------


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file as hex: 4 MiB ``readinto`` blocks into one reused buffer (bounded memory;
    hashlib and the read both release the GIL, so a directory hashes in parallel threads)."""
    h = hashlib.sha256()
    buf = bytearray(_READ_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _is_ignored(rel: PurePosixPath, ignore: Iterable[str]) -> bool:
    for ig in ignore:
        p = PurePosixPath(ig)
        if rel == p or p in rel.parents:
            return True
    return False


def _rel_ignores(root: Path, paths: Iterable[str | Path], *, model_relative: bool = True) -> list[str]:
    """Ignore paths relative to ``root``. A path is taken as given from the working directory when that
    lands inside ``root``; otherwise (``model_relative``) as a path inside the model, else dropped."""
    out: list[str] = []
    root_abs = root.resolve()
    for p in paths:
        pp = Path(p)
        cand = pp if pp.is_absolute() else Path.cwd() / pp
        try:
            out.append(cand.resolve().relative_to(root_abs).as_posix())
            continue
        except ValueError:
            pass
        if model_relative and not pp.is_absolute() and not str(pp).startswith(".."):
            out.append(PurePosixPath(pp.as_posix()).as_posix())  # already relative to the model
    return sorted(set(out))


def build_manifest(path: str | Path, *, ignore_paths: Sequence[str] = (), workers: int | None = None) -> Manifest:
    """Hash a model file or directory. Symbolic links are refused (fail closed)."""
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"model not found: {p}")
    if p.is_symlink():
        raise UserError(f"{p} is a symbolic link; sign the file it points to")
    if p.is_file():
        return Manifest(name=p.name, files={".": hash_file(p)}, ignore_paths=tuple(GIT_PATHS))
    ignores = tuple(sorted(set(ignore_paths) | set(GIT_PATHS)))
    rels: list[str] = []
    for dirpath, dirnames, filenames in os.walk(p):
        base = Path(dirpath)
        keep = []
        for d in dirnames:
            rel = PurePosixPath((base / d).relative_to(p).as_posix())
            if (base / d).is_symlink():
                if _is_ignored(rel, ignores):
                    continue
                raise IntegrityError(f"{p}: {rel} is a symbolic link; links are not allowed in a signed model")
            if not _is_ignored(rel, ignores):
                keep.append(d)
        dirnames[:] = sorted(keep)
        for f in filenames:
            rel = PurePosixPath((base / f).relative_to(p).as_posix())
            if _is_ignored(rel, ignores):
                continue
            if (base / f).is_symlink():
                raise IntegrityError(f"{p}: {rel} is a symbolic link; links are not allowed in a signed model")
            rels.append(str(rel))
    rels.sort()
    n_workers = workers or min(8, max(1, os.cpu_count() or 1))
    if n_workers > 1 and len(rels) > 1:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            digests = list(pool.map(lambda r: hash_file(p / r), rels))
    else:
        digests = [hash_file(p / r) for r in rels]
    return Manifest(name=p.name, files=dict(zip(rels, digests)), ignore_paths=ignores)


def default_signature_path(path: str | Path) -> Path:
    """``<file>.sig`` for a file, ``<dir>/model.sig`` for a directory."""
    p = Path(path)
    return p / "model.sig" if p.is_dir() else p.with_name(p.name + ".sig")


# --- DSSE / bundle --------------------------------------------------------------------------------


def _pae(payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def _ec_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]


def _key_type(key: PublicKey) -> str:
    return "ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else f"ecdsa-{key.curve.name}"


def _statement(m: Manifest) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": m.name, "digest": {"sha256": m.root_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": list(m.ignore_paths),
            },
            "resources": [
                {"name": n, "algorithm": "sha256", "digest": m.files[n]} for n in sorted(m.files)
            ],
        },
    }


def sign_manifest(manifest: Manifest, key: PrivateKey) -> dict[str, Any]:
    """The Sigstore bundle (as a JSON-ready dict) signing ``manifest`` with ``key``."""
    payload = json.dumps(_statement(manifest), indent=2).encode("utf-8")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig = key.sign(_pae(payload))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(_pae(payload), ec.ECDSA(_ec_hash(key.public_key())))
    else:
        raise UserError(f"unsupported signing key {type(key).__name__}; use Ed25519 or ECDSA P-256")
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": hashlib.sha256(public_pem(key)).hexdigest()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(sig).decode("ascii"), "keyid": ""}],
        },
    }


def sign(path: str | Path, key: PrivateKey, *, signature: str | Path | None = None,
         ignore_paths: Sequence[str | Path] = (), force: bool = False) -> Path:
    """Sign a model file or directory; writes the bundle (default :func:`default_signature_path`)."""
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"model not found: {p}")
    sig_path = Path(signature) if signature is not None else default_signature_path(p)
    if sig_path.exists() and not force:
        raise OutputError(f"signature {sig_path} already exists; pass --force to overwrite it")
    ignores = (_rel_ignores(p, ignore_paths) + _rel_ignores(p, [sig_path], model_relative=False)
               if p.is_dir() else [])
    bundle = sign_manifest(build_manifest(p, ignore_paths=ignores), key)
    from modelshield.protect.crypto import _AtomicOutput

    with _AtomicOutput(sig_path, force) as fh:
        fh.write((json.dumps(bundle, indent=2) + "\n").encode("utf-8"))
    return sig_path


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise IntegrityError(f"signature file is malformed: {what} is not base64") from None


def _signed_manifest(sig_path: Path, public_key: PublicKey, subject: str | Path) -> Manifest:
    """The manifest inside ``sig_path`` after its signature verified under ``public_key``."""
    if not sig_path.is_file():
        raise IntegrityError(f"no signature for {subject}: {sig_path} does not exist")
    bundle, payload, sig = _parse_bundle(sig_path)
    _check_signature(public_key, payload, sig, sig_path, bundle)
    try:
        stmt = json.loads(payload)
    except ValueError:
        raise IntegrityError(f"{sig_path}: the signed payload is not JSON") from None
    return _manifest_from_statement(stmt, sig_path)


def _parse_bundle(sig_path: Path) -> tuple[dict[str, Any], bytes, bytes]:
    try:
        bundle = json.loads(sig_path.read_bytes())
        env = bundle["dsseEnvelope"]
        payload = _b64(env["payload"], "the payload")
        sigs = env["signatures"]
        payload_type = env["payloadType"]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError):
        # a corrupted signature is a failed verification (exit 3), not a usage error: fail closed
        raise IntegrityError(f"signature check failed: {sig_path} is not a valid model-signing "
                             "(Sigstore bundle with DSSE) signature") from None
    if not str(bundle.get("mediaType", "")).startswith("application/vnd.dev.sigstore.bundle"):
        raise IntegrityError(f"signature check failed: {sig_path} has an unknown bundle media type "
                             f"{bundle.get('mediaType')!r}")
    if payload_type != PAYLOAD_TYPE:
        raise IntegrityError(f"{sig_path}: DSSE payload type {payload_type!r} is not in-toto JSON")
    if not isinstance(sigs, list) or len(sigs) != 1:
        raise IntegrityError(f"{sig_path}: expected exactly one signature in the envelope")
    return bundle, payload, _b64(sigs[0].get("sig"), "the signature")


def _check_signature(key: PublicKey, payload: bytes, sig: bytes, sig_path: Path, bundle: dict[str, Any]) -> None:
    hint = (bundle.get("verificationMaterial") or {}).get("publicKey", {}).get("hint")
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, _pae(payload))
        else:
            key.verify(sig, _pae(payload), ec.ECDSA(_ec_hash(key)))
    except InvalidSignature:
        mine = hashlib.sha256(public_pem(key)).hexdigest()
        if hint and hint != mine:
            raise IntegrityError(
                f"bad signature {sig_path}: it was made with a different key (key hint {hint[:16]}…, "
                f"yours is {mine[:16]}…)"
            ) from None
        raise IntegrityError(f"bad signature {sig_path}: the signed statement was altered or the key is wrong") \
            from None


def _manifest_from_statement(stmt: dict[str, Any], sig_path: Path) -> Manifest:
    try:
        if stmt["_type"] != STATEMENT_TYPE or stmt["predicateType"] != PREDICATE_TYPE:
            raise IntegrityError(
                f"{sig_path}: unsupported statement ({stmt.get('_type')}, {stmt.get('predicateType')}); "
                f"expected {PREDICATE_TYPE}"
            )
        (subject,) = stmt["subject"]
        pred = stmt["predicate"]
        ser = pred["serialization"]
        if ser.get("method") != "files" or ser.get("hash_type") != "sha256":
            raise IntegrityError(
                f"{sig_path}: serialization {ser.get('method')}/{ser.get('hash_type')} is not supported; "
                "sign with method 'files' and SHA-256"
            )
        files: dict[str, str] = {}
        for res in pred["resources"]:
            if res["algorithm"] != "sha256":
                raise IntegrityError(f"{sig_path}: digest algorithm {res['algorithm']} is not supported")
            files[str(res["name"])] = str(res["digest"]).lower()
        m = Manifest(name=str(subject["name"]), files=files,
                     ignore_paths=tuple(str(x) for x in ser.get("ignore_paths", ())))
        if m.root_digest != str(subject["digest"]["sha256"]).lower():
            raise IntegrityError(f"{sig_path}: the statement is inconsistent (root digest mismatch)")
        return m
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"{sig_path}: the signed statement is malformed") from None


def verify(path: str | Path, public_key: PublicKey, *, signature: str | Path | None = None) -> Verification:
    """Verify a model against a signature bundle; raises :class:`IntegrityError` naming what differs."""
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"model not found: {p}")
    sig_path = Path(signature) if signature is not None else default_signature_path(p)
    expected = _signed_manifest(sig_path, public_key, p)
    if p.is_dir():
        ignores = [*expected.ignore_paths, *_rel_ignores(p, [sig_path], model_relative=False)]
        actual = build_manifest(p, ignore_paths=ignores)
    else:
        actual = build_manifest(p)
    problems = expected.diff(actual)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise IntegrityError(f"{p} does not match its signature: {shown}")
    return Verification(path=p, signature=sig_path, files=len(actual.files), key_type=_key_type(public_key),
                        root_digest=expected.root_digest, manifest=expected)


def verify_bytes(data: bytes | bytearray | memoryview, name: str, public_key: PublicKey, *,
                 signature: str | Path) -> Verification:
    """Verify in-memory file content against a single-file signature.

    The secure loader reads a model once and verifies, decrypts, scans and loads those same bytes, so
    the file cannot be swapped between verification and loading.
    """
    sig_path = Path(signature)
    expected = _signed_manifest(sig_path, public_key, name)
    actual = Manifest(name=name, files={".": hashlib.sha256(data).hexdigest()})
    problems = expected.diff(actual)
    if problems:
        raise IntegrityError(f"{name} does not match its signature: {'; '.join(problems[:10])}")
    return Verification(path=Path(name), signature=sig_path, files=1, key_type=_key_type(public_key),
                        root_digest=expected.root_digest, manifest=expected)
