"""ONNX models: external-data paths and custom operator domains, read with a streaming walker.

External tensor data is loaded from ``location`` relative to the model directory; a location that
is absolute, climbs out with ``..`` or resolves (through symlinks) outside the directory reads or
overwrites arbitrary files (CVE-2022-25882, CVE-2024-27318). Nodes from custom domains need a
custom-op library, i.e. native code, to run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from modelshield.artifacts._io import Budget
from modelshield.artifacts.pickle_scan import RawFinding, _Malformed
from modelshield.artifacts.protobuf import Walker
from modelshield.findings import Severity

__all__ = ["STANDARD_DOMAINS", "scan_onnx"]

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
                              "com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental",
                              "org.pytorch.aten", "ai.onnx.contrib"})
_REFS = ("CVE-2022-25882", "CVE-2024-27318")


class _Onnx:
    def __init__(self, w: Walker, base: Path | None) -> None:
        self.w, self.base = w, base
        self.out: list[RawFinding] = []
        self.domains: set[str] = set()
        self.seen_ext: set[str] = set()

    def model(self, s: int, e: int) -> None:
        for f, wt, v, n in self.w.fields(s, e):
            if wt != 2:
                continue
            if f == 7:
                self.graph(v, v + n, 0)
            elif f == 25:
                self.function(v, v + n, 0)

    def function(self, s: int, e: int, depth: int) -> None:
        for f, wt, v, n in self.w.fields(s, e):
            if f == 7 and wt == 2:
                self.node(v, v + n, depth + 1)

    def graph(self, s: int, e: int, depth: int) -> None:
        if depth > 16:
            raise _Malformed("ONNX subgraphs nested too deeply")
        for f, wt, v, n in self.w.fields(s, e):
            if wt != 2:
                continue
            if f == 1:
                self.node(v, v + n, depth)
            elif f == 5:
                self.tensor(v, v + n)
            elif f == 15:
                for f2, wt2, v2, n2 in self.w.fields(v, v + n):
                    if wt2 == 2 and f2 in (1, 2):
                        self.tensor(v2, v2 + n2)

    def node(self, s: int, e: int, depth: int) -> None:
        domain, op, off = "", "", s
        for f, wt, v, n in self.w.fields(s, e):
            if wt != 2:
                continue
            if f == 7:
                domain = self.w.text(v, n, 4096)
            elif f == 4:
                op = self.w.text(v, n, 4096)
            elif f == 5:
                self.attribute(v, v + n, depth)
        if domain not in STANDARD_DOMAINS and domain not in self.domains:
            self.domains.add(domain)
            self.out.append(RawFinding(
                Severity.MEDIUM, "artifact.onnx.custom-domain", f"node {op!r} from custom operator domain {domain!r}",
                off, "Custom operators need a native custom-op library registered by the runtime; "
                "that library is code you must trust.", {"domain": domain, "op_type": op}))

    def attribute(self, s: int, e: int, depth: int) -> None:
        for f, wt, v, n in self.w.fields(s, e):
            if wt != 2:
                continue
            if f in (5, 10):
                self.tensor(v, v + n)
            elif f in (6, 11):
                self.graph(v, v + n, depth + 1)

    def tensor(self, s: int, e: int) -> None:
        ext = False
        location = None
        name = ""
        for f, wt, v, n in self.w.fields(s, e):
            if f == 14 and wt == 0:
                ext = v == 1
            elif f == 8 and wt == 2:
                name = self.w.text(v, n, 4096)
            elif f == 13 and wt == 2:
                key = val = None
                for f2, wt2, v2, n2 in self.w.fields(v, v + n):
                    if wt2 == 2 and f2 == 1:
                        key = self.w.text(v2, n2, 4096)
                    elif wt2 == 2 and f2 == 2:
                        val = self.w.text(v2, n2, 4096)
                if key == "location":
                    location = val
        if location is not None and (ext or True):
            self.check_location(location, name, s)

    def check_location(self, loc: str, tensor: str, off: int) -> None:
        if loc in self.seen_ext:
            return
        self.seen_ext.add(loc)
        norm = loc.replace("\\", "/")
        bad = None
        if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or norm.startswith("~"):
            bad = "an absolute path"
        elif ".." in norm.split("/"):
            bad = "a path that climbs out of the model directory"
        elif self.base is not None:
            target = (self.base / loc)
            try:
                real = Path(os.path.realpath(target))
                inside = real == Path(os.path.realpath(self.base)) or Path(os.path.realpath(self.base)) in real.parents
            except OSError:
                inside = True
            if not inside:
                bad = "a symlink that resolves outside the model directory"
            elif not target.exists():
                self.out.append(RawFinding(
                    Severity.LOW, "artifact.onnx.missing-external-data",
                    f"external data file {loc!r} is missing", off, "The model will not load without it.",
                    {"location": loc, "tensor": tensor}))
        if bad:
            self.out.append(RawFinding(
                Severity.CRITICAL, "artifact.onnx.external-data",
                f"external data location {loc!r} is {bad}", off,
                "Loading the model reads (and tools that save it overwrite) a file outside the model "
                "directory: arbitrary file read/write (CVE-2022-25882, CVE-2024-27318).",
                {"location": loc, "tensor": tensor}, _REFS))


def scan_onnx(fh: BinaryIO, size: int | None, base: Path | None, budget: Budget) -> list[RawFinding]:
    if size is None:
        raise _Malformed("ONNX scan needs a known size")
    start = fh.tell()
    w = Walker(fh, start + size, budget)
    o = _Onnx(w, base)
    o.model(start, start + size)
    return o.out
