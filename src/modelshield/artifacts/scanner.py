"""The scanner's driver: content-based format detection, per-format dispatch, directory walks.

Formats are recognised from bytes, never from the file name (a pickle named ``.safetensors`` is a
pickle). Each file is scanned under a :class:`~modelshield.artifacts._io.Budget` (wall-clock
bound) with streaming readers, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import re
import time
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from modelshield.artifacts import zip_scan
from modelshield.artifacts._io import Budget, LimitExceeded, Reader, Truncated
from modelshield.artifacts.joblib_scan import joblib_on_build, open_compressed
from modelshield.artifacts.numpy_scan import scan_npy
from modelshield.artifacts.pickle_scan import (
    Blob,
    PickleScan,
    RawFinding,
    _Malformed,
    scan_pickle_stream,
)
from modelshield.artifacts.pickle_scan import G as PG
from modelshield.artifacts.report import FileReport, ScanReport, make_finding
from modelshield.artifacts.torchscript_scan import is_torchscript_source, scan_torchscript_source
from modelshield.errors import FormatError, InputNotFoundError, UserError
from modelshield.findings import Severity
from modelshield.formats import ENCRYPTED, detect_format

__all__ = ["DEFAULT_TIMEOUT", "ENCRYPTED", "MODEL_EXTENSIONS", "detect_format", "scan", "scan_bytes", "scan_file"]

DEFAULT_TIMEOUT = 300.0
MAX_DEPTH = 4
MAX_DECOMPRESSED = 64 << 30
SMALL_MEMBER = 16 << 20
#: the search for a pickle behind a non-pickle prefix: candidates tried, and opcodes simulated over all
#: candidates that fail, per byte of the searched window (keeps the search linear in the file size)
MAX_EMBEDDED_CANDIDATES = 256
EMBEDDED_OPS_PER_BYTE = 1
#: formats recognised by a magic that raw tensor data does not produce by chance
_STRONG_MAGIC = frozenset({"zip", "7z", "rar", "npy", "tar", "hdf5", "torch-legacy", ENCRYPTED})
#: formats whose content no zip reader would also take: no polyglot check after them
_NO_POLYGLOT = frozenset({"zip", "7z", "rar", ENCRYPTED})


def _head(fh: BinaryIO, n: int = 64) -> bytes:
    pos = fh.tell()
    data = fh.read(n)
    fh.seek(pos)
    return data


#: Extensions under which model loaders (pickle, torch, joblib, NumPy, Keras, ONNX, TF, GGUF, ...)
#: read a file: such a file that no parser accepts is *inconclusive*, never clean.
MODEL_EXTENSIONS = frozenset(
    ".pkl .pickle .pt .pth .bin .ckpt .joblib .npy .npz .h5 .hdf5 .keras .onnx .safetensors .gguf .pb "
    ".model .dill .mar .tflite .ggml".split()
)
#: Ordinary non-model binary files found next to models (images, documents, audio, Finder metadata).
_BENIGN_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG image"),
    (b"\xff\xd8\xff", 0, "JPEG image"),
    (b"GIF87a", 0, "GIF image"),
    (b"GIF89a", 0, "GIF image"),
    (b"WEBP", 8, "WebP image"),
    (b"WAVE", 8, "WAV audio"),
    (b"II*\x00", 0, "TIFF image"),
    (b"MM\x00*", 0, "TIFF image"),
    (b"\x00\x00\x01\x00", 0, "ICO image"),
    (b"%PDF-", 0, "PDF document"),
    (b"fLaC", 0, "FLAC audio"),
    (b"OggS", 0, "Ogg media"),
    (b"ID3", 0, "MP3 audio"),
    (b"ftyp", 4, "MP4 media"),
    (b"\x00\x00\x00\x01Bud1", 0, "macOS .DS_Store"),
)
_CTRL = bytes(c for c in range(32) if c not in (8, 9, 10, 12, 13, 27)) + b"\x7f"


def _looks_like_text(sample: bytes) -> bool:
    """UTF-8/UTF-16/Latin-1 text: no NUL and (valid UTF-8 or under 1 % control characters)."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            sample[: len(sample) & ~1].decode("utf-16")
            return True
        except UnicodeDecodeError:
            return False
    if not sample or b"\x00" in sample:
        return not sample
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(sample) - 3:
            return True
    ctrl = len(sample) - len(sample.translate(None, _CTRL))
    return ctrl * 100 < len(sample)


def _benign_binary(head: bytes, size: int | None) -> str | None:
    for magic, at, kind in _BENIGN_MAGIC:
        if head[at: at + len(magic)] == magic:
            return kind
    if head[:2] == b"BM" and size is not None and len(head) >= 6 and int.from_bytes(head[2:6], "little") == size:
        return "BMP image"
    return None


