"""Zip containers (PyTorch checkpoints, ``.npz``, ``.keras``, TorchScript), parsed by hand.

We do not use :mod:`zipfile`: it refuses archives that PyTorch's reader (miniz) loads happily —
members whose local and central names differ (CVE-2025-1944), whose flag bits claim encryption or
unsupported features (CVE-2025-1945), or whose CRC is wrong (CVE-2025-10156) — and a scanner
that crashes on those lets the payload through. We read the central directory like miniz does
(honouring any archive prefix), report every such discrepancy, and scan each member's content.
Declared vs. actual sizes and compression ratios are checked before anything is decompressed.
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from modelshield.checks.artifact._io import InflateStream, RangeFile, Truncated
from modelshield.checks.artifact.pickle_scan import RawFinding, _Malformed
from modelshield.findings import Severity

__all__ = ["ZipEntry", "read_central_directory", "open_member", "zip_structure_findings"]

MAX_ENTRIES = 200_000
RATIO_LIMIT = 200
BOMB_MIN = 64 << 20
TOTAL_LIMIT = 1 << 40
EOCD = b"PK\x05\x06"


@dataclass
class ZipEntry:
    name: str
    method: int
    flags: int
    crc: int
    csize: int
    usize: int
    header_offset: int
    data_offset: int = -1
    local_name: str = ""
    local_flags: int = 0
    local_method: int = 0


def _find_eocd(fh: BinaryIO, size: int) -> tuple[int, bytes]:
    tail_len = min(size, 65557)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    i = tail.rfind(EOCD)
    while i >= 0 and len(tail) - i < 22:
        i = tail.rfind(EOCD, 0, i)
    if i < 0:
        raise _Malformed("zip end-of-central-directory record not found")
    return size - tail_len + i, tail[i: i + 22]


def read_central_directory(fh: BinaryIO, size: int) -> tuple[list[ZipEntry], dict[str, Any]]:
    eocd_pos, rec = _find_eocd(fh, size)
    (_sig, _disk, _cd_disk, _n_disk, n_total, cd_size, cd_off, _clen) = struct.unpack("<4s4H2LH", rec)
    zip64 = False
    if eocd_pos >= 20:
        fh.seek(eocd_pos - 20)
        loc = fh.read(20)
        if loc[:4] == b"PK\x06\x07":
            # zip64 end record sits right before its locator (PyTorch always writes one)
            fh.seek(max(0, eocd_pos - 20 - 56))
            z = fh.read(56)
            if z[:4] != b"PK\x06\x06":
                raise _Malformed("zip64 end record not where its locator says")
            n64, cd64, off64 = struct.unpack("<QQQ", z[32:56])
            if n_total == 0xFFFF or n64 != n_total:
                n_total = n64
            if cd_size == 0xFFFFFFFF or cd64 != cd_size:
                cd_size = cd64
            if cd_off == 0xFFFFFFFF or off64 != cd_off:
                cd_off = off64
            zip64 = True
            eocd_pos = eocd_pos - 20 - 56
    if n_total > MAX_ENTRIES:
        raise _Malformed(f"zip declares {n_total} entries (bound {MAX_ENTRIES})")
    cd_start = eocd_pos - cd_size
    if cd_start < 0:
        raise _Malformed("zip central directory size runs before the start of the file")
    shift = cd_start - cd_off  # bytes of archive prefix (self-extractors, appended archives)
    fh.seek(cd_start)
    if cd_size > 256 << 20:
        raise _Malformed(f"zip central directory of {cd_size} bytes is absurd")
    cd = fh.read(cd_size)
    entries: list[ZipEntry] = []
    p = 0
    for _ in range(n_total):
        if cd[p: p + 4] != b"PK\x01\x02" or p + 46 > len(cd):
            raise _Malformed("corrupt zip central directory entry")
        (flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, _disk, _ia, _ea, hoff) = struct.unpack(
            "<2x2x2H2H3L3H2HLL", cd[p + 4: p + 46])
        name_b = cd[p + 46: p + 46 + nlen]
        extra = cd[p + 46 + nlen: p + 46 + nlen + xlen]
        p += 46 + nlen + xlen + clen
        if 0xFFFFFFFF in (csize, usize, hoff):
            csize, usize, hoff = _zip64_extra(extra, csize, usize, hoff)
        name = name_b.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        entries.append(ZipEntry(name, method, flags, crc, csize, usize, hoff + shift))
    info = {"entries": len(entries), "prefix_bytes": shift, "zip64": zip64}
    for e in entries:
        if e.header_offset < 0 or e.header_offset + 30 > size:
            raise _Malformed(f"zip member {e.name!r} points outside the file")
        fh.seek(e.header_offset)
        lh = fh.read(30)
        if lh[:4] != b"PK\x03\x04":
            raise _Malformed(f"zip member {e.name!r} has no local header")
        lflags, lmethod = struct.unpack("<2H", lh[6:10])
        lnlen, lxlen = struct.unpack("<2H", lh[26:30])
        e.local_name = fh.read(lnlen).decode("utf-8" if lflags & 0x800 else "cp437", "replace")
        e.local_flags, e.local_method = lflags, lmethod
        e.data_offset = e.header_offset + 30 + lnlen + lxlen
        if e.data_offset + e.csize > size:
            raise _Malformed(f"zip member {e.name!r} declares {e.csize} bytes past the end of the file")
    return entries, info


def _zip64_extra(extra: bytes, csize: int, usize: int, hoff: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, ln = struct.unpack("<2H", extra[i: i + 4])
        body = extra[i + 4: i + 4 + ln]
        if tag == 1:
            vals = [struct.unpack("<Q", body[j: j + 8])[0] for j in range(0, len(body) - 7, 8)]
            it = iter(vals)
            if usize == 0xFFFFFFFF:
                usize = next(it, usize)
            if csize == 0xFFFFFFFF:
                csize = next(it, csize)
            if hoff == 0xFFFFFFFF:
                hoff = next(it, hoff)
            break
        i += 4 + ln
    return csize, usize, hoff


def zip_structure_findings(entries: list[ZipEntry], info: dict[str, Any]) -> list[RawFinding]:
    out: list[RawFinding] = []
    total = 0
    spans = []
    for e in entries:
        total += e.usize
        if e.local_name != e.name:
            out.append(RawFinding(
                Severity.MEDIUM, "artifact.zip.anomaly",
                f"zip member name differs between central directory and local header: {e.name!r} vs {e.local_name!r}",
                e.header_offset, "Loaders and scanners may read different members (CVE-2025-1944).",
                {"central": e.name, "local": e.local_name}, ("CVE-2025-1944",)))
        if (e.flags | e.local_flags) & 0x1:
            out.append(RawFinding(
                Severity.MEDIUM, "artifact.zip.anomaly", f"zip member {e.name!r} has the encryption flag set",
                e.header_offset, "PyTorch's reader ignores this flag while zipfile-based scanners give up "
                "(CVE-2025-1945); the content is analysed regardless.", {"flags": e.flags}, ("CVE-2025-1945",)))
        if e.method != e.local_method:
            out.append(RawFinding(
                Severity.MEDIUM, "artifact.zip.anomaly", f"zip member {e.name!r}: compression method differs",
                e.header_offset, "Central and local headers disagree on the compression method.",
                {"central": e.method, "local": e.local_method}))
        if (e.name.startswith(("/", "\\")) or re.search(r"(^|[/\\])\.\.([/\\]|$)", e.name)
                or re.match(r"^[A-Za-z]:", e.name)):
            out.append(RawFinding(
                Severity.MEDIUM, "artifact.zip.path-traversal", f"zip member name escapes the archive: {e.name!r}",
                e.header_offset, "Extracting this archive writes outside the target directory (zip slip)."))
        if e.csize and e.usize > BOMB_MIN and e.usize / max(e.csize, 1) > RATIO_LIMIT:
            out.append(RawFinding(
                Severity.HIGH, "artifact.zip.bomb",
                f"zip member {e.name!r} expands {e.usize / e.csize:.0f}x ({e.usize} bytes)", e.header_offset,
                "The compression ratio is far beyond real model data: a decompression bomb.",
                {"csize": e.csize, "usize": e.usize}))
        if e.method == 0 and e.csize != e.usize:
            out.append(RawFinding(
                Severity.MEDIUM, "artifact.zip.anomaly",
                f"stored zip member {e.name!r} declares different sizes", e.header_offset,
                "A stored member's compressed and uncompressed sizes must be equal.",
                {"csize": e.csize, "usize": e.usize}))
        spans.append((e.header_offset, e.data_offset + e.csize, e.name))
    spans.sort()
    for (_a0, a1, an), (b0, _b1, bn) in itertools.pairwise(spans):
        if b0 < a1:
            out.append(RawFinding(
                Severity.HIGH, "artifact.zip.bomb", f"zip members overlap: {an!r} and {bn!r}", b0,
                "Overlapping members are the construction of non-recursive zip bombs "
                "and let different readers see different content."))
            break
    if total > TOTAL_LIMIT:
        out.append(RawFinding(Severity.HIGH, "artifact.zip.bomb",
                              f"zip declares {total} uncompressed bytes in total", 0,
                              "Declared sizes beyond any real model: a decompression bomb."))
    if info.get("prefix_bytes"):
        out.append(RawFinding(Severity.LOW, "artifact.zip.anomaly",
                              f"{info['prefix_bytes']} bytes precede the zip archive", 0,
                              "An archive prefix (self-extractor, appended archive); the archive was "
                              "located through its central directory and scanned."))
    return out


def open_member(fh: BinaryIO, e: ZipEntry) -> BinaryIO:
    """A streaming reader over one member's uncompressed content (bounded by its declared size)."""
    raw = RangeFile(fh, e.data_offset, e.csize)
    if e.method == 0:
        return raw  # type: ignore[return-value]
    if e.method == 8:
        return InflateStream(raw, wbits=-15, max_out=e.usize)  # type: ignore[return-value]
    raise _Malformed(f"zip member {e.name!r} uses compression method {e.method} (not stored/deflate)")


def member_crc(fh: BinaryIO, e: ZipEntry, limit: int = 64 << 20) -> int | None:
    """CRC-32 of a member's content, or None when it is larger than ``limit`` or unreadable."""
    if e.usize > limit:
        return None
    try:
        src = open_member(fh, e)
        crc = 0
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
        return crc
    except (Truncated, _Malformed, Exception):
        return None
