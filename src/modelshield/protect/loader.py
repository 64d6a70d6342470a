"""The secure loader: verify -> decrypt -> scan -> load. Fails closed, with the reason.

The model file is read **once**; the signature is checked against those bytes, which are then
decrypted in memory (when the file is a modelshield container, recognised by its magic), scanned and
loaded. Nothing is re-read from disk between the steps, so the file cannot be swapped after
verification, and no plaintext ever reaches a temp file.

* **Verify** when the trust policy requires a signature, or when a public key is given: the signature
  (default ``<file>.sig``) must verify under one of the trusted keys and cover exactly these bytes.
* **Decrypt** with ``key=`` (32 bytes), ``key_file=``, ``key_env=``, ``passphrase=`` or
  ``passphrase_env=``; an encrypted file without a key is refused.
* **Scan** the content with the artifact scanner (``modelshield.artifacts.scan_bytes``);
  findings at or above ``policy.block_at`` (HIGH by default) refuse the load with
  :class:`UnsafeModelError`. Clean pickle-based content (pickle, joblib, full PyTorch checkpoints) is
  loaded with the scanner's restricted unpickler (``modelshield.artifacts.restricted.safe_load``).
  Without the scanner installed, pickle-based content is refused unless ``trust=True``.
* ``trust=True`` (only for files you made) skips the scan and uses the framework's own loader; it
  never skips signature verification or decryption. A policy can forbid it (``allow_trust=False``).
  A decrypted payload is scanned even then (not enforced), so the audit can report its content.

Exit codes: unparseable or unknown-format content (empty, text, random bytes, a truncated archive,
with or without encryption) is an input error, :class:`FormatError` (2), when the scanner found nothing
else at or above ``block_at``; content that is parseable but unsafe, or could not be fully inspected
(dangerous findings, a scan that hit its time limit), is refused with :class:`UnsafeModelError` (3);
a tampered container or bad signature is :class:`IntegrityError` (3). Nothing is loaded in any case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._io import input_file
from modelshield.errors import (
    FormatError,
    IntegrityError,
    UnsafeModelError,
    UntrustedModelError,
    UserError,
)
from modelshield.findings import Severity
from modelshield.formats import detect_format_bytes
from modelshield.models.base import BaseModel
from modelshield.models.wrap import wrap_loaded, wrap_object
from modelshield.protect._hazmat import load_file_unrestricted
from modelshield.protect._provenance import PayloadScan, attach_payload_scan

__all__ = ["PICKLE_BASED", "TrustPolicy", "detect_format_bytes", "load_model", "secure_load"]

PICKLE_BASED = frozenset({"pickle", "joblib-compressed", "torch-zip"})

@dataclass(frozen=True, kw_only=True)
class TrustPolicy:
    """What the secure loader demands before it loads a model.

    Parameters
    ----------
    public_keys : trusted signing keys (PEM paths or loaded public keys); a signature must verify
        under one of them whenever any is given.
    require_signature : refuse models without a valid signature (needs ``public_keys``).
    signature : signature file; default ``<model>.sig``.
    require_encryption : refuse models that are not modelshield-encrypted containers.
    block_at : scanner findings at or above this severity refuse the load.
    allow_trust : whether ``trust=True`` may bypass the scanner.
    strict_key_permissions : refuse (``KeyPermissionError``, exit 3) a ``key_file`` readable by group or
        others instead of warning.
    """

    public_keys: Sequence[Any] = ()
    require_signature: bool = False
    signature: str | Path | None = None
    require_encryption: bool = False
    block_at: Severity | str = Severity.HIGH
    allow_trust: bool = True
    strict_key_permissions: bool = False


def _public_keys(items: Sequence[Any]) -> list[Any]:
    # lazy: protect.keys pulls in cryptography; only keyed loads need it
    from modelshield.protect.keys import load_public_key

    return [load_public_key(k) if isinstance(k, (str, Path)) else k for k in items]


def _key_material(key: bytes | None, key_file: str | Path | None, key_env: str | None,
                  passphrase: str | bytes | None, passphrase_env: str | None,
                  strict: bool = False) -> tuple[bytes | None, Any]:
    # lazy: protect.keys pulls in cryptography; only keyed loads need it
    from modelshield.protect.keys import key_from_env, load_key_file, passphrase_from_env

    given = [x for x in (key, key_file, key_env, passphrase, passphrase_env) if x is not None]
    if len(given) > 1:
        raise UserError("give only one of key=, key_file=, key_env=, passphrase=, passphrase_env=")
    if key is not None:
        return bytes(key), None
    if key_file is not None:
        return load_key_file(key_file, strict=strict), None
    if key_env is not None:
        return key_from_env(key_env), None
    if passphrase_env is not None:
        return None, passphrase_from_env(passphrase_env)
    return None, passphrase


def secure_load(
    path: Path,
    *,
    trust: bool = False,
    input_shape: tuple[int, ...] | None = None,
    classes: list[Any] | np.ndarray | None = None,
    policy: TrustPolicy | None = None,
    public_key: Any = None,
    signature: str | Path | None = None,
    require_signature: bool | None = None,
    key: bytes | None = None,
    key_file: str | Path | None = None,
    key_env: str | None = None,
    passphrase: str | bytes | None = None,
    passphrase_env: str | None = None,
) -> BaseModel:
    """Verify, decrypt, scan and load a model file; refuse (fail closed) with the reason otherwise.

    Raises
    ------
    IntegrityError : missing/bad signature, wrong key, tampered or truncated container (exit 3).
    UnsafeModelError : the scanner found findings at or above the blocking severity (exit 3), except:
    FormatError : the content (decrypted, for a container) is empty, unparseable or in no format the
        scanner recognises, and nothing else blocks: an input error (exit 2); nothing was loaded.
    UntrustedModelError : pickle content, no scanner available and ``trust`` not given; or an
        unencrypted model where the policy requires encryption.
    """
    if policy is not None and not isinstance(policy, TrustPolicy):
        raise UserError(f"policy= must be a modelshield.protect.loader.TrustPolicy, got {type(policy).__name__}")
    pol = policy or TrustPolicy()
    path = Path(path)
    block_at = Severity.parse(pol.block_at)
    keys = _public_keys([*pol.public_keys, *([public_key] if public_key is not None else [])])
    must_sign = pol.require_signature if require_signature is None else require_signature
    data: bytes | bytearray = path.read_bytes()  # read once: every step below sees the same bytes

    # 1. verify
    if must_sign or keys:
        _verify(path, data, keys, signature or pol.signature)

    # 2. decrypt
    from modelshield.protect.crypto import decrypt_bytes, is_encrypted

    encrypted = is_encrypted(data)
    raw_size = len(data)
    raw_sha256 = hashlib.sha256(data).hexdigest() if encrypted else None  # identifies the file for the audit
    if encrypted:
        k, pw = _key_material(key, key_file, key_env, passphrase, passphrase_env, pol.strict_key_permissions)
        if k is None and pw is None:
            raise UserError(f"{path} is encrypted; give its key (command line: --key-file, --key-env or "
                            "--passphrase-env; Python: key_file=, key_env=, passphrase_env=) or decrypt it first "
                            "with 'modelshield protect decrypt'")
        data = decrypt_bytes(data, key=k, passphrase=pw)
    elif pol.require_encryption:
        raise UntrustedModelError(f"refusing {path}: the trust policy requires an encrypted model, "
                                  "and this file is not a modelshield container")

    # 3. scan, 4. load
    fmt = detect_format_bytes(data)
    if trust and not pol.allow_trust:
        raise UntrustedModelError(f"refusing {path}: the trust policy does not allow trust=True")
    report = None
    if not trust or encrypted:  # an encrypted payload is always scanned: the artifact check reports it
        scan_bytes, safe_load = _scanner()
        report = scan_bytes(data, path.name)  # bytes-like; the scanner wraps it, no copy
    if not trust:
        assert report is not None
        if getattr(report, "errors", None):
            raise UnsafeModelError(f"refusing to load {path}: the scan did not complete "
                                   f"({report.errors[0]})", findings=list(report.findings))
        # TorchScript is code that torch.jit.load compiles and runs: it loads only when the scan is clean at
        # the strict level (nothing at or above MEDIUM; the LOW "TorchScript archive" notice is expected)
        strict_at = min(block_at, Severity.MEDIUM) if fmt == "torchscript" else block_at
        if report.blocks(strict_at):
            raise _refusal(path, report, strict_at, encrypted)
        differential = [f for f in report.findings if getattr(f, "rule_id", "") in PARSER_DIFFERENTIAL
                        and Severity.parse(f.severity) >= Severity.MEDIUM]  # LOW polyglot: chance bytes
        if differential:  # the framework's reader and ours would see different content: never load it
            raise UnsafeModelError(f"refusing to load {path}: {differential[0].title} (readers disagree on what "
                                   "this archive holds, whatever the blocking severity)",
                                   findings=list(report.findings))
        if _unrecognised(report):  # the scanner grades unknown content by the file's name; a model must parse
            what = "an encrypted payload" if encrypted else "a file"
            raise FormatError(f"{path}: unsupported model format ({what} in which the scanner recognised no "
                              "format); nothing was loaded")
        if fmt in PICKLE_BASED:
            model = wrap_loaded(safe_load(data, fmt), path, fmt, input_shape=input_shape, classes=classes)
            _record(model, path, raw_sha256, raw_size, fmt, data, report, enforced=True)
            return model
    model = load_file_unrestricted(path, fmt, input_shape=input_shape, classes=classes,
                                   data=bytes(data) if fmt == "onnx" else data)  # type: ignore[arg-type]
    if report is not None:
        _record(model, path, raw_sha256, raw_size, fmt, data, report, enforced=not trust)
    return model


#: Findings that mean two readers (torch/miniz, zipfile, our scanner) would see different content in one
#: file; the loader refuses them whatever ``block_at`` says, since what was scanned may not be what loads.
PARSER_DIFFERENTIAL = frozenset({"artifact.zip.zip64-mismatch", "artifact.zip.name-collision", "artifact.polyglot"})

#: Findings that mean "this is not a file we can parse", not "this is unsafe": with nothing else at or
#: above the blocking severity, the file is an input error (exit 2). Nothing was loaded either way.
_PARSE_FAILURE = "artifact.malformed"
_NOT_A_FORMAT = "artifact.inconclusive"
_NO_FORMAT = frozenset({"unknown", "text"})


def _refusal(path: Path, report: Any, block_at: Severity, encrypted: bool) -> Exception:
    """The error for a blocked scan: :class:`FormatError` (exit 2) when the content is unparseable or in
    no format the scanner recognises and nothing else blocks; :class:`UnsafeModelError` (exit 3)
    otherwise (dangerous content, or parseable content that could not be fully inspected)."""
    bad = [f for f in report.findings if Severity.parse(f.severity) >= block_at]
    first = bad[0].title if bad else "blocking findings"
    unknown = _unrecognised(report)
    if bad and all(f.rule_id == _PARSE_FAILURE or (f.rule_id == _NOT_A_FORMAT and unknown) for f in bad):
        what = "an encrypted payload" if encrypted else "a file"
        return FormatError(f"{path}: unsupported model format ({what} that does not parse: {first}); "
                           "nothing was loaded")
    return UnsafeModelError(
        f"refusing to load {path}: the scanner found {len(bad) or 'blocking'} finding(s) at or "
        f"above {block_at.value} ({first}); inspect it with `modelshield scan {path}`"
        + (" after `modelshield protect decrypt` (the scanner cannot read the encrypted file)" if encrypted
           else ""),
        findings=list(report.findings),
    )


def _unrecognised(report: Any) -> bool:
    """True when the scanner recognised no format at all in the content (empty, text, random bytes)."""
    formats = {fr.format for fr in getattr(report, "files", ())}
    return bool(formats) and formats <= _NO_FORMAT


def _record(model: BaseModel, path: Path, raw_sha256: str | None, raw_size: int, fmt: str,
            data: bytes | bytearray, report: Any, *, enforced: bool) -> None:
    """Keep the decrypted payload's scan with the model (encrypted files only; see ``_provenance``)."""
    files = getattr(report, "files", None)
    if raw_sha256 is None or not files:
        return
    attach_payload_scan(model, PayloadScan(path=str(path.resolve()), file_sha256=raw_sha256, file_size=raw_size,
                                           payload_format=fmt, payload_size=len(data),
                                           report=files[0], enforced=enforced))