class _FileScan:
    """State of one top-level file scan."""

    def __init__(self, location: str, path: Path | None, budget: Budget) -> None:
        self.location = location
        self.path = path
        self.budget = budget
        self.raw: list[tuple[RawFinding, str | None]] = []
        self.details: dict[str, Any] = {}
        self.formats: list[str] = []
        self.context = "pickle"  # "torchscript" while inside a TorchScript archive (policy.classify_global)
        self.nested = False  # True for bytes a pickle hands to a nested loader (not a file of their own)

    def add(self, findings: list[RawFinding], member: str | None = None) -> None:
        self.raw.extend((f, member) for f in findings)

    def malformed(self, msg: str, offset: int | None, member: str | None = None) -> None:
        self.add([RawFinding(Severity.HIGH, "artifact.malformed", msg, offset,
                             "The file could not be fully parsed; the result is inconclusive.")], member)

    # ---------------------------------------------------------------- nested bytes
    def nested_bytes(self, data: bytes, depth: int) -> list[RawFinding]:
        sub = _FileScan(self.location, self.path, self.budget)
        sub.nested = True
        fh = io.BytesIO(data)
        sub.stream(fh, len(data), "", depth)
        return [f for f, _m in sub.raw]

    # ---------------------------------------------------------------- dispatch
    def limit(self, exc: BaseException, member: str | None, offset: int | None = None) -> None:
        self.add([RawFinding(Severity.HIGH, "artifact.limit-exceeded", f"scan bound hit: {exc}", offset,
                             "A safety bound (time, size, depth or search work) stopped the scan; the rest "
                             "was not analysed, so the result is inconclusive.")], member or None)

    def stream(self, fh: BinaryIO, size: int | None, member: str, depth: int, name: str = "",
               polyglot: bool = True) -> str:
        start = fh.tell()
        head = fh.read(512)
        fh.seek(start)
        fmt = detect_format(head, size, name or member)
        zipped = False
        try:
            zipped = self._dispatch(fmt, fh, size, member, depth, head, name or member)
        except (_Malformed, Truncated) as exc:
            self.malformed(f"{fmt}: {exc}", getattr(exc, "offset", None), member or None)
        except LimitExceeded as exc:
            self.limit(exc, member)
            return fmt
        # a zip behind other content matters for files a zipfile-based loader opens by path (Keras):
        # top-level files and in-memory blobs, not members (no loader opens a member as an archive)
        if (polyglot and depth == 0 and not zipped and fmt not in _NO_POLYGLOT and size is not None
                and size >= 22):
            self._polyglot_zip(fh, start, size, member, depth)
        return fmt

    def _polyglot_zip(self, fh: BinaryIO, start: int, size: int, member: str, depth: int) -> None:
        """A zip end record at the end of a file that is something else (a pickle, an npy...): zipfile-
        based loaders (Keras, ``zipfile.is_zipfile``) read the archive behind the prefix, so scan it."""
        fh.seek(start)
        try:
            if not _has_eocd(fh, size):
                return
            fh.seek(start)
            self._zip(fh, size, member, depth)
            self.add([RawFinding(Severity.MEDIUM, "artifact.polyglot",
                                 "the file is also a zip archive (end record behind other content)", 0,
                                 "zipfile-based loaders (Keras, NumPy's zip check) open the archive behind "
                                 "the prefix; its members were scanned as well.")], member or None)
        except (_Malformed, Truncated) as exc:
            # (4 bytes that occur by chance in large binary data; zip readers fail on it just the same)
            self.add([RawFinding(Severity.LOW, "artifact.polyglot",
                                 f"a zip end record that does not lead to a readable archive: {exc}", None,
                                 "zip readers fail to open it as an archive too; the file was scanned as "
                                 "its first format.")], member or None)
        except LimitExceeded as exc:
            self.limit(exc, member)
        finally:
            fh.seek(start)

    def _reader(self, fh: BinaryIO, size: int | None) -> Reader:
        return Reader(fh, self.budget, size=size)

    def _pickle(self, r: Reader, member: str, depth: int, *, fh: BinaryIO | None = None,
                probe: bool = False, max_pickles: int = 64, legacy: bool = False,
                context: str | None = None, probe_named: bool = False) -> bool:
        def fetch(blob: Blob) -> bytes | None:
            if fh is None or not fh.seekable() or blob.length > (64 << 20):
                return None
            here = fh.tell()
            try:
                fh.seek(r.start + blob.start)
                return fh.read(blob.length)
            finally:
                fh.seek(here)

        res = scan_pickle_stream(r, self.budget, depth=depth, nested=self.nested_bytes,
                                 on_build=joblib_on_build, fetch_blob=fetch, probe=probe or probe_named,
                                 probe_named=probe_named, max_pickles=max_pickles,
                                 context=context or self.context)
        if not res.is_pickle:
            return False
        findings = res.findings
        if legacy:
            findings = [f for f in findings if f.rule != "artifact.pickle.trailing-data"]
        self.add(findings, member or None)
        g = self.details.setdefault("globals", {})
        for k, v in res.globals.items():
            if len(g) < 500:
                g.setdefault(k, v)
        self.details["pickles"] = self.details.get("pickles", 0) + res.pickles
        self.details["opcodes"] = self.details.get("opcodes", 0) + res.ops
        self.details["protocol"] = max(self.details.get("protocol", 0), res.protocol)
        if res.joblib:
            self.formats.append("joblib")
        return True

    def _probe(self, fh: BinaryIO, size: int | None, member: str, depth: int, *, named: bool = False) -> bool:
        """Probe-parse as a header-less pickle whatever the first byte: ``pickle.load`` accepts any
        opcode first. Cheap on non-pickle data (it stops at the first invalid opcode or underflow).
        ``named``: raw data no loader unpickles counts only when it reaches a named global."""
        start = fh.tell()
        ok = self._pickle(self._reader(fh, size), member, depth, fh=fh, probe=not named, probe_named=named)
        fh.seek(start)
        return ok

    def _dispatch(self, fmt: str, fh: BinaryIO, size: int | None, member: str, depth: int, head: bytes,
                  name: str = "") -> bool:
        """Scan ``fh`` as ``fmt``; True when it was read as a zip archive."""
        self.formats.append(fmt)
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"containers nested deeper than {MAX_DEPTH}")
        if fmt == "pickle":
            self._pickle(self._reader(fh, size), member, depth, fh=fh)
        elif fmt == "torch-legacy":
            # magic, protocol, sys_info, the object, storage keys; raw storages follow
            self._pickle(self._reader(fh, size), member, depth, fh=fh, max_pickles=5, legacy=True)
        elif fmt == "pickle0":
            if not self._probe(fh, size, member, depth):
                self.formats[-1] = "unknown"
                return self._unknown_or_zip(fh, size, member, depth, name)
        elif fmt.startswith("compressed:"):
            kind = fmt.split(":", 1)[1]
            stream = open_compressed(fh, kind, MAX_DECOMPRESSED)
            try:
                r = Reader(stream, self.budget)
                r.seekable = False
                try:
                    self._pickle(r, member, depth)
                except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
                    raise _Malformed(f"corrupt {kind} stream: {exc}") from None
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
        elif fmt == ENCRYPTED:
            self.add([RawFinding(
                Severity.HIGH, "artifact.encrypted",
                "modelshield-encrypted container: the payload cannot be inspected without the key", 0,
                "The file is an AES-256-GCM container written by `modelshield protect encrypt`; the scanner "
                "cannot vouch for the model inside. Scan the plaintext instead: decrypt it "
                "(`modelshield protect decrypt`) and run `modelshield scan` on the result, or load it "
                "through the secure loader (`modelshield.load_model` with the key), which scans the "
                "decrypted bytes in memory before anything is unpickled.")], member or None)
        elif fmt == "npy":
            r = self._reader(fh, size)
            findings, det = scan_npy(r, lambda rr: self._npy_pickle(rr, member, depth, fh), size)
            self.add(findings, member or None)
            arrays = self.details.setdefault("arrays", [])
            if len(arrays) < 100:
                arrays.append({"member": member, **det})
        elif fmt == "zip":
            self._zip(fh, size, member, depth)
            return True
        elif fmt == "tar":
            self._tar(fh, size, member, depth)
        elif fmt in ("7z", "rar"):
            self.add([RawFinding(
                Severity.HIGH, "artifact.archive.unsupported", f"{fmt} archive cannot be inspected", 0,
                "The archive format is not one model loaders use; its content (possibly a pickle, as in "
                "the nullifAI 7z-compressed PyTorch files) could not be analysed.",
            )], member or None)
        elif fmt == "safetensors":
            # lazy: a format's parser loads with its first file (scan start-up)
            from modelshield.artifacts.safetensors_scan import scan_safetensors

            self.add(scan_safetensors(fh, size), member or None)
        elif fmt == "gguf":
            # lazy: a format's parser loads with its first file (scan start-up)
            from modelshield.artifacts.gguf_scan import scan_gguf

            self.add(scan_gguf(self._reader(fh, size)), member or None)
        elif fmt == "onnx":
            # lazy: a format's parser loads with its first file (scan start-up)
            from modelshield.artifacts.onnx_scan import scan_onnx

            base = self.path.parent if (self.path is not None and not member) else None
            self.add(scan_onnx(fh, size, base, self.budget), member or None)
        elif fmt == "savedmodel":
            # lazy: a format's parser loads with its first file (scan start-up)
            from modelshield.artifacts.savedmodel_scan import scan_savedmodel

            self.add(scan_savedmodel(fh, size, self.budget), member or None)
        elif fmt == "hdf5":
            # lazy: a format's parser loads with its first file (scan start-up)
            from modelshield.artifacts.keras_scan import scan_h5

            self.add(scan_h5(fh), member or None)
        elif self._probe(fh, size, member, depth):
            self.formats[-1] = "pickle0"
        else:
            return self._unknown_or_zip(fh, size, member, depth, name)
        return False

    def _unknown_or_zip(self, fh: BinaryIO, size: int | None, member: str, depth: int, name: str) -> bool:
        if size is not None and _has_eocd(fh, size):
            self._zip(fh, size, member, depth)
            return True
        self._unknown(fh, size, member, depth, name)
        return False

    def _npy_pickle(self, r: Reader, member: str, depth: int, fh: BinaryIO | None) -> list[RawFinding]:
        before = len(self.raw)
        self._pickle(r, member, depth + 1, fh=fh, max_pickles=1)
        taken = [f for f, _ in self.raw[before:]]
        del self.raw[before:]
        return taken

    def _unknown(self, fh: BinaryIO, size: int | None, member: str, depth: int, name: str = "") -> None:
        """An unrecognised file: classify it, and look for a pickle hidden after a prefix (first 1 MiB).

        Text, images and other ordinary companions of a model are ``info``. A file that looks like a
        model (a model-loader extension, or binary content in no recognised format) is *inconclusive*
        (``high``): the scanner cannot say what a loader would do with it. An empty model file is
        malformed. Bytes handed to a nested loader keep the plain ``info`` (their caller reports them).
        """
        start = fh.tell()
        window = fh.read(1 << 20)
        fh.seek(start)
        if not self.nested and window and self._sentencepiece(fh, start, size if size is not None else len(window)):
            return
        self._classify_unknown(window, size, member, name)
        # Candidates: a protocol 2-5 header after the first byte (the start itself was probed). The
        # search is bounded in candidates and in opcodes simulated over the candidates that fail, so
        # it is linear in the window; a bound hit is inconclusive, never "no pickle".
        tried = 0
        failed_ops = 0
        ops_cap = EMBEDDED_OPS_PER_BYTE * len(window) + 4096
        for m in re.finditer(rb"\x80[\x02-\x05]", window):
            if m.start() == 0:
                continue
            nxt = window[m.end(): m.end() + 1]
            if not nxt or nxt[0] not in b"\x95\x8c\x8a}]()cX":
                continue
            self.budget.check()
            tried += 1
            if tried > MAX_EMBEDDED_CANDIDATES or failed_ops > ops_cap:
                self.limit(LimitExceeded(
                    f"search for a pickle behind a prefix stopped after {tried - 1} candidates and "
                    f"{failed_ops} opcodes"), member, m.start())
                break
            fh.seek(start + m.start())
            r = Reader(fh, self.budget, size=None if size is None else size - m.start())
            res = scan_pickle_stream(r, self.budget, depth=depth + 1, nested=self.nested_bytes,
                                     on_build=joblib_on_build, probe=True, max_pickles=1)
            if not res.is_pickle or not res.globals:
                failed_ops += res.ops
                if any(f.rule == "artifact.limit-exceeded" for f in res.findings):
                    self.add(res.findings, member or None)
                    break
                continue
            if res.is_pickle and res.globals:
                self.add([RawFinding(
                    Severity.MEDIUM, "artifact.pickle.embedded",
                    f"pickle stream embedded after {m.start()} bytes of other data", m.start(),
                    "A pickle hides behind a non-pickle prefix (junk before the stream).")], member or None)
                self.add(res.findings, member or None)
                self.formats.append("pickle-embedded")
                break
        fh.seek(start)

    def _classify_unknown(self, window: bytes, size: int | None, member: str, name: str) -> None:
        where = member or None
        ext = Path(name.rsplit("!", 1)[-1]).suffix.lower() if name else ""
        model_ext = ext in MODEL_EXTENSIONS
        benign = _benign_binary(window, size)
        if self.nested or (not model_ext and (benign is not None or _looks_like_text(window[:8192]))):
            what = "empty file" if not window else (benign or ("text" if not self.nested else "data"))
            self.add([RawFinding(Severity.INFO, "artifact.unknown-format", f"format not recognised ({what}): "
                                 "not a model format the scanner parses", 0, "No loader we know of executes "
                                 "this content; it was searched for embedded pickles only.")], where)
            return
        if not window:
            self.add([RawFinding(Severity.HIGH, "artifact.malformed", f"empty model file ({ext})", 0,
                                 "A model file with no content cannot be loaded; the result is inconclusive.")],
                     where)
            return
        why = (f"a {ext} file" if model_ext else "binary content") + " in no format the scanner can parse"
        self.add([RawFinding(
            Severity.HIGH, "artifact.inconclusive", f"inconclusive: {why}", 0,
            "The file looks like a model (its extension is one model loaders read, or it is binary data "
            "that is not text or a known media type) but matches none of the formats the scanner "
            "analyses, so nothing can be said about what loading it would run.",
            {"extension": ext} if ext else {})], where)

    def _sentencepiece(self, fh: BinaryIO, start: int, size: int) -> bool:
        """A SentencePiece tokenizer model (``tokenizer.model``): a data-only protobuf, recognised whole.

        ModelProto: repeated ``pieces`` (1), ``trainer_spec`` (2), ``normalizer_spec`` (3),
        ``self_test_data`` (4), ``denormalizer_spec`` (5), all length-delimited, spanning the file exactly;
        the first field is a piece whose own first field is its string.
        """
        # lazy: a format's parser loads with its first file (scan start-up)
        from modelshield.artifacts.protobuf import Walker

        head = fh.read(16)
        fh.seek(start)
        if len(head) < 4 or head[0] != 0x0A:
            return False
        walker = Walker(fh, start + size, self.budget)
        try:
            first = True
            for field, wt, s, n in walker.fields(start, start + size):
                if wt != 2 or not 1 <= field <= 5:
                    return False
                if first:
                    if field != 1 or n < 2 or walker.read(s, 1) != b"\x0a":
                        return False
                    first = False
        except _Malformed:
            return False
        finally:
            fh.seek(start)
        if first:
            return False
        self.formats.append("sentencepiece")
        return True

    # ---------------------------------------------------------------- containers
    def _zip(self, fh: BinaryIO, size: int | None, member: str, depth: int) -> None:
        """Every member is scanned (none is skipped for its name or first bytes).

        Names are matched as the loaders match them: torch's reader (miniz) finds members
        case-insensitively (``ARCHIVE/DATA.PKL`` is its ``data.pkl``), zipfile (NumPy, Keras) exactly.
        Members whose names collide under either rule are flagged: loaders may read a different one
        than a scanner that picks by name (here all of them are scanned anyway).
        """
        if size is None:
            raise _Malformed("zip without a known size")
        base = fh.tell()
        sub = zip_scan.RangeFile(fh, base, size) if base else fh
        entries, info = zip_scan.read_central_directory(sub, size)
        self.add(zip_scan.zip_structure_findings(entries, info), member or None)
        low = [e.name.lower() for e in entries]
        kind = "zip"
        if any(n.endswith("constants.pkl") for n in low) or any(is_torchscript_source(n) for n in low):
            kind = "torchscript"
        elif any(n == "data.pkl" or n.endswith("/data.pkl") for n in low):
            kind = "torch-zip"
        elif "config.json" in low:
            kind = "keras"  # Keras loads a root config.json (by content, whatever else the archive holds)
        elif entries and all(n.endswith(".npy") for n in low):
            kind = "npz"
        self.formats.append(kind)
        if kind == "torchscript":
            self.add([RawFinding(Severity.LOW, "artifact.torch.torchscript",
                                 "TorchScript archive: its code runs when loaded", 0,
                                 "torch.jit.load (and torch.load on this file, CVE-2025-32434) runs the "
                                 "serialized TorchScript code; its source members were parsed and checked "
                                 "for file, process, network and dynamic attribute operations.",
                                 references=("CVE-2025-32434",))], member or None)
        pickles = 0
        outer_context = self.context
        if kind == "torchscript":
            self.context = "torchscript"
        torch_kind = kind in ("torch-zip", "torchscript")
        try:
            for e in entries:
                self.budget.check()
                label = f"{member}!{e.name}" if member else e.name
                lname = e.name.lower()
                base_name = lname.rsplit("/", 1)[-1]
                if base_name == "config.json":
                    # Keras reads config.json at the root; any member so named gets the Keras rules
                    # lazy: a format's parser loads with its first file (scan start-up)
                    from modelshield.artifacts.keras_scan import scan_keras_config

                    data = self._member_bytes(sub, e, 64 << 20, label)
                    if data is None:
                        continue
                    try:
                        self.add(scan_keras_config(data), label)
                        continue
                    except _Malformed as exc:
                        if kind == "keras" and lname == "config.json":
                            self.malformed(f"{e.name}: {exc}", e.header_offset, label)
                    # not JSON: scanned like any other member below
                if torch_kind and is_torchscript_source(lname):
                    data = self._member_bytes(sub, e, 64 << 20, label)
                    if data is not None:
                        self.add(scan_torchscript_source(data, e.name), label)
                    continue
                if lname.endswith(".pkl"):
                    pickles += 1
                    self._zip_pickle(sub, e, label, depth)
                    continue
                if e.usize == 0 and e.csize == 0:
                    continue  # nothing a loader could read
                if e.method != 0 and e.usize <= SMALL_MEMBER:
                    data = self._member_bytes(sub, e, SMALL_MEMBER, label)
                    if data is None:
                        continue
                    view: BinaryIO = io.BytesIO(data)
                elif e.method != 0:
                    if self._zip_large_member(sub, e, label, depth, named=torch_kind):
                        pickles += 1
                    continue
                else:
                    view = zip_scan.RangeFile(sub, e.data_offset, e.csize)  # type: ignore[assignment]
                head = view.read(512)
                view.seek(0)
                if not head:
                    continue  # an empty member: nothing any loader could read or run
                sub_fmt = detect_format(head, e.usize, e.name)
                if torch_kind and sub_fmt not in _STRONG_MAGIC:
                    # raw tensor storages and records: torch never unpickles them, but a member is never
                    # skipped unread: it is probe-parsed as a pickle (cheap on raw data). Short magics
                    # (a PROTO header, compression or GGUF magic) occur in float data by chance, so
                    # they are not taken as formats here: only what a probe finds counts.
                    try:
                        if self._probe(view, e.usize, label, depth + 1, named=True):
                            pickles += 1
                            self._crc(sub, e, label)
                    except (_Malformed, Truncated) as exc:
                        self.malformed(f"{e.name}: {exc}", e.header_offset, label)
                    continue
                fmt = self.stream(view, e.usize, label, depth + 1, name=e.name)
                if fmt in ("pickle", "pickle0", "torch-legacy"):
                    pickles += 1
                    self._crc(sub, e, label)
        finally:
            self.context = outer_context
        self.details.setdefault("members", len(entries))
        if kind == "torch-zip" and pickles == 0:
            self.malformed("PyTorch archive without a readable data.pkl", 0, member or None)

    def _zip_pickle(self, sub: BinaryIO, e: zip_scan.ZipEntry, label: str, depth: int) -> None:
        try:
            stream = zip_scan.open_member(sub, e)
        except _Malformed as exc:
            self.add([RawFinding(Severity.HIGH, "artifact.archive.unsupported",
                                 f"zip member {e.name!r} cannot be read: {exc}", e.header_offset)], label)
            return
        r = Reader(stream, self.budget, size=e.usize)
        if e.method != 0:
            r.seekable = False
        try:
            ok = self._pickle(r, label, depth + 1, fh=stream if e.method == 0 else None)
            if not ok:
                self.malformed(f"{e.name} is not a pickle", 0, label)
        except (_Malformed, Truncated) as exc:
            self.malformed(f"{e.name}: {exc}", None, label)
        except LimitExceeded as exc:
            if e.method == 8 and "decompress" in str(exc):
                self.add([RawFinding(Severity.HIGH, "artifact.zip.bomb",
                                     f"{e.name}: inflates beyond its declared size", e.header_offset,
                                     "Actual decompressed size exceeds the declared size.")], label)
            else:
                raise
        self._crc(sub, e, label)

    def _zip_large_member(self, sub: BinaryIO, e: zip_scan.ZipEntry, label: str, depth: int,
                          named: bool = False) -> bool:
        """A big compressed member: streamed; an npy is scanned as one, anything else probe-parsed as a
        pickle whatever its first bytes. True when it was a pickle."""
        try:
            stream = zip_scan.open_member(sub, e)
        except _Malformed as exc:
            self.add([RawFinding(Severity.HIGH, "artifact.archive.unsupported",
                                 f"zip member {e.name!r} cannot be read: {exc}", e.header_offset)], label)
            return False
        r = Reader(stream, self.budget, size=e.usize)
        r.seekable = False
        try:
            head = r.peek(512)
            if head.startswith(b"\x93NUMPY"):
                findings, _det = scan_npy(r, lambda rr: self._npy_pickle(rr, label, depth, None), e.usize)
                self.add(findings, label)
                return False
            if self._pickle(r, label, depth + 1, probe=not named, probe_named=named):
                return True
            inner = detect_format(head, e.usize, e.name)
            if inner in _STRONG_MAGIC or inner == "gguf":
                self.add([RawFinding(Severity.HIGH, "artifact.archive.unsupported",
                                     f"compressed member {e.name!r} of {e.usize} bytes holds a {inner} that was "
                                     "not inspected", e.header_offset,
                                     "Members this large are streamed and only probe-parsed as a pickle; the "
                                     "container inside could not be analysed: the result is inconclusive.")], label)
            return False
        except (_Malformed, Truncated) as exc:
            self.malformed(f"{e.name}: {exc}", e.header_offset, label)
            return False

    def _crc(self, fh: BinaryIO, e: zip_scan.ZipEntry, label: str) -> None:
        crc = zip_scan.member_crc(fh, e)
        if crc is not None and crc != e.crc:
            self.add([RawFinding(Severity.MEDIUM, "artifact.zip.anomaly", f"CRC mismatch in {e.name!r}",
                                 e.header_offset, "Python's zipfile refuses this member while PyTorch loads it "
                                 "(CVE-2025-10156); its content was analysed regardless.",
                                 {"declared": e.crc, "actual": crc}, ("CVE-2025-10156",))], label)

    def _member_bytes(self, fh: BinaryIO, e: zip_scan.ZipEntry, limit: int, label: str) -> bytes | None:
        if e.usize > limit:
            self.add([RawFinding(Severity.HIGH, "artifact.limit-exceeded",
                                 f"member {e.name!r} of {e.usize} bytes exceeds the {limit}-byte bound",
                                 e.header_offset)], label)
            return None
        try:
            src = zip_scan.open_member(fh, e)
            data = src.read(e.usize + 1)
        except (_Malformed, Truncated, LimitExceeded) as exc:
            self.malformed(f"{e.name}: {exc}", e.header_offset, label)
            return None
        return data[: e.usize]

    def _tar(self, fh: BinaryIO, size: int | None, member: str, depth: int) -> None:
        """A tar archive (torch's legacy tar checkpoint): every regular member is scanned.

        ``storages`` and ``tensors`` are read as torch's ``legacy_load`` reads them (a count, then per
        item a pickle followed by raw bytes whose length the pickle and a binary header give), so
        that every pickle in them is scanned, not only the first; ``pickle`` and every other member
        go through the ordinary dispatch (which probe-parses unrecognised content as a pickle).
        """
        import tarfile  # lazy (like hashlib/threading below): start-up matters for one-file scans

        self.formats.append("torch-tar")
        try:
            with tarfile.open(fileobj=fh, mode="r:") as tf:
                count = 0
                for ti in tf:
                    self.budget.check()
                    count += 1
                    if count > 10_000:
                        raise LimitExceeded("more than 10000 tar members")
                    label = f"{member}!{ti.name}" if member else ti.name
                    if ti.issym() or ti.islnk() or ti.name.startswith("/") or ".." in ti.name.split("/"):
                        self.add([RawFinding(Severity.MEDIUM, "artifact.zip.path-traversal",
                                             f"tar member {ti.name!r} is a link or escapes the archive",
                                             ti.offset)], label)
                    if not ti.isfile():
                        continue
                    view = zip_scan.RangeFile(fh, ti.offset_data, ti.size)
                    if ti.name in ("storages", "tensors"):
                        try:
                            self._legacy_tar_member(view, ti.name, ti.size, label, depth + 1)
                        except (_Malformed, Truncated) as exc:
                            self.malformed(f"{ti.name}: {exc}", None, label)
                    else:
                        self.stream(view, ti.size, label, depth + 1, name=ti.name)
        except tarfile.TarError as exc:
            raise _Malformed(f"corrupt tar archive: {exc}") from None

    def _one_pickle(self, r: Reader, label: str, depth: int) -> Any:
        """Simulate one pickle at ``r``; its findings are recorded; returns the symbolic result."""
        ps = PickleScan(r, self.budget, depth=depth, nested=self.nested_bytes, on_build=joblib_on_build,
                        context=self.context)
        try:
            ps.run()
            return ps.stack[-1] if ps.stack else None
        finally:
            self.add(ps.findings, label)
            g = self.details.setdefault("globals", {})
            for k, v in ps.globals.items():
                if len(g) < 500:
                    g.setdefault(k, v)
            ps.release()

    def _legacy_tar_member(self, view: BinaryIO, name: str, size: int, label: str, depth: int) -> None:
        r = Reader(view, self.budget, size=size)
        n = self._one_pickle(r, label, depth)
        if type(n) is not int or not 0 <= n <= 1_000_000:
            raise _Malformed(f"legacy tar {name!r} does not start with an item count")
        for _ in range(n):
            self.budget.check()
            args = self._one_pickle(r, label, depth)
            if name == "storages":
                stype = args[2] if isinstance(args, tuple) and len(args) == 3 else None
                elsize = _LEGACY_STORAGE_SIZES.get(stype.name) if isinstance(stype, PG) else None
                if elsize is None:
                    raise _Malformed(f"legacy tar storage of unknown type {stype!r}: its data length is unknown")
                numel = int.from_bytes(r.read(8), "little", signed=True)
                if numel < 0:
                    raise _Malformed("negative legacy storage size")
                r.skip(numel * elsize)
            else:
                ndim = int.from_bytes(r.read(4), "little", signed=True)
                if not 0 <= ndim <= 64:
                    raise _Malformed(f"legacy tensor with {ndim} dimensions")
                r.skip(4 + 16 * ndim + 8)
        if name == "storages":
            self._one_pickle(r, label, depth)  # the storage views
        if not r.at_eof():
            self.add([RawFinding(Severity.LOW, "artifact.pickle.trailing-data",
                                 f"data after the legacy {name!r} records", r.offset)], label)


