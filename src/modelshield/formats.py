"""The one content sniffer: what a model file is, from its bytes (never from its name).

Two views over the same magic table:

* :func:`detect_format` - the scanner's exhaustive kind for a file's first bytes (``zip``, ``pickle``,
  ``pickle0`` for a header-less protocol 0/1 candidate, ``compressed:<kind>``, ``gguf``, ``hdf5``,
  ``modelshield-encrypted`` ...); the scanner then parses whatever it names.
* :func:`detect_format_bytes` - the loader's kind for a whole (decrypted) file: which framework loader
  applies (``onnx``, ``torchscript``, ``torch-zip``, ``zip``, ``pickle``, ``joblib-compressed``, ``npy``,
  ``safetensors``, ``unknown``). It looks inside zip archives for the member names PyTorch reads.

A leaf module: it imports nothing of modelshield, so the scanner, the secure loader and the encryption
container all take their magic numbers from here.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

__all__ = [
    "COMPRESSED_MAGIC",
    "ENCRYPTED",
    "ENCRYPTED_MAGIC",
    "TORCH_LEGACY_MAGIC",
    "detect_file_format",
    "detect_format",
    "detect_format_bytes",
    "is_encrypted_head",
    "looks_like_onnx",
]

#: the scanner's kind for a modelshield encryption container
ENCRYPTED = "modelshield-encrypted"
#: the encryption container's magic (``modelshield.protect.crypto.MAGIC``)
ENCRYPTED_MAGIC = b"\x89MSHLD\r\n"
#: a legacy (pre-zip) ``torch.save`` file: a pickle protocol 2 header and torch's magic number
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
#: magic -> compressor, in joblib's detection order (joblib.compressor._COMPRESSORS)
COMPRESSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"ZF", "zlib-legacy"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
)
#: first bytes of a pickle with no protocol header (protocol 0/1, CVE-2025-10155): probe-parsed by the scanner
_PICKLE0_FIRST = b"(cdl]}NIFSVLi)tKJMGTUXq"


def is_encrypted_head(head: bytes) -> bool:
    """True when ``head`` starts with the encryption container's magic."""
    return bytes(head[: len(ENCRYPTED_MAGIC)]) == ENCRYPTED_MAGIC


def looks_like_onnx(head: bytes) -> bool:
    """A cheap ModelProto heuristic on the first bytes: ir_version (field 1, varint) first, then the
    opset/producer fields."""
    return head[:1] == b"\x08" and len(head) > 2 and head[1] < 0x20 and b"\x12" in head[2:4] + head[2:16]


def detect_format(head: bytes, size: int | None = None, name: str = "") -> str:
    """The scanner's coarse kind from the first bytes (``name`` only breaks ties between protobuf kinds)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if is_encrypted_head(head):
        return ENCRYPTED
    if head.startswith(TORCH_LEGACY_MAGIC):
        return "torch-legacy"
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return "pickle"
    for magic, kind in COMPRESSED_MAGIC:
        if head.startswith(magic):
            return f"compressed:{kind}"
    if len(head) >= 10 and head[8:9] == b"{":
        return "safetensors"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if Path(name).name == "saved_model.pb":
        return "savedmodel"
    if head[:1] == b"\x08" and name.lower().endswith(".onnx"):
        return "onnx"
    if head[:1] in (b"\x08", b"\x12", b"\x1a", b"\x3a") and looks_like_onnx(head):
        return "onnx"
    if head and head[0] in _PICKLE0_FIRST:
        return "pickle0"
    return "unknown"


def detect_file_format(path: str | Path) -> str:
    """:func:`detect_format_bytes` of a file's content."""
    return detect_format_bytes(Path(path).read_bytes())


def detect_format_bytes(data: bytes | bytearray | memoryview) -> str:
    """The loader's kind for a whole file's bytes: which framework loader applies (see the module doc).

    The archive test follows PyTorch's reader, which finds members case-insensitively: ``constants.pkl``
    or a ``code/`` folder makes TorchScript, ``data.pkl`` a ``torch.save`` checkpoint.
    """
    mv = memoryview(data)
    head = bytes(mv[:64])
    kind = detect_format(head, len(mv))
    if kind == "zip":
        try:
            with zipfile.ZipFile(io.BytesIO(mv)) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        low = [n.lower() for n in names]
        if any(n.endswith("constants.pkl") for n in low) or any("/code/" in n or n.startswith("code/") for n in low):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in low):
            return "torch-zip"
        return "zip"
    if kind in ("pickle", "torch-legacy"):
        return "pickle"
    if kind.startswith("compressed:"):
        return "joblib-compressed"
    if kind in ("npy", "safetensors"):
        return kind
    if _parses_as_onnx(mv):
        return "onnx"
    if kind == "pickle0" and head[:1] in (b"(", b"c", b"]", b"}", b"I"):
        return "pickle"  # protocol 0/1 pickles have no header; the loaders take these first opcodes
    return "unknown"


def _parses_as_onnx(mv: memoryview) -> bool:
    try:
        import onnx  # optional and heavy: only content no magic number claimed gets this far

        return len(onnx.load_model_from_string(bytes(mv)).graph.node) > 0
    except Exception:  # not protobuf / not a ModelProto, or onnx missing
        return False
