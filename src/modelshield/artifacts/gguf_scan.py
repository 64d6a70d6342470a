"""GGUF (llama.cpp): header/metadata validation and chat-template (Jinja) inspection.

Chat templates are rendered by Jinja2 in many runtimes; a template that reaches Python internals
(``__class__``, ``__subclasses__``, ``__globals__``...) escapes the sandbox or runs code when the
runtime does not sandbox (llama-cpp-python, CVE-2024-34359).
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

from modelshield.artifacts._io import Budget, Reader
from modelshield.artifacts.pickle_scan import RawFinding, _Malformed
from modelshield.findings import Severity

__all__ = ["render_findings", "scan_gguf", "template_findings"]

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


#: the render oracle: a child process (memory and CPU capped) renders the template in Jinja's
#: ImmutableSandboxedEnvironment with dummy conversations and reports every attribute or callable the
#: sandbox refused. Static rules miss names built at run time (``'__cla' ~ 'ss__'``, subscripts);
#: the sandbox sees the attribute actually requested.
_RENDER_CHILD = r"""
import json, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (int(sys.argv[1]) + 1, int(sys.argv[1]) + 1))
except Exception:
    pass
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2.exceptions import SecurityError, TemplateSyntaxError
unsafe, errors = [], []
plain = SandboxedEnvironment()
class Oracle(ImmutableSandboxedEnvironment):
    def is_safe_attribute(self, obj, attr, value):
        ok = super().is_safe_attribute(obj, attr, value)
        if not ok and not plain.is_safe_attribute(obj, attr, value):
            unsafe.append(f"{type(obj).__name__}.{attr}"[:120])
        return ok
    def is_safe_callable(self, obj):
        ok = super().is_safe_callable(obj)
        if not ok:
            unsafe.append(f"call {obj!r}"[:120])
        return ok
def raise_exception(msg):
    raise ValueError(str(msg)[:200])
env = Oracle(trim_blocks=True, lstrip_blocks=True)
env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: "01 Jan 2025")
try:
    tpl = env.from_string(sys.stdin.read())
except TemplateSyntaxError as exc:
    print(json.dumps({"unsafe": [], "errors": ["syntax: " + str(exc)[:200]]}))
    sys.exit(0)
tool = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object",
        "properties": {"x": {"type": "string"}}}}}
call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": "1"}}}
convs = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"},
     {"role": "user", "content": "u2"}],
    [{"role": "user", "content": "u"}, {"role": "assistant", "content": "", "tool_calls": [call]},
     {"role": "tool", "content": "r", "tool_call_id": "c1", "name": "f"}],
]
for msgs in convs:
    for gen in (True, False):
        ctx = dict(messages=msgs, add_generation_prompt=gen, bos_token="<s>", eos_token="</s>",
                   tools=[tool] if len(msgs) == 3 else None, documents=None)
        try:
            tpl.render(**ctx)
        except SecurityError as exc:
            unsafe.append("SecurityError: " + str(exc)[:160])
        except Exception as exc:
            errors.append(type(exc).__name__ + ": " + str(exc)[:120])
print(json.dumps({"unsafe": sorted(set(unsafe))[:20], "errors": sorted(set(errors))[:5]}))
"""


def render_findings(text: str, key: str, offset: int, budget: Budget | None = None) -> list[RawFinding]:
    """Render-check a chat template in Jinja's sandbox (child process, bounded by the scan deadline)."""
    left = 10.0 if budget is None else min(10.0, budget.deadline - budget.clock())
    if left < 0.5:
        return [RawFinding(Severity.HIGH, "artifact.limit-exceeded",
                           f"chat template {key!r}: no time left for the sandbox render check", offset,
                           "The scan deadline passed before the template could be render-checked; "
                           "the result is inconclusive.")]
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv; the template goes to stdin, rendered sandboxed
            [sys.executable, "-I", "-c", _RENDER_CHILD, str(int(left) + 1)],
                              input=text.encode("utf-8", "surrogatepass"), capture_output=True, timeout=left,
                              check=False)
        res = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return [RawFinding(Severity.HIGH, "artifact.limit-exceeded",
                           f"chat template {key!r}: the sandbox render check did not finish in {left:.1f} s",
                           offset, "Rendering the template ran past the scan deadline (a loop or an "
                           "expansion): the result is inconclusive.")]
    except (OSError, ValueError, IndexError):
        return [RawFinding(Severity.HIGH, "artifact.inconclusive",
                           f"chat template {key!r}: the sandbox render check failed", offset,
                           "The template could not be rendered in Jinja's sandbox (the check process "
                           "failed or ran out of memory): the result is inconclusive.")]
    unsafe = [str(u) for u in res.get("unsafe", [])]
    if not unsafe:
        return []
    return [RawFinding(
        Severity.CRITICAL, "artifact.gguf.template-injection",
        f"chat template {key!r} reaches Python internals when rendered: {', '.join(unsafe[:3])}", offset,
        "Rendered in Jinja's ImmutableSandboxedEnvironment with ordinary conversations, the template "
        "asked for attributes or callables the sandbox refuses (Python internals): server-side template "
        "injection that runs code where templates are not sandboxed (CVE-2024-34359).",
        {"refused": unsafe[:20]}, ("CVE-2024-34359",))]


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
            text = _str(r)
            static = template_findings(text, key, off)
            out.extend(static)
            if not static:  # already critical: the render check cannot raise it further
                out.extend(render_findings(text, key, off, r.budget))
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
