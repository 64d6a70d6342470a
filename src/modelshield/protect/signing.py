"""Model signing and verification in the OpenSSF ``model-signing`` format (v1.0 predicate).

A signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) holding a DSSE
envelope over an in-toto Statement v1 whose predicate (``https://model_signing/signature/v1.0``)
lists SHA-256 digests ("resources") plus the serialization parameters; the subject's digest is
SHA-256 over the concatenated resource digests in the order listed (path components, then shard
offsets). Two serializations, both as ``model_signing`` writes them:

* ``files`` (default): one digest per file (``"."`` names a single-file model). ``model_signing``
  verifies these with its CLI (``verify key``) and its API, and its signatures verify here.
* ``shards``: one digest per ``shard_size``-byte slice of each file, named ``path:start:end``, algorithm
  ``sha256-sharded-<shard_size>``, so one big checkpoint hashes on every core. ``model_signing``'s
  Python API reads the method and shard size from the signature and verifies ours; its CLI 1.1.1
  cannot (``verify key`` always re-hashes per file and has no shard option), hence opt-in. Its own
  sharded signatures carry ``shard_size`` as a float (protobuf ``Struct``) and verify here.

Ed25519 signatures use the same bundle; ``model_signing`` 1.x cannot verify them because its key
mode accepts elliptic-curve (ECDSA) keys only.

Verification recomputes every digest and names each changed, added or removed file (and, for shards,
the changed byte ranges).

**Unsigned files.** The git paths ``model_signing`` leaves out (``.git``, ``.gitattributes``,
``.github``, ``.gitignore``) are left out of a directory's signature only when they exist at signing
time, and the signed statement's ``ignore_paths`` names exactly what was left out. Verification honours
only the signed ``ignore_paths``: a git file added after signing (a ``.gitattributes`` filter, a
``.github`` workflow, a ``.git`` hook where there was no ``.git``) is ``added (not signed)`` and fails.
Files present under a path the signature does leave out are listed in
:attr:`Verification.unsigned` (the CLI prints them as a warning); ``strict=True`` fails on them.

Hashing (:mod:`._hashing`) streams through one reused 1 MiB buffer per thread (memory does not grow
with file size) and hashes files, or shards, in parallel threads.

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
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from modelshield._io import AtomicOutput
from modelshield.errors import InputNotFoundError, IntegrityError, OutputError, UserError
from modelshield.protect._hashing import (
    Job,
    hash_buffer_ranges,
    hash_jobs,
    hash_range,
    shard_ranges,
)

if TYPE_CHECKING:  # cryptography is imported where it is used: see _Background
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from modelshield.protect.keys import PrivateKey, PublicKey

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PREDICATE_TYPE",
    "Manifest",
    "Verification",
    "build_manifest",
    "default_shard_size",
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
DEFAULT_SHARD_SIZE = 1 << 24  # 16 MiB (see default_shard_size)
MAX_AUTO_SHARDS = 4096
Serialization = Literal["files", "shards"]


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """The signed content of a model: resource name -> SHA-256 hex digest.

    Per-file serialization (``shard_size=None``, the default): one resource per file, named by its path
    relative to the model (``"."`` for a single-file model). Shard serialization (``shard_size`` set):
    one resource per ``shard_size``-byte slice of each file, named ``path:start:end``; ``empty`` lists
    the empty files found, which that format cannot list (only :func:`build_manifest` fills it).
    """

    name: str
    files: dict[str, str]
    ignore_paths: tuple[str, ...] = ()
    shard_size: int | None = None
    empty: tuple[str, ...] = ()

    @property
    def serialization(self) -> str:
        """``"files"`` or ``"shards"`` (the predicate's ``serialization.method``)."""
        return "files" if self.shard_size is None else "shards"

    def resources(self) -> list[str]:
        """Resource names in the format's canonical order: by path components, then shard offsets
        (the order ``model_signing`` lists and hashes them in)."""
        return sorted(self.files, key=lambda n: _resource_key(n, self.shard_size is not None))

    @property
    def root_digest(self) -> str:
        h = hashlib.sha256()
        for name in self.resources():
            h.update(bytes.fromhex(self.files[name]))
        return h.hexdigest()

    def paths(self) -> dict[str, dict[tuple[int, int], str]]:
        """Per file path: ``(start, end) -> digest`` (per-file serialization: one ``(0, -1)`` entry)."""
        out: dict[str, dict[tuple[int, int], str]] = {}
        for name, digest in self.files.items():
            if self.shard_size is None:
                out.setdefault(name, {})[(0, -1)] = digest
            else:
                path, start, end = _parse_shard(name)
                out.setdefault(path, {})[(start, end)] = digest
        for path in self.empty:
            out.setdefault(path, {})
        return out

    def diff(self, actual: Manifest) -> list[str]:
        """Human-readable differences, ``self`` being the signed (expected) manifest."""
        if (self.shard_size is None) != (actual.shard_size is None):
            raise ValueError("cannot compare a per-file manifest with a sharded one")
        want_paths, got_paths = self.paths(), actual.paths()
        out = []
        for path in sorted(set(want_paths) | set(got_paths), key=lambda n: _resource_key(n, False)):
            want, got = want_paths.get(path), got_paths.get(path)
            label = actual.name if path == "." else path
            if want is None:
                why = " (an empty file; the shards format cannot sign empty files)" if got == {} else ""
                out.append(f"added (not signed): {label}{why}")
            elif got is None:
                out.append(f"removed: {label}")
            elif self.shard_size is None:
                if want != got:
                    out.append(f"changed: {label}")
            elif set(want) != set(got):
                out.append(f"changed: {label} (size {_size(got)} bytes, signed {_size(want)} bytes)")
            else:
                bad = sorted(r for r in want if want[r] != got[r])
                if bad:
                    shown = ", ".join(f"{s}-{e}" for s, e in bad[:3])
                    more = f" and {len(bad) - 3} more shards" if len(bad) > 3 else ""
                    out.append(f"changed: {label} (bytes {shown}{more})")
        return out


def _size(ranges: dict[tuple[int, int], str]) -> int:
    return max((end for _, end in ranges), default=0)


def _parse_shard(name: str) -> tuple[str, int, int]:
    """``path:start:end`` -> its parts (``ValueError`` when malformed)."""
    path, start, end = name.rsplit(":", 2)
    if not (start.isdigit() and end.isdigit()):
        raise ValueError(f"bad shard name {name!r}")
    return path, int(start), int(end)


def _resource_key(name: str, sharded: bool) -> tuple[tuple[str, ...], int, int]:
    if sharded:
        path, start, end = _parse_shard(name)
        return PurePosixPath(path).parts, start, end
    return PurePosixPath(name).parts, 0, 0


@dataclass(frozen=True, kw_only=True)
class Verification:
    """A successful verification: what was checked and by which key.

    ``unsigned``: files present in the model under paths the signature leaves out (its signed
    ``ignore_paths``), which the signature therefore does not vouch for; ``verify(strict=True)`` fails
    on any of them.
    """

    path: Path
    signature: Path
    files: int
    key_type: str
    root_digest: str
    manifest: Manifest = field(repr=False)
    unsigned: tuple[str, ...] = ()

    @property
    def serialization(self) -> str:
        """How the signature lists the model: ``"files"`` or ``"shards"``."""
        return self.manifest.serialization


# --- hashing --------------------------------------------------------------------------------------


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file as hex, streamed through this thread's reused 1 MiB buffer (bounded memory)."""
    return hash_range(path)


def default_shard_size(total_bytes: int) -> int:
    """Shard size for ``serialization="shards"``: 16 MiB (enough shards to keep many cores busy on
    one checkpoint), doubled until the model has at most 4096 shards (a signature of a few hundred KiB).
    It depends only on the model's size, so the same model always gets the same signature."""
    size = DEFAULT_SHARD_SIZE
    while total_bytes > size * MAX_AUTO_SHARDS:
        size *= 2
    return size


def _is_ignored(rel: PurePosixPath, ignore: Iterable[str]) -> bool:
    for ig in ignore:
        p = PurePosixPath(ig)
        if rel == p or p in rel.parents:
            return True
    return False


def _rel_ignores(root: Path, paths: Iterable[str | Path], *, model_relative: bool = True) -> list[str]:
    """Ignore paths relative to ``root``. A path is taken as given from the working directory when that
    lands inside ``root``; otherwise (``model_relative``) as a path inside the model unless it has a ``..``
    component (it would climb out), else dropped."""
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
        if model_relative and not pp.is_absolute() and ".." not in pp.parts:
            out.append(PurePosixPath(pp.as_posix()).as_posix())  # already relative to the model
    return sorted(set(out))


def _walk(p: Path, ignores: tuple[str, ...]) -> list[tuple[str, int]]:
    """``(relative path, size)`` of every regular file under ``p`` that is not ignored. Symbolic links
    and special files (FIFOs, sockets, devices) are refused: fail closed."""
    out: list[tuple[str, int]] = []
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
            st = os.lstat(base / f)
            if stat.S_ISLNK(st.st_mode):
                raise IntegrityError(f"{p}: {rel} is a symbolic link; links are not allowed in a signed model")
            if not stat.S_ISREG(st.st_mode):
                raise IntegrityError(f"{p}: {rel} is not a regular file (a FIFO, socket or device); "
                                     "it cannot be part of a signed model")
            out.append((str(rel), st.st_size))
    return out


@dataclass(frozen=True)
class _Plan:
    """What :func:`build_manifest` will hash: resource names and their ``(file, start, end)`` jobs."""

    name: str
    names: list[str]
    jobs: list[Job]
    sizes: list[int]
    empty: tuple[str, ...]
    ignores: tuple[str, ...]
    shard_size: int | None

    def hash(self, workers: int | None, stop: threading.Event | None = None) -> Manifest:
        digests = hash_jobs(self.jobs, workers=workers, sizes=self.sizes, stop=stop)
        return Manifest(name=self.name, files=dict(zip(self.names, digests)), ignore_paths=self.ignores,
                        shard_size=self.shard_size, empty=self.empty)


def _present_git_paths(p: Path) -> list[str]:
    """The default-ignored git paths that exist in directory ``p`` (only those are left unsigned)."""
    return [g for g in GIT_PATHS if os.path.lexists(p / g)]


def _unsigned_files(p: Path, ignores: Sequence[str], exempt: Sequence[str]) -> tuple[str, ...]:
    """Every entry (file, link, special file) under ``p`` that an ignore path covers, except ``exempt``
    (the signature itself): what the signature does not vouch for. Not followed into links."""
    out: list[str] = []
    if not ignores:
        return ()
    for dirpath, dirnames, filenames in os.walk(p):
        base = Path(dirpath)
        names = list(filenames) + [d for d in dirnames if (base / d).is_symlink()]
        dirnames[:] = sorted(d for d in dirnames if not (base / d).is_symlink())
        for f in names:
            rel = PurePosixPath((base / f).relative_to(p).as_posix())
            if _is_ignored(rel, ignores) and not _is_ignored(rel, exempt):
                out.append(str(rel))
    return tuple(sorted(out, key=lambda n: PurePosixPath(n).parts))


def _plan(path: str | Path, ignore_paths: Sequence[str], shard_size: int | Literal["auto"] | None) -> _Plan:
    p = Path(path)
    if shard_size is not None and shard_size != "auto" and (
            isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1):
        raise UserError(f"shard size must be a positive number of bytes, not {shard_size!r}")
    if not p.exists():
        raise InputNotFoundError(f"model not found: {p}")
    if p.is_symlink():
        raise UserError(f"{p} is a symbolic link; sign the file it points to")
    if p.is_file():
        entries, ignores = [(".", p.stat().st_size)], tuple(GIT_PATHS)
    elif p.is_dir():
        ignores = tuple(sorted(set(ignore_paths)))
        entries = _walk(p, ignores)
    else:
        raise UserError(f"{p} is not a regular file or a directory")
    entries.sort(key=lambda e: _resource_key(e[0], False))
    if shard_size == "auto":
        shard_size = default_shard_size(sum(size for _, size in entries))
    names: list[str] = []
    jobs: list[Job] = []
    sizes: list[int] = []
    empty: list[str] = []
    for rel, size in entries:
        target = p if rel == "." else p / rel
        if shard_size is None:
            names.append(rel)
            jobs.append((target, 0, None))
            sizes.append(size)
            continue
        if not size:
            empty.append(rel)
        for start, end in shard_ranges(size, shard_size):
            names.append(f"{rel}:{start}:{end}")
            jobs.append((target, start, end))
            sizes.append(end - start)
    return _Plan(p.name, names, jobs, sizes, tuple(empty), ignores, shard_size)


def build_manifest(path: str | Path, *, ignore_paths: Sequence[str] = (), workers: int | None = None,
                   shard_size: int | Literal["auto"] | None = None) -> Manifest:
    """Hash a model file or directory in parallel threads (``workers``, default: one per CPU).

    ``shard_size=None`` lists one digest per file; an integer lists one per ``shard_size``-byte shard of
    every file (the ``shards`` serialization), so even one big file hashes on every core; ``"auto"``
    picks :func:`default_shard_size` for the model's size. Symbolic links and special files are
    refused (fail closed).
    """
    return _plan(path, ignore_paths, shard_size).hash(workers)


def default_signature_path(path: str | Path) -> Path:
    """``<file>.sig`` for a file, ``<dir>/model.sig`` for a directory."""
    p = Path(path)
    return p / "model.sig" if p.is_dir() else p.with_name(p.name + ".sig")


# --- DSSE / bundle --------------------------------------------------------------------------------


def _pae(payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def _ec_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    from cryptography.hazmat.primitives import hashes  # lazy: cryptography stays off CLI start-up

    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]


def _key_type(key: PublicKey) -> str:
    from cryptography.hazmat.primitives.asymmetric import ed25519  # lazy: cryptography stays off CLI start-up

    return "ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else f"ecdsa-{key.curve.name}"


def _algorithm(shard_size: int | None) -> str:
    """The resource digest name ``model_signing`` writes (and compares): ``sha256``, or
    ``sha256-sharded-<shard size>`` for shards."""
    return "sha256" if shard_size is None else f"sha256-sharded-{shard_size}"


def _statement(m: Manifest) -> dict[str, Any]:
    serialization: dict[str, Any] = {"method": m.serialization, "hash_type": "sha256"}
    if m.shard_size is not None:
        serialization["shard_size"] = m.shard_size  # an integer: model_signing needs one to re-shard
    serialization |= {"allow_symlinks": False, "ignore_paths": list(m.ignore_paths)}
    algorithm = _algorithm(m.shard_size)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": m.name, "digest": {"sha256": m.root_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": serialization,
            "resources": [{"name": n, "algorithm": algorithm, "digest": m.files[n]} for n in m.resources()],
        },
    }