#: element sizes of the storage classes a legacy tar checkpoint names (torch.<X>Storage)
_LEGACY_STORAGE_SIZES = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
    "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
    "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8, "QInt8Storage": 1, "QUInt8Storage": 1,
    "QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
}


def _has_eocd(fh: BinaryIO, size: int) -> bool:
    """A zip archive behind a prefix: its end record is within the last 64 KiB."""
    start = fh.tell()
    try:
        fh.seek(start + max(0, size - 65557))
        return zip_scan.EOCD in fh.read(min(size, 65557))
    finally:
        fh.seek(start)


# -------------------------------------------------------------------- public entry points
def _finish(fs: _FileScan, fmt: str, size: int, t0: float, sha: str | None) -> FileReport:
    findings = []
    seen = set()
    for rf, member in fs.raw:
        ev = dict(rf.evidence)
        if member:
            ev["member"] = member
        title = rf.title if not member else f"{rf.title} [{member}]"
        key = (rf.rule, title, rf.offset)
        if key in seen:
            continue
        seen.add(key)
        findings.append(make_finding(rf.severity, rf.rule, title, location=fs.location, detail=rf.detail,
                                     offset=rf.offset, evidence=ev, references=tuple(rf.references)))
    findings.sort(key=lambda f: (-f.severity.rank, f.offset if f.offset is not None else -1))
    shown = [f for f in fs.formats if f not in ("unknown",)] or ["unknown"]
    label = "+".join(dict.fromkeys(shown))
    return FileReport(path=fs.location, format=label, size=size, findings=findings, sha256=sha,
                      duration_s=time.perf_counter() - t0, details=fs.details)


