"""GGUF (llama.cpp): header/metadata validation and chat-template (Jinja) inspection.

Chat templates are rendered by Jinja2 in many runtimes; a template that reaches Python internals
(``__class__``, ``__subclasses__``, ``__globals__``...) escapes the sandbox or runs code when the
runtime does not sandbox (llama-cpp-python, CVE-2024-34359).
"""

from __future__ import annotations

import re
import struct

from modelshield.checks.artifact._io import Reader
from modelshield.checks.artifact.pickle_scan import RawFinding, _Malformed
from modelshield.findings import Severity

__all__ = ["scan_gguf", "template_findings"]

MAX_STRING = 64 << 20
MAX_ARRAY = 1 << 26
MAX_KV = 1 << 20
MAX_TENSORS = 1 << 22
_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_SSTI = re.compile(
    r"__(?:class|mro|subclasses|globals|builtins|init|base|bases|import|getattribute|dict|code|"
    r"func|self|reduce|reduce_ex)__|\battr\s*\(|\|\s*attr\b|\bcycler\b|\bjoiner\b|\blipsum\b|"
    r"\bnamespace\s*\.\s*__|\bos\s*\.\s*(?:system|popen)|\bpopen\b|\beval\s*\(|\bexec\s*\(|"
    r"\bsubprocess\b|\bimport_module\b|\brequest\.application\b|\bconfig\.__class__"
)


def template_findings(text: str, key: str, offset: int) -> list[RawFinding]:
    hits = sorted({m.group(0) for m in _SSTI.finditer(text)})
    if not hits:
        return []
    return [RawFinding(
        Severity.CRITICAL, "artifact.gguf.template-injection",
        f"chat template {key!r} reaches Python internals: {', '.join(hits[:5])}", offset,
        "Jinja server-side template injection: rendering this template escapes the sandbox or runs "
        "code in runtimes that do not sandbox it (CVE-2024-34359).",
        {"constructs": hits[:20]}, ("CVE-2024-34359",))]


def _str(r: Reader) -> str:
    n = struct.unpack("<Q", r.read(8))[0]
    if n > MAX_STRING:
        raise _Malformed(f"GGUF string of {n} bytes exceeds the bound")
    rem = r.remaining_known()
    if rem is not None and n > rem:
        raise _Malformed("GGUF string runs past the end of the file")
    return r.read(n).decode("utf-8", "replace")


def _skip_value(r: Reader, vtype: int, depth: int = 0) -> None:
    if vtype in _SCALAR:
        r.skip(_SCALAR[vtype])
    elif vtype == 8:
        n = struct.unpack("<Q", r.read(8))[0]
        if n > MAX_STRING:
            raise _Malformed("GGUF string too long")
        r.skip(n)
    elif vtype == 9:
        if depth > 4:
            raise _Malformed("GGUF arrays nested too deeply")
        etype = struct.unpack("<I", r.read(4))[0]
        n = struct.unpack("<Q", r.read(8))[0]
        if n > MAX_ARRAY:
            raise _Malformed(f"GGUF array of {n} items exceeds the bound")
        if etype in _SCALAR:
            r.skip(n * _SCALAR[etype])
        else:
            for i in range(n):
                if not i & 0xFFF:
                    r.budget.check()
                _skip_value(r, etype, depth + 1)
    else:
        raise _Malformed(f"unknown GGUF value type {vtype}")


def scan_gguf(r: Reader) -> list[RawFinding]:
    if r.read(4) != b"GGUF":
        raise _Malformed("not a GGUF file")
    version = struct.unpack("<I", r.read(4))[0]
    if version not in (1, 2, 3):
        raise _Malformed(f"unsupported GGUF version {version}")
    wide = version >= 2
    n_tensors = struct.unpack("<Q" if wide else "<I", r.read(8 if wide else 4))[0]
    n_kv = struct.unpack("<Q" if wide else "<I", r.read(8 if wide else 4))[0]
    if n_kv > MAX_KV or n_tensors > MAX_TENSORS:
        raise _Malformed(f"GGUF declares {n_kv} metadata entries / {n_tensors} tensors (absurd)")
    out: list[RawFinding] = []
    for _ in range(n_kv):
        r.budget.check()
        off = r.offset
        key = _str(r)
        vtype = struct.unpack("<I", r.read(4))[0]
        if vtype == 8 and "chat_template" in key:
            out.extend(template_findings(_str(r), key, off))
        else:
            _skip_value(r, vtype)
    for _ in range(n_tensors):
        r.budget.check()
        _str(r)
        nd = struct.unpack("<I", r.read(4))[0]
        if nd > 8:
            raise _Malformed(f"GGUF tensor with {nd} dimensions")
        r.skip(8 * nd + 4 + 8)
    return out