def sign_manifest(manifest: Manifest, key: PrivateKey) -> dict[str, Any]:
    """The Sigstore bundle (as a JSON-ready dict) signing ``manifest`` with ``key``."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from modelshield.protect.keys import public_pem  # lazy: pulls in cryptography only when used

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


T = TypeVar("T")


class _Background(Generic[T]):
    """``fn()`` running in a thread from construction on; :meth:`result` joins and returns or raises.

    Loading a key (importing ``cryptography``, parsing the PEM) and checking a signature hold the GIL,
    while hashing a model releases it on every block, so the two can run side by side. ``failed`` is set
    as soon as ``fn`` raises, so the hashing stops early (fail fast).
    """

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self.failed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelshield-key", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
            self.failed.set()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def _hash_beside(plan: _Plan, workers: int | None, pending: _Background[Any]) -> Manifest:
    """Hash ``plan`` while ``pending`` runs; ``pending``'s error wins over a hashing error (the order a
    sequential run would report them in)."""
    try:
        return plan.hash(workers, stop=pending.failed)
    except BaseException:
        pending.result()  # raises the key's or signature's error, if any
        raise


def sign(path: str | Path, key: PrivateKey | Callable[[], PrivateKey], *, signature: str | Path | None = None,
         ignore_paths: Sequence[str | Path] = (), force: bool = False, serialization: Serialization = "files",
         shard_size: int | None = None, workers: int | None = None) -> Path:
    """Sign a model file or directory; writes the bundle (default :func:`default_signature_path`).

    ``serialization="files"`` (default) lists one SHA-256 per file: every ``model_signing`` verifier
    accepts it, its CLI included. ``"shards"`` lists one per ``shard_size``-byte shard (default
    :func:`default_shard_size`), so one big checkpoint hashes on every core when signing and verifying;
    ``modelshield`` and ``model_signing``'s Python API verify it, but ``model_signing verify key`` (CLI
    1.1.1) always re-hashes per file and rejects it. ``workers``: hashing threads (default: one per CPU).
    ``key`` may be a function returning the key (e.g. ``lambda: load_private_key(pem)``): it then runs
    while the model hashes, and its error (wrong password, unreadable key) stops the hashing.
    """
    p = Path(path)
    if serialization not in ("files", "shards"):
        raise UserError(f"unknown serialization {serialization!r}; expected 'files' or 'shards'")
    if shard_size is not None and serialization != "shards":
        raise UserError("a shard size needs serialization='shards'")
    if not p.exists():
        raise InputNotFoundError(f"model not found: {p}")
    sig_path = Path(signature) if signature is not None else default_signature_path(p)
    if sig_path.exists() and not force:
        raise OutputError.exists(sig_path, what="signature")
    # a directory leaves out the git paths that exist now (as model_signing does), and only those: the
    # signed ignore_paths say exactly what is unsigned, so a git file added later fails verification
    ignores = (_rel_ignores(p, ignore_paths) + _rel_ignores(p, [sig_path], model_relative=False)
               + _present_git_paths(p) if p.is_dir() else [])
    shards: int | Literal["auto"] | None = None
    if serialization == "shards":
        shards = "auto" if shard_size is None else shard_size
    plan = _plan(p, ignores, shards)
    if plan.shard_size is not None:
        _check_shardable(p, plan)  # before hashing anything
    if callable(key):
        pending = _Background(key)
        manifest = _hash_beside(plan, workers, pending)
        bundle = sign_manifest(manifest, pending.result())
    else:
        bundle = sign_manifest(plan.hash(workers), key)
    with AtomicOutput(sig_path, force) as fh:
        fh.write((json.dumps(bundle, indent=2) + "\n").encode("utf-8"))
    return sig_path


def _check_shardable(p: Path, m: _Plan) -> None:
    """Refuse what the ``shards`` format cannot represent (fail closed rather than sign less than asked)."""
    if m.empty:
        shown = ", ".join(m.name if e == "." else e for e in m.empty[:5])
        raise UserError(f"cannot sign {p} with shards: the shards format cannot list empty files ({shown}), "
                        "so adding or removing one would go unnoticed; sign per file (the default), or "
                        "remove or ignore them")
    colons = sorted({n.rsplit(":", 2)[0] for n in m.names if ":" in n.rsplit(":", 2)[0]})
    if colons:
        raise UserError(f"cannot sign {p} with shards: file names with ':' ({colons[0]}) are ambiguous in "
                        "shard names (path:start:end); sign per file (the default)")


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise IntegrityError(f"signature file is malformed: {what} is not base64") from None


def _signed_manifest(sig_path: Path, public_key: PublicKey, subject: str | Path) -> tuple[Manifest, str]:
    """The manifest inside ``sig_path`` after its signature verified under ``public_key``, and the
    signed root digest."""
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
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from modelshield.protect.keys import public_pem  # lazy: pulls in cryptography only when used

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


def _manifest_from_statement(stmt: dict[str, Any], sig_path: Path) -> tuple[Manifest, str]:
    try:
        if stmt["_type"] != STATEMENT_TYPE or stmt["predicateType"] != PREDICATE_TYPE:
            raise IntegrityError(
                f"{sig_path}: unsupported statement ({stmt.get('_type')}, {stmt.get('predicateType')}); "
                f"expected {PREDICATE_TYPE}"
            )
        (subject,) = stmt["subject"]
        pred = stmt["predicate"]
        ser = pred["serialization"]
        method = ser.get("method")
        if method not in ("files", "shards") or ser.get("hash_type") != "sha256":
            raise IntegrityError(
                f"{sig_path}: serialization {method}/{ser.get('hash_type')} is not supported; "
                "sign with method 'files' or 'shards' and SHA-256"
            )
        shard_size = _signed_shard_size(ser["shard_size"], sig_path) if method == "shards" else None
        algorithm = _algorithm(shard_size)
        files: dict[str, str] = {}
        root = hashlib.sha256()
        for res in pred["resources"]:
            if res["algorithm"] != algorithm:
                raise IntegrityError(f"{sig_path}: digest algorithm {res['algorithm']} is not supported "
                                     f"(expected {algorithm})")
            name, digest = str(res["name"]), bytes.fromhex(str(res["digest"]))
            if len(digest) != 32:
                raise ValueError("not a SHA-256 digest")
            if shard_size is not None:
                _, start, end = _parse_shard(name)
                if start % shard_size or not start < end <= start + shard_size:
                    raise ValueError(f"shard {name} is not a {shard_size}-byte shard")
            if name in files:
                raise IntegrityError(f"{sig_path}: resource {name} is listed twice")
            files[name] = digest.hex()
            root.update(digest)  # in the order signed, as model_signing checks it
        if root.hexdigest() != str(subject["digest"]["sha256"]).lower():
            raise IntegrityError(f"{sig_path}: the statement is inconsistent (root digest mismatch)")
        return Manifest(name=str(subject["name"]), files=files, shard_size=shard_size,
                        ignore_paths=tuple(str(x) for x in ser.get("ignore_paths", ()))), root.hexdigest()
    except (KeyError, TypeError, ValueError, AttributeError):
        raise IntegrityError(f"{sig_path}: the signed statement is malformed") from None


def _signed_shard_size(value: Any, sig_path: Path) -> int:
    """``serialization.shard_size``. ``model_signing`` writes it through a protobuf ``Struct``, whose
    numbers are doubles (``1000000000.0``): an integral float is accepted, anything else is not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise IntegrityError(f"{sig_path}: the signed shard size {value!r} is not a positive integer")
    return value