def _verify(path: Path, data: bytes | bytearray, keys: list[Any], signature: str | Path | None) -> None:
    # lazy: signing only for signed models (CLI start-up imports this module)
    from modelshield.protect.signing import default_signature_path, verify_bytes

    if not keys:
        raise UntrustedModelError(
            f"refusing {path}: a signature is required but no trusted public key was given "
            "(public_key= or TrustPolicy(public_keys=...))"
        )
    sig = Path(signature) if signature is not None else default_signature_path(path)
    if not sig.is_file():
        raise IntegrityError(f"refusing {path}: no signature ({sig} does not exist)")
    errors: list[str] = []
    for k in keys:
        try:
            verify_bytes(data, path.name, k, signature=sig)
            return
        except IntegrityError as exc:
            errors.append(str(exc))
    detail = errors[0] if len(errors) == 1 else f"none of {len(keys)} trusted keys verify it ({errors[0]})"
    raise IntegrityError(f"refusing {path}: {detail}")


def _scanner() -> tuple[Any, Any]:
    """The artifact scanner's ``scan_bytes`` and restricted ``safe_load`` (a seam tests replace)."""
    # lazy: the scanner only for pickle-based files (CLI start-up imports this module)
    from modelshield.artifacts import scan_bytes
    from modelshield.artifacts.restricted import safe_load

    return scan_bytes, safe_load