def _scan_open(fh: BinaryIO, size: int, location: str, path: Path | None, timeout: float) -> FileReport:
    t0 = time.perf_counter()
    fs = _FileScan(location, path, Budget(timeout))
    try:
        fmt = fs.stream(fh, size, "", 0, name=location)
    except RecursionError:
        fs.malformed("structure nested too deeply", None)
        fmt = "unknown"
    except MemoryError:
        fs.add([RawFinding(Severity.HIGH, "artifact.limit-exceeded", "scan ran out of memory", None)])
        fmt = "unknown"
    except Exception as exc:  # fail closed: any parser surprise is an inconclusive result, never a crash
        fs.malformed(f"unexpected parse failure ({type(exc).__name__}: {exc})", None)
        fmt = "unknown"
    return _finish(fs, fmt, size, t0, None)


_HASH_BLOCK = 8 << 20


def scan_file(path: str | Path, *, timeout: float = DEFAULT_TIMEOUT, hash: bool = False) -> FileReport:
    """Scan one file (content-based format detection).

    With ``hash`` the SHA-256 is computed on a second handle in a thread while the scan runs
    (hashlib releases the GIL), so the total is close to the hash alone. The thread reads 8 MiB at a
    time: each time it wins the GIL back from the (pure-Python) scanner it then hashes a large block
    without it, instead of one 256 KiB block per 5 ms switch interval.
    """
    p = Path(path)
    size = p.stat().st_size
    digest: list[str] = []
    worker = None
    if hash:
        import hashlib  # lazy: only with hash=True (one-file scan start-up)
        import threading

        def _hash() -> None:
            h = hashlib.sha256()
            buf = bytearray(_HASH_BLOCK)
            view = memoryview(buf)
            with p.open("rb", buffering=0) as hf:
                while n := hf.readinto(buf):
                    h.update(view[:n])
            digest.append(h.hexdigest())

        worker = threading.Thread(target=_hash, name="modelshield-sha256", daemon=True)
        worker.start()
    with p.open("rb") as fh:
        rep = _scan_open(fh, size, str(p), p, timeout)
    if worker is not None:
        worker.join()
        rep.sha256 = digest[0] if digest else None
    return rep