#: Signatures listing shards smaller than this are checked before hashing (no early start), so an
#: unverified statement cannot make the verifier plan millions of tiny hashing jobs.
_MIN_EARLY_SHARD = 1 << 20


def _unverified(sig_path: Path) -> tuple[dict[str, Any], bytes, bytes, Manifest, str] | None:
    """The bundle and its manifest *before* the signature is checked, to start hashing early; ``None``
    whenever anything is off (the sequential path then reports it exactly as before)."""
    if not sig_path.is_file():
        return None
    try:
        bundle, payload, sig = _parse_bundle(sig_path)
        expected, root = _manifest_from_statement(json.loads(payload), sig_path)
    except (IntegrityError, ValueError):
        return None
    if expected.shard_size is not None and expected.shard_size < _MIN_EARLY_SHARD:
        return None
    return bundle, payload, sig, expected, root


def _plan_against(p: Path, sig_path: Path, expected: Manifest) -> _Plan:
    if p.is_dir():
        ignores = [*expected.ignore_paths, *_rel_ignores(p, [sig_path], model_relative=False)]
        return _plan(p, ignores, expected.shard_size)
    return _plan(p, (), expected.shard_size)


def verify(path: str | Path, public_key: PublicKey | Callable[[], PublicKey], *,
           signature: str | Path | None = None, workers: int | None = None, strict: bool = False) -> Verification:
    """Verify a model against a signature bundle; raises :class:`IntegrityError` naming what differs.

    The serialization (per file or shards, and the shard size) is read from the signed statement, so
    both verify without options. ``workers``: hashing threads (default: one per CPU).
    ``public_key`` may be a function returning the key: loading it and checking the signature then
    run while the model hashes. Nothing is trusted before the signature checks: a bad signature is
    reported before any difference, and stops the hashing.

    Only the signed ``ignore_paths`` are left out: any other file that is not signed (a ``.gitattributes``
    or ``.github`` workflow added after signing included) fails. Files present under the signed
    ``ignore_paths`` are returned in :attr:`Verification.unsigned`; ``strict=True`` fails on them too.
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"model not found: {p}")
    sig_path = Path(signature) if signature is not None else default_signature_path(p)
    early = _unverified(sig_path) if callable(public_key) else None
    if early is not None:
        bundle, payload, sig, expected, root = early
        loader = public_key

        def checked_key() -> PublicKey:
            key = loader()  # type: ignore[operator]
            _check_signature(key, payload, sig, sig_path, bundle)
            return key

        check = _Background(checked_key)
        actual = _hash_beside(_plan_against(p, sig_path, expected), workers, check)
        key = check.result()
    else:
        key = public_key() if callable(public_key) else public_key
        expected, root = _signed_manifest(sig_path, key, p)
        actual = _plan_against(p, sig_path, expected).hash(workers)
    problems = expected.diff(actual)
    unsigned: tuple[str, ...] = ()
    if p.is_dir():
        unsigned = _unsigned_files(p, expected.ignore_paths, _rel_ignores(p, [sig_path], model_relative=False))
        if strict:
            problems += [f"unsigned (in a path the signature leaves out): {u}" for u in unsigned]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise IntegrityError(f"{p} does not match its signature: {shown}")
    return Verification(path=p, signature=sig_path, files=len(expected.paths()), key_type=_key_type(key),
                        root_digest=root, manifest=expected, unsigned=unsigned)


def verify_bytes(data: bytes | bytearray | memoryview, name: str, public_key: PublicKey, *,
                 signature: str | Path, workers: int | None = None) -> Verification:
    """Verify in-memory file content against a single-file signature (per file or shards).

    The secure loader reads a model once and verifies, decrypts, scans and loads those same bytes, so
    the file cannot be swapped between verification and loading.
    """
    sig_path = Path(signature)
    expected, root = _signed_manifest(sig_path, public_key, name)
    view = memoryview(data).cast("B")
    if expected.shard_size is None:
        actual = Manifest(name=name, files={".": hashlib.sha256(view).hexdigest()})
    else:
        ranges = shard_ranges(len(view), expected.shard_size)
        digests = hash_buffer_ranges(view, ranges, workers=workers)
        actual = Manifest(name=name, files={f".:{s}:{e}": d for (s, e), d in zip(ranges, digests)},
                          shard_size=expected.shard_size, empty=() if ranges else (".",))
    problems = expected.diff(actual)
    if problems:
        raise IntegrityError(f"{name} does not match its signature: {'; '.join(problems[:10])}")
    return Verification(path=Path(name), signature=sig_path, files=1, key_type=_key_type(public_key),
                        root_digest=root, manifest=expected)