def load_model(
    source: Any,
    *,
    trust: bool = False,
    input_shape: tuple[int, ...] | None = None,
    classes: list[Any] | np.ndarray | None = None,
    headers: dict[str, str] | None = None,
    **loader_options: Any,
) -> BaseModel:
    """Load or wrap a model and return its :class:`~modelshield.models.base.BaseModel` adapter.

    Parameters
    ----------
    source : a fitted estimator, a ``torch.nn.Module``, an adapter, an ``http(s)://`` URL or a path
        to a model file (scikit-learn pickle/joblib, PyTorch checkpoint or TorchScript, ONNX).
    trust : load pickle-based files without the scanner's restrictions. Only for files you made.
    input_shape, classes : hints for PyTorch/ONNX models (shape of one sample; class labels).
    loader_options : passed to the secure loader (e.g. ``policy=``, ``key=``).

    Raises
    ------
    InputNotFoundError, FormatError
        Exit 2: no such file; or content that does not parse or is in no known format (empty, text,
        random bytes, a truncated archive), encrypted or not, whatever the extension.
    UnsafeModelError, UntrustedModelError, IntegrityError
        Exit 3: content that parses but is unsafe or could not be fully inspected; untrusted pickle;
        wrong key, tampered container, bad signature. Nothing is loaded in any of these cases.
    """
    if isinstance(source, (str, Path)) and str(source).startswith(("http://", "https://")):
        from modelshield.models.remote import RemoteModel  # only for URLs: keeps httpx off the file path

        n = int(np.prod(input_shape)) if input_shape else None
        return RemoteModel(str(source), classes=classes, headers=headers, n_features=n)
    if not isinstance(source, (str, Path)):
        kw: dict[str, Any] = {}
        if input_shape is not None:
            kw["input_shape"] = input_shape
        if classes is not None:
            kw["classes"] = classes
        return wrap_object(source, **kw)
    path = input_file(source, "model", "; pass the model file inside it")
    return secure_load(path, trust=trust, input_shape=input_shape, classes=classes, **loader_options)
