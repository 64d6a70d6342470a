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

from modelshield.artifacts._io import InflateStream, RangeFile, Truncated
from modelshield.artifacts.pickle_scan import RawFinding, _Malformed
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


def _zip64_record(fh: BinaryIO, pos: int, size: int) -> tuple[int, int, int] | None:
    """(entries, cd size, cd offset) of a zip64 end-of-central-directory record at ``pos``, or None."""
    if pos < 0 or pos + 56 > size:
        return None
    fh.seek(pos)
    z = fh.read(56)
    if z[:4] != b"PK\x06\x06":
        return None
    n64, cd64, off64 = struct.unpack("<QQQ", z[32:56])
    return n64, cd64, off64


def read_central_directory(fh: BinaryIO, size: int) -> tuple[list[ZipEntry], dict[str, Any]]:
    """Every member of the archive, as the loaders find them.

    zip64: miniz (PyTorch) reads the zip64 end record where the locator points; zipfile (NumPy,
    Keras) reads the one right before the locator. Both are read; when they disagree the finding is
    ``high`` and the members of both central directories are returned (each is scanned).
    """
    eocd_pos, rec = _find_eocd(fh, size)
    (_sig, _disk, _cd_disk, _n_disk, n_total, cd_size, cd_off, _clen) = struct.unpack("<4s4H2LH", rec)
    zip64 = False
    findings: list[RawFinding] = []
    # each view: (entries, cd size, cd offset, cd start in this file or None for "end record - size")
    views: list[tuple[int, int, int, int | None, int]] = []
    if eocd_pos >= 20:
        fh.seek(eocd_pos - 20)
        loc = fh.read(20)
        if loc[:4] == b"PK\x06\x07":
            zip64 = True
            ptr = struct.unpack("<Q", loc[8:16])[0]
            adj_pos = eocd_pos - 20 - 56
            adjacent = _zip64_record(fh, adj_pos, size)
            if adjacent is not None and ptr + (adj_pos - adjacent[1] - adjacent[2]) == adj_pos:
                ptr = adj_pos  # offsets relative to an archive behind a prefix: the same record
            pointed = _zip64_record(fh, ptr, size) if ptr != adj_pos else adjacent
            if pointed is None and adjacent is None:
                raise _Malformed("zip64 end record not where its locator says")
            if pointed is not None:
                # miniz: the record the locator points to, the central directory at its stated offset
                views.append((*pointed, None if ptr == adj_pos else pointed[2], ptr))
            if adjacent is not None and (pointed is None or ptr != adj_pos):
                views.append((*adjacent, None, adj_pos))  # zipfile: the record next to the locator
            if pointed is not None and adjacent is not None and (ptr != adj_pos):
                findings.append(RawFinding(
                    Severity.HIGH, "artifact.zip.zip64-mismatch",
                    f"zip64 locator points to offset {ptr}, not to the end record before it ({adj_pos})",
                    ptr, "PyTorch's reader (miniz) follows the locator while zipfile reads the record "
                    "next to it: the two loaders can see different archives. Both were scanned.",
                    {"locator_points_to": ptr, "adjacent_record": adj_pos,
                     "pointed": list(pointed), "adjacent": list(adjacent)}))
            elif pointed is None:
                findings.append(RawFinding(
                    Severity.HIGH, "artifact.zip.zip64-mismatch",
                    f"zip64 locator points to offset {ptr}, where there is no zip64 end record", ptr,
                    "miniz (PyTorch) refuses or misreads this archive while zipfile reads the record "
                    "next to the locator."))
    if not views:
        views.append((n_total, cd_size, cd_off, None, eocd_pos))
    entries: list[ZipEntry] = []
    seen: set[tuple[str, int]] = set()
    shift = 0
    for k, (n, cdsz, cdoff, absolute, rec_pos) in enumerate(views):
        if zip64:
            # the 32-bit fields are saturated in a real zip64 archive; when they are not, they must agree
            for got, want, what in ((n_total, n, "entry count"), (cd_size, cdsz, "central directory size"),
                                    (cd_off, cdoff, "central directory offset")):
                if got not in (0xFFFF, 0xFFFFFFFF) and got != want and k == 0:
                    findings.append(RawFinding(
                        Severity.MEDIUM, "artifact.zip.anomaly",
                        f"zip64 and classic end records disagree on the {what} ({want} vs {got})", eocd_pos,
                        "Readers that use the classic record see a different archive."))
        if n > MAX_ENTRIES:
            raise _Malformed(f"zip declares {n} entries (bound {MAX_ENTRIES})")
        cd_start = absolute if absolute is not None else rec_pos - cdsz
        if cd_start < 0:
            raise _Malformed("zip central directory size runs before the start of the file")
        view_shift = cd_start - cdoff  # bytes of archive prefix (self-extractors, appended archives)
        if k == 0:
            shift = view_shift
        view_entries = _parse_cd(fh, cd_start, cdsz, n, view_shift)
        findings.extend(name_collisions(view_entries))
        for e in view_entries:
            key = (e.name, e.header_offset)
            if key not in seen:
                seen.add(key)
                entries.append(e)
    info = {"entries": len(entries), "prefix_bytes": shift, "zip64": zip64, "findings": findings}
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


def name_collisions(entries: list[ZipEntry]) -> list[RawFinding]:
    """Members of one central directory whose names are equal exactly or ignoring case."""
    out: list[RawFinding] = []
    by_name: dict[str, list[str]] = {}
    for e in entries:
        by_name.setdefault(e.name.lower(), []).append(e.name)
    for names in by_name.values():
        if len(names) > 1:
            exact = len(set(names)) < len(names)
            out.append(RawFinding(
                Severity.HIGH, "artifact.zip.name-collision",
                f"zip members whose names collide {'exactly' if exact else 'ignoring case'}: "
                f"{', '.join(repr(n) for n in names[:4])}", None,
                "PyTorch's reader (miniz) finds members case-insensitively and takes one of the colliding "
                "names, zipfile (NumPy, Keras) takes the last exact match: loaders and a scanner that "
                "picks by name can read different content. Every member was scanned.",
                {"names": names[:16]}))
    return out


def _parse_cd(fh: BinaryIO, cd_start: int, cd_size: int, n_total: int, shift: int) -> list[ZipEntry]:
    if cd_size > 256 << 20:
        raise _Malformed(f"zip central directory of {cd_size} bytes is absurd")
    fh.seek(cd_start)
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
    return entries


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
    out: list[RawFinding] = list(info.get("findings", ()))
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
