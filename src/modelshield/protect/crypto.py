"""Encryption at rest: a streamed, chunked AES-256-GCM container with envelope keys.

Container layout (version 1, all integers big-endian)::

    fixed header (24 bytes)  magic "\\x89MSHLD\\r\\n" | version=1 | aead=1 (AES-256-GCM) | flags=0 (2)
                             | chunk_size (4) | nonce_prefix (7, random) | reserved=0 (1)
    key section  (88 bytes)  kdf (0 raw key, 1 scrypt) | log2(N) | r | p | salt (16) | key_id (8)
                             | wrap_nonce (12) | wrapped data key (32 + 16-byte tag)
    chunks                   AES-256-GCM(data_key, nonce_i, chunk_i, aad=fixed header) || tag (16)

* **Envelope encryption.** Each file gets a random 256-bit *data key*; the payload is encrypted with
  it. The data key is wrapped (AES-256-GCM) by the *key-encryption key* (KEK): the master key itself,
  or scrypt(passphrase, salt). :func:`rotate_file` re-encrypts the payload under a fresh data key and
  nonce prefix wrapped by the new key (so the old key and an old copy no longer open or forge the
  rotated file); ``rewrap_only=True`` only rewraps the old data key (fast, but see its warning).
* **scrypt cost is capped before deriving.** The cost (N, r, p) is read from the header before anything
  is authenticated, so a crafted header could ask for gigabytes and minutes: files whose cost
  ``128 * N * r * p`` bytes exceeds the ceiling (default 256 MiB, twice what modelshield writes;
  environment variable ``MODELSHIELD_SCRYPT_MAX_MIB``) are refused before any derivation, and
  encryption refuses to write a cost that decryption would refuse.
* **STREAM construction** (Hoang, Reyhanitabar, Rogaway, Vizár, 2015): chunk ``i`` uses the nonce
  ``nonce_prefix || i (4 bytes) || last (1 byte)``. Reordered chunks fail (wrong index), a truncated
  file fails (its new last chunk was sealed with ``last=0``), appended data fails (the real last chunk
  was sealed with ``last=1``).
* **Every header byte is authenticated.** The fixed header is the AAD of every chunk and of the key
  wrap; the key section is the AAD of the wrap (except the wrapped key, which is the wrap's
  ciphertext), and the salt/KDF parameters determine the KEK.
* ``key_id`` = SHA-256("modelshield.kid.v1" || KEK)[:8] lets a wrong key be reported as such.

Decryption to memory (:func:`decrypt_bytes`, :func:`decrypt_file_to_bytes`) never writes plaintext to
disk. File output (:func:`decrypt_file`) goes to a temp file in the destination folder that is renamed
only after the final chunk authenticates, and deleted on any failure.

References
----------
Hoang, V.T., Reyhanitabar, R., Rogaway, P., Vizár, D. "Online Authenticated-Encryption and its
Nonce-Reuse Misuse-Resistance." CRYPTO 2015 (the STREAM construction).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from modelshield._io import AtomicOutput
from modelshield.errors import InputNotFoundError, IntegrityError, UserError
from modelshield.protect.keys import KEY_LEN

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_LEN",
    "MAGIC",
    "ContainerHeader",
    "ScryptParams",
    "decrypt_bytes",
    "decrypt_file",
    "decrypt_file_to_bytes",
    "decrypt_stream",
    "encrypt_bytes",
    "encrypt_file",
    "encrypt_stream",
    "is_encrypted",
    "iter_decrypt",
    "read_header",
    "rewrap_header",
    "rotate_file",
]

MAGIC = b"\x89MSHLD\r\n"
VERSION = 1
AEAD_AES256GCM = 1
KDF_RAW = 0
KDF_SCRYPT = 1
TAG_LEN = 16
FIXED_LEN = 24
KEYSEC_LEN = 88
HEADER_LEN = FIXED_LEN + KEYSEC_LEN
DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 1 << 12
MAX_CHUNK_SIZE = 1 << 26
#: Nonce layout (12 bytes): prefix (7, random per file) || chunk index (4, big-endian) || last flag (1).
NONCE_PREFIX_LEN = 7
NONCE_INDEX_LEN = 4
_MAX_CHUNKS = 1 << (8 * NONCE_INDEX_LEN)
_FIXED = struct.Struct(">8sBBHI7sB")
_KDF = struct.Struct(">BBBB16s")
_KID_LABEL = b"modelshield.kid.v1"

ERR_WRONG_KEY = ("wrong key: this file names key id {want}, the key given has id {got} (or the file's header "
                 "was altered: the key id is authenticated with the content)")
ERR_HEADER = "the header failed authentication: the file was tampered with or damaged"
ERR_CHUNK = (
    "chunk {i} failed authentication: the file was tampered with, truncated, reordered or extended "
    "(nothing was written)"
)
ERR_TRUNCATED = "the file is truncated: {why} (nothing was written)"
ERR_MAGIC = "not a modelshield-encrypted file (magic bytes do not match): damaged, tampered with or never encrypted"


#: Environment variable: the scrypt cost ceiling in MiB (``128 * N * r * p`` bytes; see ScryptParams).
SCRYPT_MAX_ENV = "MODELSHIELD_SCRYPT_MAX_MIB"
#: Default ceiling: twice the cost modelshield writes by default (2**17, 8, 1 = 128 MiB).
DEFAULT_SCRYPT_MAX_MIB = 256
#: The largest ceiling the environment variable may set (2 GiB of memory x passes).
HARD_SCRYPT_MAX_MIB = 2048
#: Structural bounds of the header fields (inclusive).
SCRYPT_LOG2_N_RANGE = (10, 22)
SCRYPT_R_RANGE = (1, 32)
SCRYPT_P_RANGE = (1, 16)


def scrypt_ceiling() -> int:
    """The scrypt cost ceiling in bytes: ``MODELSHIELD_SCRYPT_MAX_MIB`` MiB, default 256 MiB."""
    raw = os.environ.get(SCRYPT_MAX_ENV, "").strip()
    if not raw:
        return DEFAULT_SCRYPT_MAX_MIB << 20
    if not raw.isdigit() or not 1 <= int(raw) <= HARD_SCRYPT_MAX_MIB:
        raise UserError(f"{SCRYPT_MAX_ENV}={raw!r}: expected a whole number of MiB from 1 to {HARD_SCRYPT_MAX_MIB}")
    return int(raw) << 20


@dataclass(frozen=True, kw_only=True)
class ScryptParams:
    """scrypt cost: N = 2**log2_n, r, p. The default (2**17, 8, 1) needs 128 MiB and ~0.3 s.

    :meth:`cost` is ``128 * N * r * p`` bytes: the memory of one pass times the number of passes, so
    it bounds both the memory and the time a derivation takes. :meth:`validate` refuses a cost above
    :func:`scrypt_ceiling` before anything is derived.
    """

    log2_n: int = 17
    r: int = 8
    p: int = 1

    def cost(self) -> int:
        return 128 * self.r * self.p * (1 << self.log2_n)

    def validate(self, *, writing: bool = False, ceiling: int | None = None) -> None:
        """Refuse out-of-range or too costly parameters (before any derivation).

        Reading a header: :class:`IntegrityError` (exit 3; the cost is unauthenticated until the key
        is derived, so a crafted header must not cost more than the ceiling). ``writing``:
        :class:`UserError` (exit 2): encryption never writes a file that decryption would refuse.
        """
        err: type[Exception] = UserError if writing else IntegrityError
        where = "scrypt parameters" if writing else f"{ERR_HEADER} (scrypt parameters"
        end = "" if writing else ")"
        (n_lo, n_hi), (r_lo, r_hi), (p_lo, p_hi) = SCRYPT_LOG2_N_RANGE, SCRYPT_R_RANGE, SCRYPT_P_RANGE
        if not (n_lo <= self.log2_n <= n_hi and r_lo <= self.r <= r_hi and p_lo <= self.p <= p_hi):
            raise err(f"{where} out of range: log2(N)={self.log2_n} (allowed {n_lo}-{n_hi}), r={self.r} "
                      f"({r_lo}-{r_hi}), p={self.p} ({p_lo}-{p_hi}){end}")
        limit = scrypt_ceiling() if ceiling is None else ceiling
        if self.cost() > limit:
            raise err(f"{where} cost too much: N=2^{self.log2_n}, r={self.r}, p={self.p} need "
                      f"{self.cost() >> 20} MiB x passes, over the ceiling of {limit >> 20} MiB; refused before "
                      f"deriving (raise {SCRYPT_MAX_ENV} only for a file you made with that cost){end}")


@dataclass(frozen=True, kw_only=True)
class ContainerHeader:
    """The parsed header of an encrypted container (public metadata only; no secrets)."""

    version: int
    chunk_size: int
    nonce_prefix: bytes
    kdf: int
    scrypt: ScryptParams | None
    salt: bytes
    key_id: bytes
    wrap_nonce: bytes
    wrapped_key: bytes
    fixed: bytes  # the 24 fixed bytes, bound as AAD

    @property
    def key_section_aad(self) -> bytes:
        return self.fixed + self._kdf_bytes() + self.key_id + self.wrap_nonce

    def _kdf_bytes(self) -> bytes:
        s = self.scrypt or ScryptParams(log2_n=0, r=0, p=0)
        return _KDF.pack(self.kdf, s.log2_n, s.r, s.p, self.salt)

    def to_bytes(self) -> bytes:
        return self.key_section_aad + self.wrapped_key

    def describe(self) -> dict[str, object]:
        return {
            "format": f"modelshield encrypted container v{self.version}",
            "cipher": "AES-256-GCM (STREAM chunks)",
            "chunk_size": self.chunk_size,
            "key": "passphrase (scrypt)" if self.kdf == KDF_SCRYPT else "master key",
            "scrypt": None if self.scrypt is None else
            {"N": 1 << self.scrypt.log2_n, "r": self.scrypt.r, "p": self.scrypt.p},
            "key_id": self.key_id.hex(),
        }


# --- keys -----------------------------------------------------------------------------------------


def _key_id(kek: bytes) -> bytes:
    return hashlib.sha256(_KID_LABEL + kek).digest()[:8]


def _kek(header_kdf: int, salt: bytes, params: ScryptParams | None, key: bytes | None,
         passphrase: bytes | str | None, *, writing: bool = False) -> bytes:
    if (key is None) == (passphrase is None):
        raise UserError("give exactly one of a key (key file / --key-env) or a passphrase")
    if header_kdf == KDF_RAW:
        if key is None:
            raise IntegrityError("this file was encrypted with a master key, not a passphrase")
        if len(key) != KEY_LEN:
            raise UserError(f"a master key has {KEY_LEN} bytes, got {len(key)}")
        return bytes(key)
    if passphrase is None:
        raise IntegrityError("this file was encrypted with a passphrase, not a master key")
    if params is None:
        raise IntegrityError(f"{ERR_HEADER} (scrypt parameters missing)")
    params.validate(writing=writing)
    pw = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    return Scrypt(salt=salt, length=KEY_LEN, n=1 << params.log2_n, r=params.r, p=params.p).derive(pw)


def _new_header(*, data_key: bytes, key: bytes | None, passphrase: bytes | str | None,
                chunk_size: int, scrypt: ScryptParams | None, nonce_prefix: bytes | None = None) -> ContainerHeader:
    if not (MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE):
        raise UserError(f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes")
    prefix = os.urandom(NONCE_PREFIX_LEN) if nonce_prefix is None else nonce_prefix
    if len(prefix) != NONCE_PREFIX_LEN:
        raise UserError(f"a nonce prefix has {NONCE_PREFIX_LEN} bytes, got {len(prefix)}")
    fixed = _FIXED.pack(MAGIC, VERSION, AEAD_AES256GCM, 0, chunk_size, prefix, 0)
    kdf = KDF_RAW if passphrase is None else KDF_SCRYPT
    params = (scrypt or ScryptParams()) if kdf == KDF_SCRYPT else None
    salt = os.urandom(16) if kdf == KDF_SCRYPT else bytes(16)
    kek = _kek(kdf, salt, params, key, passphrase, writing=True)
    proto = ContainerHeader(version=VERSION, chunk_size=chunk_size, nonce_prefix=prefix, kdf=kdf, scrypt=params,
                            salt=salt, key_id=_key_id(kek), wrap_nonce=os.urandom(12), wrapped_key=b"",
                            fixed=fixed)
    wrapped = AESGCM(kek).encrypt(proto.wrap_nonce, data_key, proto.key_section_aad)
    return ContainerHeader(**{**proto.__dict__, "wrapped_key": wrapped})


def parse_header(buf: bytes) -> ContainerHeader:
    """Parse (not authenticate) a header. Structural errors are integrity errors: fail closed."""
    if len(buf) < len(MAGIC) or buf[: len(MAGIC)] != MAGIC:
        raise IntegrityError(ERR_MAGIC)
    if len(buf) < HEADER_LEN:
        raise IntegrityError(ERR_TRUNCATED.format(why=f"the header has {len(buf)} of {HEADER_LEN} bytes"))
    _magic, version, aead, flags, chunk_size, prefix, reserved = _FIXED.unpack_from(buf, 0)
    if version != VERSION:
        raise IntegrityError(f"{ERR_HEADER} (unsupported container version {version}; this build reads v1)")
    if aead != AEAD_AES256GCM or flags != 0 or reserved != 0:
        raise IntegrityError(f"{ERR_HEADER} (unknown cipher/flags)")
    if not (MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE):
        raise IntegrityError(f"{ERR_HEADER} (chunk size {chunk_size} out of range)")
    kdf, log2_n, r, p, salt = _KDF.unpack_from(buf, FIXED_LEN)
    o = FIXED_LEN + _KDF.size
    key_id, wrap_nonce, wrapped = buf[o:o + 8], buf[o + 8:o + 20], buf[o + 20:o + 20 + KEY_LEN + TAG_LEN]
    if kdf == KDF_SCRYPT:
        params: ScryptParams | None = ScryptParams(log2_n=log2_n, r=r, p=p)
    elif kdf == KDF_RAW and (log2_n, r, p) == (0, 0, 0):
        params = None
    else:
        raise IntegrityError(f"{ERR_HEADER} (unknown key derivation {kdf})")
    return ContainerHeader(version=version, chunk_size=chunk_size, nonce_prefix=prefix, kdf=kdf, scrypt=params,
                           salt=salt, key_id=bytes(key_id), wrap_nonce=bytes(wrap_nonce),
                           wrapped_key=bytes(wrapped), fixed=bytes(buf[:FIXED_LEN]))


def _unwrap(header: ContainerHeader, key: bytes | None, passphrase: bytes | str | None) -> bytes:
    kek = _kek(header.kdf, header.salt, header.scrypt, key, passphrase)
    got = _key_id(kek)
    try:
        data_key = AESGCM(kek).decrypt(header.wrap_nonce, header.wrapped_key, header.key_section_aad)
    except InvalidTag:
        if hmac.compare_digest(got, header.key_id):
            raise IntegrityError(ERR_HEADER) from None  # right key, altered header
        if header.kdf == KDF_SCRYPT:
            raise IntegrityError("wrong passphrase (or the header's salt/cost was tampered with)") from None
        raise IntegrityError(ERR_WRONG_KEY.format(want=header.key_id.hex(), got=got.hex())) from None
    return data_key  # the key id is in the wrap's AAD: authenticated along with the data key


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= _MAX_CHUNKS:
        raise UserError("file too large for this chunk size (2**32 chunks)")
    return prefix + index.to_bytes(NONCE_INDEX_LEN, "big") + (b"\x01" if last else b"\x00")


# --- encryption -----------------------------------------------------------------------------------


def encrypt_stream(src: BinaryIO, dst: BinaryIO, *, key: bytes | None = None,
                   passphrase: bytes | str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                   scrypt: ScryptParams | None = None) -> ContainerHeader:
    """Encrypt ``src`` to ``dst`` chunk by chunk; memory stays at two chunks whatever the size."""
    data_key = AESGCM.generate_key(256)
    header = _new_header(data_key=data_key, key=key, passphrase=passphrase, chunk_size=chunk_size,
                         scrypt=scrypt)
    aead = AESGCM(data_key)
    dst.write(header.to_bytes())
    cur, nxt = bytearray(chunk_size), bytearray(chunk_size)
    out = bytearray(chunk_size + TAG_LEN)
    n_cur = _read_full(src, cur)
    index = 0
    while True:
        n_nxt = _read_full(src, nxt) if n_cur == chunk_size else 0
        last = n_nxt == 0
        view = memoryview(out)[: n_cur + TAG_LEN]
        aead.encrypt_into(_nonce(header.nonce_prefix, index, last), memoryview(cur)[:n_cur], header.fixed, view)
        dst.write(view)
        if last:
            return header
        cur, nxt, n_cur = nxt, cur, n_nxt
        index += 1


def _read_full(src: BinaryIO, buf: bytearray) -> int:
    """Fill ``buf`` from ``src`` (short only at EOF); returns the byte count."""
    view = memoryview(buf)
    n = 0
    while n < len(buf):
        got = src.readinto(view[n:])  # type: ignore[attr-defined]
        if not got:
            break
        n += got
    return n


def encrypt_bytes(data: bytes, *, key: bytes | None = None, passphrase: bytes | str | None = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, scrypt: ScryptParams | None = None) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key=key, passphrase=passphrase, chunk_size=chunk_size, scrypt=scrypt)
    return out.getvalue()


def encrypt_file(src: str | Path, dst: str | Path, *, key: bytes | None = None,
                 passphrase: bytes | str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 scrypt: ScryptParams | None = None, force: bool = False) -> ContainerHeader:
    """Encrypt file ``src`` to ``dst`` atomically (temp file in ``dst``'s folder, then rename)."""
    src_p = _existing_file(src)
    with src_p.open("rb") as fin, AtomicOutput(dst, force) as fout:
        return encrypt_stream(fin, fout, key=key, passphrase=passphrase, chunk_size=chunk_size, scrypt=scrypt)


# --- decryption -----------------------------------------------------------------------------------


def _plain_size(total: int, chunk_size: int) -> tuple[int, int]:
    """(plaintext size, chunk count) for a container of ``total`` bytes; raises if impossible."""
    payload = total - HEADER_LEN
    if payload < TAG_LEN:
        raise IntegrityError(ERR_TRUNCATED.format(why="no complete chunk after the header"))
    seg = chunk_size + TAG_LEN
    n = -(-payload // seg)
    if payload - (n - 1) * seg < TAG_LEN:
        raise IntegrityError(ERR_TRUNCATED.format(why="the last chunk is shorter than its tag"))
    return payload - n * TAG_LEN, n


def _read_header(src: BinaryIO) -> ContainerHeader:
    buf = bytearray(HEADER_LEN)
    return parse_header(bytes(buf[: _read_full(src, buf)]))


def iter_decrypt(src: BinaryIO, *, key: bytes | None = None,
                 passphrase: bytes | str | None = None) -> Iterator[bytes]:
    """Yield authenticated plaintext chunks from a container stream.

    Each chunk is authenticated before it is yielded, but the *end* of the stream is only
    authenticated when the iterator finishes: consume it completely before acting on the data
    (a truncated stream raises :class:`IntegrityError` at the end, not at the start).
    """
    header = _read_header(src)
    aead = AESGCM(_unwrap(header, key, passphrase))
    seg = header.chunk_size + TAG_LEN
    cur, nxt = bytearray(seg), bytearray(seg)
    n_cur = _read_full(src, cur)
    index = 0
    while True:
        n_nxt = _read_full(src, nxt) if n_cur == seg else 0
        last = n_nxt == 0
        if n_cur < TAG_LEN:
            raise IntegrityError(ERR_TRUNCATED.format(why=f"chunk {index} is shorter than its tag"))
        try:
            plain = aead.decrypt(_nonce(header.nonce_prefix, index, last), memoryview(cur)[:n_cur], header.fixed)
        except InvalidTag:
            raise IntegrityError(ERR_CHUNK.format(i=index)) from None
        yield plain
        if last:
            return
        cur, nxt, n_cur = nxt, cur, n_nxt
        index += 1


def decrypt_stream(src: BinaryIO, dst: BinaryIO, *, key: bytes | None = None,
                   passphrase: bytes | str | None = None) -> int:
    """Decrypt a container stream into ``dst``; returns the plaintext size.

    ``dst`` receives authenticated chunks as they are verified: on :class:`IntegrityError` the caller
    must discard it (:func:`decrypt_file` does, atomically).
    """
    n = 0
    for chunk in iter_decrypt(src, key=key, passphrase=passphrase):
        dst.write(chunk)
        n += len(chunk)
    return n


def _decrypt_into_memory(src: BinaryIO, total: int, key: bytes | None,
                         passphrase: bytes | str | None) -> bytearray:
    header = _read_header(src)
    size, n_chunks = _plain_size(total, header.chunk_size)
    aead = AESGCM(_unwrap(header, key, passphrase))
    out = bytearray(size)
    seg = header.chunk_size + TAG_LEN
    buf = bytearray(seg)
    pos = 0
    try:
        for index in range(n_chunks):
            last = index == n_chunks - 1
            want = seg if not last else (total - HEADER_LEN) - index * seg
            got = _read_full(src, memoryview(buf)[:want])  # type: ignore[arg-type]
            if got != want:
                raise IntegrityError(ERR_TRUNCATED.format(why=f"the file ended inside chunk {index}"))
            n_plain = want - TAG_LEN
            try:
                aead.decrypt_into(_nonce(header.nonce_prefix, index, last), memoryview(buf)[:want], header.fixed,
                                  memoryview(out)[pos:pos + n_plain])
            except InvalidTag:
                raise IntegrityError(ERR_CHUNK.format(i=index)) from None
            pos += n_plain
        if src.read(1):
            raise IntegrityError(ERR_CHUNK.format(i=n_chunks - 1) + " (data after the last chunk)")
    except BaseException:
        out[:] = bytes(len(out))  # do not leave unauthenticated plaintext around
        raise
    return out


def decrypt_bytes(data: bytes | bytearray | memoryview, *, key: bytes | None = None,
                  passphrase: bytes | str | None = None) -> bytearray:
    """Decrypt an in-memory container into a new ``bytearray``. Nothing touches disk."""
    mv = memoryview(data)
    return _decrypt_into_memory(io.BytesIO(mv), len(mv), key, passphrase)


def decrypt_file_to_bytes(path: str | Path, *, key: bytes | None = None,
                          passphrase: bytes | str | None = None) -> bytearray:
    """Decrypt a container file straight into a ``bytearray`` (no plaintext temp files), for loading."""
    p = _existing_file(path)
    with p.open("rb") as fh:
        return _decrypt_into_memory(fh, os.fstat(fh.fileno()).st_size, key, passphrase)


def decrypt_file(src: str | Path, dst: str | Path, *, key: bytes | None = None,
                 passphrase: bytes | str | None = None, force: bool = False) -> int:
    """Decrypt ``src`` to ``dst``: a temp file in ``dst``'s folder is renamed into place only after the
    last chunk authenticates, and deleted on any failure. Returns the plaintext size."""
    src_p = _existing_file(src)
    with src_p.open("rb") as fin, AtomicOutput(dst, force) as fout:
        return decrypt_stream(fin, fout, key=key, passphrase=passphrase)


# --- inspection and rotation ----------------------------------------------------------------------


def is_encrypted(source: str | Path | bytes | bytearray | memoryview) -> bool:
    """True when ``source`` (a path or bytes) starts with the container magic."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[: len(MAGIC)]) == MAGIC
    try:
        with Path(source).open("rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def read_header(path: str | Path) -> ContainerHeader:
    with _existing_file(path).open("rb") as fh:
        return _read_header(fh)


def rewrap_header(header: ContainerHeader, *, old_key: bytes | None = None, old_passphrase: bytes | str | None = None,
                  new_key: bytes | None = None, new_passphrase: bytes | str | None = None,
                  scrypt: ScryptParams | None = None) -> ContainerHeader:
    """A header whose (unchanged) data key is wrapped by the new key; the fixed header (hence the
    payload) is kept. Rewrap only: see :func:`rotate_file` for why re-encryption is the default."""
    data_key = _unwrap(header, old_key, old_passphrase)
    fresh = _new_header(data_key=data_key, key=new_key, passphrase=new_passphrase, chunk_size=header.chunk_size,
                        scrypt=scrypt, nonce_prefix=header.nonce_prefix)
    assert fresh.fixed == header.fixed
    return fresh


class _PlainReader(io.RawIOBase):
    """A readable stream over :func:`iter_decrypt`'s authenticated chunks (re-encryption input).

    The last chunk (and so the end of the stream) is authenticated before EOF is reported: a
    truncated or tampered source raises :class:`IntegrityError` from ``readinto``.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while self._pos >= len(self._buf):
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf, self._pos = nxt, 0
        n = min(len(view), len(self._buf) - self._pos)
        view[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


def rotate_file(src: str | Path, dst: str | Path | None = None, *, old_key: bytes | None = None,
                old_passphrase: bytes | str | None = None, new_key: bytes | None = None,
                new_passphrase: bytes | str | None = None, scrypt: ScryptParams | None = None,
                verify_payload: bool = False, rewrap_only: bool = False,
                force: bool = False) -> ContainerHeader:
    """Rotate ``src`` to a new master key (or passphrase); writes ``dst`` (default: replace ``src``).

    **Default: re-encrypt.** Every chunk is decrypted and authenticated with the old key and
    encrypted again under a *fresh* data key and nonce prefix wrapped by the new key, streamed (two
    chunks in memory) into a temp file beside the output that is renamed into place only after the
    last chunk authenticated and the new header opened with the new key; on any failure the temp
    file is deleted and the original is untouched. Whoever held the old key (and kept an old copy)
    learns nothing about the rotated file's data key, so can neither decrypt it nor forge chunks
    that the new key accepts.

    ``rewrap_only=True``: the old data key is only rewrapped for the new key and the encrypted
    payload copied verbatim (fast: no payload pass). **Risk:** the data key does not change, so
    anyone who had the old key and a copy of the old file can still recover the data key, decrypt the
    rotated file and forge chunks the new key accepts. Use it only when the old key was not exposed
    (e.g. a scheduled key-encryption-key change). ``verify_payload`` then also authenticates every
    chunk first (re-encryption always does).
    """
    src_p = _existing_file(src)
    in_place = dst is None or Path(dst).resolve() == src_p.resolve()
    out = src_p if in_place else Path(dst)  # type: ignore[arg-type]
    if rewrap_only:
        return _rewrap_file(src_p, out, in_place or force, old_key=old_key, old_passphrase=old_passphrase,
                            new_key=new_key, new_passphrase=new_passphrase, scrypt=scrypt,
                            verify_payload=verify_payload)
    with src_p.open("rb") as fin:
        header = _read_header(fin)
        fin.seek(0)
        with AtomicOutput(out, force=in_place or force) as fout:
            chunks = iter_decrypt(fin, key=old_key, passphrase=old_passphrase)
            new = encrypt_stream(_PlainReader(chunks), fout, key=new_key, passphrase=new_passphrase,
                                 chunk_size=header.chunk_size, scrypt=scrypt)
            _unwrap(new, new_key, new_passphrase)  # the new file must open with the new key before we commit
    return new


def _rewrap_file(src_p: Path, out: Path, force: bool, *, old_key: bytes | None, old_passphrase: bytes | str | None,
                 new_key: bytes | None, new_passphrase: bytes | str | None, scrypt: ScryptParams | None,
                 verify_payload: bool) -> ContainerHeader:
    if verify_payload:
        with src_p.open("rb") as fin:
            for _ in iter_decrypt(fin, key=old_key, passphrase=old_passphrase):
                pass
    with src_p.open("rb") as fin:
        header = _read_header(fin)
        new = rewrap_header(header, old_key=old_key, old_passphrase=old_passphrase, new_key=new_key,
                            new_passphrase=new_passphrase, scrypt=scrypt)
        _unwrap(new, new_key, new_passphrase)  # the new header must open with the new key before we commit
        with AtomicOutput(out, force=force) as fout:
            fout.write(new.to_bytes())
            shutil.copyfileobj(fin, fout, 1 << 22)
    return new


# --- files ----------------------------------------------------------------------------------------


def _existing_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p} is a directory: encrypt its files one by one, or archive it first")
    if not p.is_file():
        raise InputNotFoundError(f"file not found: {p}")
    return p