def scan_bytes(data: bytes, name: str = "<memory>", *, timeout: float = DEFAULT_TIMEOUT) -> ScanReport:
    """Scan an in-memory blob (the secure loader scans decrypted model bytes; no temp files)."""
    t0 = time.perf_counter()
    rep = _scan_open(io.BytesIO(data), len(data), name, None, timeout)
    return ScanReport(files=[rep], duration_s=time.perf_counter() - t0)


def _iter_files(root: Path) -> list[Path]:
    out: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__"))
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            try:
                st = p.stat()  # follows file symlinks (Hugging Face snapshots -> blobs)
            except OSError:
                continue
            if not p.is_file():
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            out.append(p)
    return out


def scan(path: str | Path | list[str | Path], *, timeout: float = DEFAULT_TIMEOUT, hash: bool = False) -> ScanReport:
    """Scan a file, or every file below a directory (recursively; HF cache trees supported).

    Parameters
    ----------
    path : a file, a directory, or a list of them.
    timeout : per-file wall-clock bound in seconds; a file that hits it is *inconclusive*.
    hash : also record each file's SHA-256 in the report.

    Raises
    ------
    InputNotFoundError
        A path does not exist.
    """
    t0 = time.perf_counter()
    paths = path if isinstance(path, list) else [path]
    report = ScanReport()
    for item in paths:
        if not isinstance(item, (str, os.PathLike)):
            raise UserError(f"scan() takes file or folder paths, not {type(item).__name__}")
        p = Path(item)
        if not p.exists():
            raise InputNotFoundError(f"no such file or directory: {p}")
        if not p.is_dir() and not p.is_file():  # a pipe would block past the timeout; a device never ends
            raise FormatError(f"{p} is not a regular file or folder (a pipe, device or socket); save it to a file "
                              "and scan that")
        files = _iter_files(p) if p.is_dir() else [p]
        for f in files:
            try:
                report.files.append(scan_file(f, timeout=timeout, hash=hash))
            except OSError as exc:
                report.errors.append(f"{f}: {exc.strerror or exc}")
                report.files.append(FileReport(path=str(f), format="unreadable", size=0, findings=[
                    make_finding(Severity.HIGH, "artifact.malformed", f"cannot read file: {exc.strerror or exc}",
                                 location=str(f))]))
    report.duration_s = time.perf_counter() - t0
    return report
