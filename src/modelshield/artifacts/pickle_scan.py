"""Static pickle analysis: an opcode-level simulation of the unpickler's stack and memo.

Nothing is imported, called or deserialised. Every opcode of protocols 0-5 is interpreted over
*symbolic* values: globals are resolved through the memo exactly as ``pickle`` would
(``GLOBAL``/``STACK_GLOBAL``/``INST``, ``PUT``/``GET``/``MEMOIZE``), calls (``REDUCE``, ``NEWOBJ``,
``OBJ``, ``INST``, ``BUILD``) are recorded with their opcode offset, and bytes handed to a
``loads``-like callable are scanned as nested pickles. Large payloads (``BINBYTES8``...) are
skipped, never read; containers keep only a bounded prefix of their items, so memory does not grow
with file size. Every bound that is hit ends the scan with an *inconclusive* finding.

References
----------
.. [1] PEP 3154 / PEP 574 (pickle protocols 4 and 5); CPython ``Lib/pickle.py``, ``pickletools``.
.. [2] Trail of Bits, "Never a dill moment: Exploiting machine learning pickle files" (2021).
.. [3] JFrog / ReversingLabs advisories CVE-2025-1716, -1889, -1944, -1945, -10155, -10156, -10157.
"""

from __future__ import annotations

import codecs
import gc
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from modelshield.artifacts._io import Budget, LimitExceeded, Reader, Truncated
from modelshield.artifacts.policy import NESTED_LOADERS, classify_global
from modelshield.findings import Severity

__all__ = ["PickleScan", "RawFinding", "looks_like_pickle_start", "scan_pickle_stream"]

MAX_STACK = 200_000
MAX_MEMO = 2_000_000
MAX_KEEP_STR = 1024
MAX_KEEP_BYTES = 1 << 20
MAX_RETAINED = 32 << 20
MAX_ITEMS = 64
MAX_NEST = 4
MAX_PICKLES = 64

#: first bytes a protocol 0/1 pickle (no PROTO header, CVE-2025-10155) plausibly starts with
P0_STARTS = frozenset(b"(cdl]}NIFSVLi)tKJMGTUXq")


def looks_like_pickle_start(head: bytes) -> bool:
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return True
    return bool(head) and head[0] in P0_STARTS


@dataclass
class RawFinding:
    severity: Severity
    rule: str
    title: str
    offset: int | None = None
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    references: tuple[str, ...] = ()


# ---------------------------------------------------------------- symbolic values
class G:
    """A resolved global (``module.name``)."""

    __slots__ = ("draft", "hook", "key", "module", "name", "offset", "plain", "verdict")

    def __init__(self, module: str, name: str, offset: int, verdict: Any) -> None:
        self.module, self.name, self.offset, self.verdict = module, name, offset, verdict
        self.key = f"{module}.{name}"  # computed once: BUILD/REDUCE hooks compare it per call
        self.draft: RawFinding | None = None
        #: what ``_call`` checks on a call of it beyond recording it (:func:`_call_hook`)
        self.hook = _call_hook(self.key)
        #: calling it needs no bookkeeping (no finding, no hook); set by ``PickleScan._global`` once
        #: ``draft`` is known
        self.plain = False

    def __repr__(self) -> str:
        return self.key


class Call:
    """The result of calling something (``REDUCE``/``NEWOBJ``/``OBJ``/``INST``)."""

    __slots__ = ("args", "func", "offset", "state")

    def __init__(self, func: Any, args: Any, offset: int) -> None:
        self.func, self.args, self.offset, self.state = func, args, offset, None

    def __repr__(self) -> str:
        return f"{_short(self.func)}(...)"


class Blob:
    """A str/bytes payload too large to keep; ``start`` is its stream offset."""

    __slots__ = ("kind", "length", "start")

    def __init__(self, kind: str, length: int, start: int) -> None:
        self.kind, self.length, self.start = kind, length, start

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.length} bytes>"


class Opaque:
    __slots__ = ("pid", "what")

    def __init__(self, what: str, pid: Any = None) -> None:
        self.what, self.pid = what, pid

    def __repr__(self) -> str:
        return f"<{self.what}>"


class Seq:
    """A list/dict/set/frozenset with a bounded prefix of its items."""

    __slots__ = ("items", "kind", "n")

    def __init__(self, kind: str, items: list | None = None) -> None:
        self.kind = kind
        self.items = list(items[:MAX_ITEMS]) if items else []
        self.n = len(items) if items else 0

    def add(self, values: list) -> None:
        room = MAX_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(values[:room])
        self.n += len(values)

    def get(self, key: Any) -> Any:
        for k, v in self.items:
            if k == key:
                return v
        return None

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.n}>"


class _Mark:
    __repr__ = lambda self: "<mark>"  # noqa: E731


MARK = _Mark()
NONE = None


def _short(v: Any, depth: int = 0) -> str:
    """A bounded, cycle-safe rendering of a symbolic value for evidence."""
    if depth > 3:
        return "..."
    if isinstance(v, str):
        return repr(v if len(v) <= 80 else v[:77] + "...")
    if isinstance(v, bytes):
        return repr(v[:40]) + ("..." if len(v) > 40 else "")
    if isinstance(v, tuple):
        inner = ", ".join(_short(x, depth + 1) for x in v[:6])
        return f"({inner}{', ...' if len(v) > 6 else ''})"
    if isinstance(v, Call):
        return f"{_short(v.func, depth + 1)}{_short(v.args, depth + 1) if isinstance(v.args, tuple) else '(...)'}"
    return repr(v)[:120]


class PickleScan:
    """Simulate one pickle stream (and, on request, the pickles that follow it).

    ``on_build`` lets a container format hook object state (joblib array wrappers read their data
    from the stream at that point). ``nested`` scans bytes given to loads-like callables.
    """

    def __init__(
        self,
        reader: Reader,
        budget: Budget,
        *,
        depth: int = 0,
        nested: Callable[[bytes, int], list[RawFinding]] | None = None,
        on_build: Callable[[PickleScan, Call, Any, int], None] | None = None,
        fetch_blob: Callable[[Blob], bytes | None] | None = None,
        context: str = "pickle",
    ) -> None:
        self.r = reader
        self.context = context
        self.budget = budget
        self.depth = depth
        self.nested = nested
        self.on_build = on_build
        self.fetch_blob = fetch_blob
        self.findings: list[RawFinding] = []
        self.globals: dict[str, str] = {}
        self.ops = 0
        self.retained = 0
        self.protocol = 0
        self.complete = False
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.flags: set[str] = set()

    def release(self) -> None:
        """Drop the simulated stack and memo (after ``run``; findings and globals are kept)."""
        self.memo.clear()
        self.metastack.clear()
        self.stack = []

    # ------------------------------------------------------------ helpers
    def _add(self, sev: Severity, rule: str, title: str, offset: int | None, detail: str = "",
             references: tuple[str, ...] = (), **evidence: Any) -> RawFinding:
        f = RawFinding(sev, rule, title, offset, detail, evidence, references)
        self.findings.append(f)
        return f

    def _pop_mark(self) -> list[Any]:
        items = self.stack
        if not self.metastack:
            raise _Malformed("pop of a MARK that was never pushed")
        self.stack = self.metastack.pop()
        return items

    def _pop(self) -> Any:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack.pop()

    def _push(self, v: Any) -> None:
        self.stack.append(v)
        if len(self.stack) > MAX_STACK:
            raise _stack_bomb()

    def _memo_put(self, idx: int, v: Any) -> None:
        if idx < 0:
            raise _Malformed("negative memo index")
        if len(self.memo) >= MAX_MEMO and idx not in self.memo:
            raise LimitExceeded(f"more than {MAX_MEMO} memo entries")
        self.memo[idx] = v

    def _memo_get(self, idx: int) -> Any:
        try:
            return self.memo[idx]
        except KeyError:
            raise _Malformed(f"memo key {idx} was never stored") from None

    def _text(self, kind: str, n: int, off: int) -> Any:
        if n < 0:
            raise _Malformed("negative length")
        if n <= MAX_KEEP_STR:
            raw = self.r.read(n)
            if kind == "str":
                try:
                    return raw.decode("utf-8", "surrogatepass")
                except UnicodeDecodeError:
                    raise _Malformed("invalid UTF-8 in a string opcode") from None
            return raw
        if kind == "bytes" and n <= MAX_KEEP_BYTES and self.retained + n <= MAX_RETAINED:
            self.retained += n
            return self.r.read(n)
        start = self.r.offset
        self.r.skip(n)
        return Blob(kind, n, start)

    # ------------------------------------------------------------ global handling
    def _global(self, module: Any, name: Any, offset: int, how: str) -> Any:
        if not isinstance(module, str) or not isinstance(name, str):
            self._add(
                Severity.CRITICAL, "artifact.pickle.unresolvable-global",
                f"unresolvable global via {how}: operands are not strings", offset,
                "The module/name operands are not plain strings (type confusion or a computed "
                "name); the scanner cannot tell what would be imported, so it fails closed.",
                module=_short(module), name=_short(name),
            )
            return Opaque("unresolved global")
        if (len(module) > 1 << 16 or len(name) > 1 << 16 or not all(x.isidentifier() for x in module.split("."))
                or not all(x.isidentifier() for x in name.split("."))):
            raise _Malformed(f"invalid global name {module[:40]!r}.{name[:40]!r} (the load fails here)")
        if len(module) <= 256 and len(name) > 256 and "." in name:
            # a long protocol-4 attribute chain of valid identifiers: the loader resolves it step by step
            return self._global(Opaque(f"{module[:60]}"), Opaque(f"{name[:60]}..."), offset, how)
        if len(module) > 256 or len(name) > 256:
            raise _Malformed(f"invalid global name {module[:40]!r}.{name[:40]!r} (the load fails here)")
        verdict = classify_global(module, name, context=self.context)
        g = G(module, name, offset, verdict)
        key = g.key
        self.globals.setdefault(key, verdict.kind)
        if verdict.kind == "deny":
            g.draft = self._add(
                Severity.CRITICAL, "artifact.pickle.dangerous-global",
                f"dangerous global {key}", offset, verdict.reason,
                module=module, name=name, opcode=how, policy_rule=verdict.rule,
            )
        elif verdict.kind == "unknown":  # importing it runs code nobody reviewed: at least high
            g.draft = self._add(
                Severity.HIGH, "artifact.pickle.unknown-global",
                f"global not on the allowlist: {key}", offset, verdict.reason,
                module=module, name=name, opcode=how,
            )
        g.plain = g.draft is None and g.hook is None
        return g

    def _call(self, func: Any, args: Any, offset: int, how: str) -> Any:
        if isinstance(func, G):
            if func.plain:  # the common case: an allowlisted class/function with nothing to check
                return Call(func, args, offset)
            if func.draft is not None:
                calls = func.draft.evidence.setdefault("calls", [])
                if len(calls) < 8:
                    calls.append({"offset": offset, "opcode": how, "args": _short(args)})
            if func.hook is not None:
                return func.hook(self, func, args, offset)
            return Call(func, args, offset)
        if isinstance(func, Opaque) and func.what in ("unresolved global", "extension global"):
            return Opaque("call result")
        self._add(
            Severity.HIGH, "artifact.pickle.indirect-call",
            f"{how} calls {_short(func)}, not a resolved global", offset,
            "Calling an object that is not an imported global (a call result, a persistent "
            "object or a constant) is an indirection that model files never need.",
            callable=_short(func),
        )
        return Call(func, args, offset)

    def _nested(self, args: Any, offset: int, key: str) -> None:
        payload = args[0] if isinstance(args, tuple) and args else None
        data: bytes | None = None
        if isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, Blob) and self.fetch_blob is not None:
            data = self.fetch_blob(payload)
        if data is None or self.nested is None or self.depth >= MAX_NEST:
            self._add(
                Severity.HIGH, "artifact.pickle.nested-uninspectable",
                f"payload passed to {key} could not be inspected", offset,
                "Bytes are handed to a deserialiser but are not available statically "
                "(computed, too large, or nesting too deep).", loader=key, argument=_short(payload),
            )
            return
        for f in self.nested(data, self.depth + 1):
            f.title = f"nested in {key}@{offset}: {f.title}"
            f.evidence = {**f.evidence, "nested_offset": f.offset, "outer_offset": offset}
            f.offset = offset
            self.findings.append(f)

    def _tensor_bounds(self, args: Any, offset: int) -> None:
        if not isinstance(args, tuple) or len(args) < 4:
            return
        storage, soff, size, stride = args[:4]
        numel = None
        if isinstance(storage, Opaque) and isinstance(storage.pid, tuple) and len(storage.pid) >= 5:
            numel = storage.pid[4]
        ints = lambda t: isinstance(t, tuple) and all(type(x) is int for x in t)  # noqa: E731
        if type(soff) is not int or not ints(size) or not ints(stride) or len(size) != len(stride):
            return
        bad = soff < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride)
        extent = 0 if any(s == 0 for s in size) else soff + 1 + sum((a - 1) * b for a, b in zip(size, stride))
        if not bad and type(numel) is int and extent > numel:
            bad = True
        if bad:
            self._add(
                Severity.HIGH, "artifact.torch.tensor-bounds",
                "tensor view reaches outside its storage", offset,
                "A tensor's offset/size/stride address memory beyond its storage: a heap "
                "read/write gadget against torch.load(weights_only=True) (CVE-2026-24747 class).",
                storage_numel=numel, storage_offset=soff, size=list(size), stride=list(stride),
                references=("CVE-2025-32434", "CVE-2026-24747"),
            )

    #: interpret every opcode through its ``_DISPATCH`` handler (the reference path; the tests set
    #: it to check that the inline fast paths of :meth:`run` give identical results)
    general = False

    # ------------------------------------------------------------ main loop
    def run_general(self) -> None:
        """The reference interpreter: one handler call per opcode, arguments read through the reader."""
        r = self.r
        push = self._push
        while True:
            self.ops += 1
            if not self.ops & 0xFFF:
                self.budget.check()
            off = r.offset
            op = r.read1()
            if op == 0x2E:  # STOP
                if len(self.stack) != 1 or self.metastack:
                    raise _Malformed("STOP with a stack that does not hold exactly one value")
                self.complete = True
                return
            h = _DISPATCH.get(op)
            if h is None:
                raise _Malformed(f"invalid opcode 0x{op:02x}", off)
            h(self, off, push)

    def run(self) -> None:
        """Simulate from the reader's position to the pickle's STOP (or a failure).

        The hot opcodes are interpreted inline on the reader's buffer (``buf``/``pos`` locals, no
        per-opcode method calls); an opcode whose arguments are not all buffered, and every rare
        opcode, goes through its ``_DISPATCH`` handler with the reader synchronised first, so the
        two paths share one semantics (same values, findings, errors and error offsets).
        """
        if self.general:
            return self.run_general()
        r = self.r
        push = self._push
        memo = self.memo
        metastack = self.metastack
        stack = self.stack
        budget = self.budget
        on_build = self.on_build
        dispatch = _DISPATCH
        max_stack = MAX_STACK
        ops = self.ops
        buf = r.buf
        n = len(buf)
        base = r.base
        pos = r.pos  # -1 while a handler owns the reader (then r.pos is the truth)
        try:
            while True:
                ops += 1
                if not ops & 0xFFF:
                    budget.check()
                try:
                    op = buf[pos]
                except IndexError:  # buffer exhausted (pos == len(buf)): refill through the reader
                    r.pos = pos
                    pos = -1
                    op = r.read1()
                    buf = r.buf
                    n = len(buf)
                    base = r.base
                    pos = r.pos
                else:
                    pos += 1
                # --- inline fast paths, most frequent first (sklearn/joblib/torch pickles)
                if op == 0x68 and pos < n:  # BINGET
                    idx = buf[pos]
                    pos += 1
                    try:
                        stack.append(memo[idx])
                    except KeyError:
                        raise _Malformed(f"memo key {idx} was never stored") from None
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x94:  # MEMOIZE
                    if not stack:
                        raise _Malformed("MEMOIZE on an empty stack")
                    idx = len(memo)
                    if idx >= MAX_MEMO and idx not in memo:
                        raise LimitExceeded(f"more than {MAX_MEMO} memo entries")
                    memo[idx] = stack[-1]
                elif op == 0x4B and pos < n:  # BININT1
                    stack.append(buf[pos])
                    pos += 1
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x28:  # MARK
                    metastack.append(stack)
                    stack = self.stack = []
                    if len(metastack) > max_stack:
                        raise LimitExceeded("MARK nesting deeper than the bound (stack-depth bomb)")
                elif op == 0x62:  # BUILD
                    if not stack:
                        raise _Malformed("stack underflow")
                    state = stack.pop()
                    if not stack:
                        raise _Malformed("BUILD without a target")
                    t = stack[-1]
                    if isinstance(t, Call):
                        if t.state is None:
                            t.state = state
                        if isinstance(t.func, G):
                            if on_build is not None:  # may read from the stream (joblib arrays)
                                r.pos = pos
                                pos = -1
                                on_build(self, t, state, r.base + r.pos - 1)
                                stack = self.stack
                                buf = r.buf
                                n = len(buf)
                                base = r.base
                                pos = r.pos
                        else:
                            _mutate_target(self, t, base + pos - 1, "BUILD")
                    elif isinstance(t, (G, Opaque)):
                        _mutate_target(self, t, base + pos - 1, "BUILD")
                elif op == 0x7D:  # EMPTY_DICT
                    stack.append(Seq("dict"))
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x75:  # SETITEMS
                    if not metastack:
                        raise _Malformed("pop of a MARK that was never pushed")
                    items = stack
                    stack = self.stack = metastack.pop()
                    if len(items) % 2:
                        raise _Malformed("SETITEMS with an odd number of items")
                    if not stack:
                        raise _Malformed("SETITEMS without a target")
                    t = stack[-1]
                    if isinstance(t, Seq):
                        room = MAX_ITEMS - len(t.items)
                        if room > 0:
                            t.items.extend(zip(items[:2 * room:2], items[1:2 * room:2]))
                        t.n += len(items) >> 1
                    else:
                        _mutate_target(self, t, base + pos - 1, "SETITEMS")
                elif op == 0x29:  # EMPTY_TUPLE
                    stack.append(())
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x81 or op == 0x52:  # NEWOBJ, REDUCE
                    if len(stack) < 2:
                        raise _Malformed("stack underflow")
                    args = stack.pop()
                    stack[-1] = self._call(stack[-1], args, base + pos - 1, "NEWOBJ" if op == 0x81 else "REDUCE")
                elif op == 0x4E:  # NONE
                    stack.append(None)
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x88 or op == 0x89:  # NEWTRUE, NEWFALSE
                    stack.append(op == 0x88)
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x47 and pos + 8 <= n:  # BINFLOAT
                    stack.append(_F8_FROM(buf, pos)[0])
                    pos += 8
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x4D and pos + 2 <= n:  # BININT2
                    stack.append(buf[pos] | buf[pos + 1] << 8)
                    pos += 2
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x85:  # TUPLE1
                    if not stack:
                        raise _Malformed("stack underflow")
                    stack[-1] = (stack[-1],)
                elif op == 0x95 and pos + 8 <= n:  # FRAME (frames are only a buffering hint)
                    pos += 8
                elif op == 0x86:  # TUPLE2
                    if len(stack) < 2:
                        raise _Malformed("stack underflow")
                    b = stack.pop()
                    stack[-1] = (stack[-1], b)
                elif op == 0x87:  # TUPLE3
                    if len(stack) < 3:
                        raise _Malformed("stack underflow")
                    c = stack.pop()
                    b = stack.pop()
                    stack[-1] = (stack[-1], b, c)
                elif op == 0x4A and pos + 4 <= n:  # BININT
                    stack.append(_I4_FROM(buf, pos)[0])
                    pos += 4
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x71 and pos < n:  # BINPUT
                    idx = buf[pos]
                    pos += 1
                    if not stack:
                        raise _Malformed("BINPUT on an empty stack")
                    if len(memo) >= MAX_MEMO and idx not in memo:
                        raise LimitExceeded(f"more than {MAX_MEMO} memo entries")
                    memo[idx] = stack[-1]
                elif (op == 0x8C or op == 0x43) and pos < n and pos + 1 + buf[pos] <= n:
                    # SHORT_BINUNICODE / SHORT_BINBYTES: length <= 255 <= MAX_KEEP_STR, kept
                    end = pos + 1 + buf[pos]
                    raw = buf[pos + 1:end]
                    pos = end
                    if op == 0x8C:
                        try:
                            stack.append(raw.decode("utf-8", "surrogatepass"))
                        except UnicodeDecodeError:
                            raise _Malformed("invalid UTF-8 in a string opcode") from None
                    else:
                        stack.append(raw)
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif (op == 0x58 and pos + 4 <= n and (ln := _U4_FROM(buf, pos)[0]) <= MAX_KEEP_STR
                      and pos + 4 + ln <= n):  # BINUNICODE, short and fully buffered
                    raw = buf[pos + 4:pos + 4 + ln]
                    pos += 4 + ln
                    try:
                        stack.append(raw.decode("utf-8", "surrogatepass"))
                    except UnicodeDecodeError:
                        raise _Malformed("invalid UTF-8 in a string opcode") from None
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x65 or op == 0x61 or op == 0x73:  # APPENDS, APPEND, SETITEM
                    if op == 0x65:
                        if not metastack:
                            raise _Malformed("pop of a MARK that was never pushed")
                        values = stack
                        stack = self.stack = metastack.pop()
                        what = "APPENDS"
                    elif op == 0x61:
                        if not stack:
                            raise _Malformed("stack underflow")
                        values = [stack.pop()]
                        what = "APPEND"
                    else:
                        if len(stack) < 2:
                            raise _Malformed("stack underflow")
                        v = stack.pop()
                        values = [(stack.pop(), v)]
                        what = "SETITEM"
                    if not stack:
                        raise _Malformed(f"{what} without a target")
                    t = stack[-1]
                    if isinstance(t, Seq):
                        t.add(values)
                    else:
                        _mutate_target(self, t, base + pos - 1, what)
                elif op == 0x5D:  # EMPTY_LIST
                    stack.append(Seq("list"))
                    if len(stack) > max_stack:
                        raise _stack_bomb()
                elif op == 0x2E:  # STOP
                    if len(stack) != 1 or metastack:
                        raise _Malformed("STOP with a stack that does not hold exactly one value")
                    self.complete = True
                    return
                else:
                    # --- general path: a handler reads its arguments through the reader
                    off = base + pos - 1
                    h = dispatch.get(op)
                    if h is None:
                        raise _Malformed(f"invalid opcode 0x{op:02x}", off)
                    r.pos = pos
                    pos = -1
                    h(self, off, push)
                    stack = self.stack
                    buf = r.buf
                    n = len(buf)
                    base = r.base
                    pos = r.pos
        finally:
            self.ops = ops
            if pos >= 0:
                r.pos = pos


class _Malformed(Exception):
    def __init__(self, msg: str, offset: int | None = None) -> None:
        super().__init__(msg)
        self.offset = offset


# ---------------------------------------------------------------- opcode handlers
def _u(fmt: str) -> Callable[[bytes], int]:
    s = struct.Struct(fmt)
    return lambda b: s.unpack(b)[0]


_U4, _I4, _U8, _U2, _F8 = _u("<I"), _u("<i"), _u("<Q"), _u("<H"), _u(">d")
_U4_FROM, _I4_FROM, _F8_FROM = (struct.Struct(f).unpack_from for f in ("<I", "<i", ">d"))


def _hook_nested(s: PickleScan, func: G, args: Any, offset: int) -> Any:
    s._nested(args, offset, func.key)
    return Call(func, args, offset)


def _hook_codecs_encode(s: PickleScan, func: G, args: Any, offset: int) -> Any:
    """``_codecs.encode(text, "latin1")`` is how protocol 2/3 pickles spell bytes: evaluate it."""
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        enc = args[1] if len(args) > 1 else "utf-8"
        if isinstance(enc, str) and enc.replace("-", "").lower() in ("latin1", "iso88591"):
            try:
                return args[0].encode("latin-1")
            except UnicodeEncodeError:
                return Opaque("bytes")
    return Call(func, args, offset)


def _hook_tensor(s: PickleScan, func: G, args: Any, offset: int) -> Any:
    s._tensor_bounds(args, offset)
    return Call(func, args, offset)


def _call_hook(key: str) -> Callable[[PickleScan, G, Any, int], Any] | None:
    """What ``PickleScan._call`` does on a call of the global ``key`` beyond recording it (the one
    place that says so: the fast path's ``G.plain`` is derived from it), or ``None``."""
    if key in NESTED_LOADERS:
        return _hook_nested
    if key == "_codecs.encode":
        return _hook_codecs_encode
    if key.startswith("torch._utils._rebuild_tensor") or key == "torch._utils._rebuild_parameter":
        return _hook_tensor
    return None


def _stack_bomb() -> LimitExceeded:
    return LimitExceeded(f"pickle stack deeper than {MAX_STACK} items (stack-depth bomb)")


def _op_mark(s, off, push):
    s.metastack.append(s.stack)
    s.stack = []
    if len(s.metastack) > MAX_STACK:
        raise LimitExceeded("MARK nesting deeper than the bound (stack-depth bomb)")


def _op_pop(s, off, push):
    if s.stack:
        s.stack.pop()
    else:
        s._pop_mark()


def _op_pop_mark(s, off, push):
    s._pop_mark()


def _op_dup(s, off, push):
    if not s.stack:
        raise _Malformed("DUP on an empty stack")
    push(s.stack[-1])


_INT_CHARS = frozenset(b"0123456789+-_ \t\r\x0b\x0cL")
_FLOAT_CHARS = frozenset(b"0123456789+-_.eEinfatyINFATY \t\r\x0b\x0c")
_NAME_CHARS = (frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
               | frozenset(range(128, 256)))


def _long_line(s, prefix: bytes, allowed: frozenset[int], what: str) -> None:
    """A line longer than the scanner keeps: if its kept prefix already has a byte that the loader's
    parser rejects, the load fails here (malformed); else the value is unknown and scanning goes on."""
    if not allowed.issuperset(prefix):
        raise _Malformed(f"{what} argument is not valid (the load fails here)")


def _line_int(s, off, push):
    raw, long = s.r.readline_capped(4096)
    if long:
        _long_line(s, raw, _INT_CHARS, "INT/LONG")
        push(Opaque("integer"))
        return
    line = raw.strip()
    if line == b"00":
        push(False)
    elif line == b"01":
        push(True)
    else:
        try:
            push(int(line.rstrip(b"L") or b"x"))
        except ValueError:
            raise _Malformed("bad INT/LONG literal") from None


def _op_float(s, off, push):
    try:
        raw, long = s.r.readline_capped(4096)
        if long:
            _long_line(s, raw, _FLOAT_CHARS, "FLOAT")
            push(Opaque("float"))
            return
        push(float(raw))
    except ValueError:
        raise _Malformed("bad FLOAT literal") from None


def _op_binfloat(s, off, push):
    push(_F8(s.r.read(8)))


def _op_binint(s, off, push):
    push(_I4(s.r.read(4)))


def _op_binint1(s, off, push):
    push(s.r.read1())


def _op_binint2(s, off, push):
    push(_U2(s.r.read(2)))


def _op_long1(s, off, push):
    n = s.r.read1()
    push(int.from_bytes(s.r.read(n), "little", signed=True) if n else 0)


def _op_long4(s, off, push):
    n = _I4(s.r.read(4))
    if n < 0:
        raise _Malformed("negative LONG4 length")
    if n > 4096:
        s.r.skip(n)
        push(Opaque("huge int"))
    else:
        push(int.from_bytes(s.r.read(n), "little", signed=True) if n else 0)


def _op_none(s, off, push):
    push(None)


def _op_true(s, off, push):
    push(True)


def _op_false(s, off, push):
    push(False)


def _op_string(s, off, push):
    line, long = s.r.readline_capped(1 << 16)
    if long:
        if line[:1] not in (b"'", b'"'):
            raise _Malformed("STRING opcode argument must be quoted")
        push(Opaque("str"))
        return
    if len(line) < 2 or line[:1] not in (b"'", b'"') or line[-1:] != line[:1]:
        raise _Malformed("STRING opcode argument must be quoted")
    try:
        push(codecs.escape_decode(line[1:-1])[0].decode("latin-1"))
    except Exception:
        raise _Malformed("bad STRING escape") from None


def _op_unicode(s, off, push):
    line, long = s.r.readline_capped(1 << 16)
    if long:
        push(Opaque("str"))
        return
    try:
        push(line.decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise _Malformed("bad UNICODE literal") from None


def _as_str(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, Blob):
        v.kind = "str"
    return v


def _op_text(kind: str, width: int, s, off, push, *, signed: bool = False, latin1: bool = False) -> None:
    """A length-prefixed str/bytes opcode: the length is a ``width``-byte little-endian integer;
    ``latin1`` for the protocol 0-2 ``*BINSTRING`` opcodes, whose bytes load as a latin-1 ``str``."""
    n = s.r.read1() if width == 1 else int.from_bytes(s.r.read(width), "little", signed=signed)
    v = s._text(kind, n, off)
    push(_as_str(v) if latin1 else v)


def _op_next_buffer(s, off, push):
    push(Opaque("out-of-band buffer"))


def _op_readonly_buffer(s, off, push):
    if not s.stack:
        raise _Malformed("READONLY_BUFFER on an empty stack")


def _op_empty_list(s, off, push):
    push(Seq("list"))


def _op_empty_dict(s, off, push):
    push(Seq("dict"))


def _op_empty_set(s, off, push):
    push(Seq("set"))


def _op_empty_tuple(s, off, push):
    push(())


def _op_list(s, off, push):
    push(Seq("list", s._pop_mark()))


def _op_tuple(s, off, push):
    push(tuple(s._pop_mark()))


def _op_dict(s, off, push):
    items = s._pop_mark()
    if len(items) % 2:
        raise _Malformed("DICT with an odd number of items")
    push(Seq("dict", list(zip(items[::2], items[1::2]))))


def _op_frozenset(s, off, push):
    push(Seq("frozenset", s._pop_mark()))


def _op_tuple1(s, off, push):
    push((s._pop(),))


def _op_tuple2(s, off, push):
    b = s._pop()
    a = s._pop()
    push((a, b))


def _op_tuple3(s, off, push):
    c = s._pop()
    b = s._pop()
    a = s._pop()
    push((a, b, c))


def _mutate_target(s, target: Any, off: int, what: str) -> None:
    if isinstance(target, (G, Opaque)) or (isinstance(target, Call) and not isinstance(target.func, G)):
        s._add(Severity.HIGH, "artifact.pickle.global-mutation",
               f"{what} on {_short(target)}", off,
               "The pickle mutates an imported class/module or an unresolved object, which calls "
               "its methods (append/extend/__setitem__/__setstate__) with attacker data.",
               target=_short(target))


def _add_to_top(s, values: list, off: int, what: str) -> None:
    """APPEND(S)/SETITEM(S)/ADDITEMS: add to the container under the values, or flag the call of an
    object's methods when the target is not a plain container."""
    if not s.stack:
        raise _Malformed(f"{what} without a target")
    t = s.stack[-1]
    if isinstance(t, Seq):
        t.add(values)
    else:
        _mutate_target(s, t, off, what)


def _op_append(s, off, push):
    _add_to_top(s, [s._pop()], off, "APPEND")


def _op_appends(s, off, push):
    _add_to_top(s, s._pop_mark(), off, "APPENDS")


def _op_setitem(s, off, push):
    v = s._pop()
    k = s._pop()
    _add_to_top(s, [(k, v)], off, "SETITEM")


def _op_setitems(s, off, push):
    items = s._pop_mark()
    if len(items) % 2:
        raise _Malformed("SETITEMS with an odd number of items")
    _add_to_top(s, list(zip(items[::2], items[1::2])), off, "SETITEMS")


def _op_additems(s, off, push):
    _add_to_top(s, s._pop_mark(), off, "ADDITEMS")


def _memo_index(s, what: str) -> int:
    raw, long = s.r.readline_capped(64)
    if long:
        _long_line(s, raw, _INT_CHARS, what)
        raise LimitExceeded(f"{what} memo index longer than 64 bytes")
    try:
        return int(raw)
    except ValueError:
        raise _Malformed(f"bad {what} index") from None


def _op_get(s, off, push):
    push(s._memo_get(_memo_index(s, "GET")))


def _op_binget(s, off, push):
    push(s._memo_get(s.r.read1()))


def _op_long_binget(s, off, push):
    push(s._memo_get(_U4(s.r.read(4))))


def _put_top(s, idx: int, what: str) -> None:
    if not s.stack:
        raise _Malformed(f"{what} on an empty stack")
    s._memo_put(idx, s.stack[-1])


def _op_put(s, off, push):
    _put_top(s, _memo_index(s, "PUT"), "PUT")


def _op_binput(s, off, push):
    _put_top(s, s.r.read1(), "BINPUT")


def _op_long_binput(s, off, push):
    _put_top(s, _U4(s.r.read(4)), "LONG_BINPUT")


def _op_memoize(s, off, push):
    _put_top(s, len(s.memo), "MEMOIZE")


def _readline_str(s) -> Any:
    raw, long = s.r.readline_capped(1024)
    if long:
        _long_line(s, raw, _NAME_CHARS, "GLOBAL/INST")
        return Opaque("name longer than 1024 bytes")  # _global: unresolvable, critical
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("non-UTF-8 global name") from None


def _op_global(s, off, push):
    module = _readline_str(s)
    name = _readline_str(s)
    push(s._global(module, name, off, "GLOBAL"))


def _op_stack_global(s, off, push):
    name = s._pop()
    module = s._pop()
    push(s._global(module, name, off, "STACK_GLOBAL"))


def _op_inst(s, off, push):
    module = _readline_str(s)
    name = _readline_str(s)
    args = tuple(s._pop_mark())
    g = s._global(module, name, off, "INST")
    push(s._call(g, args, off, "INST"))


def _op_obj(s, off, push):
    items = s._pop_mark()
    if not items:
        raise _Malformed("OBJ without a class")
    push(s._call(items[0], tuple(items[1:]), off, "OBJ"))


def _op_ext(n: int, s, off, push):
    code = int.from_bytes(s.r.read(n), "little")
    s._add(Severity.CRITICAL, "artifact.pickle.unresolvable-global",
           f"extension-registry global (EXT{n} code {code})", off,
           "EXT opcodes name a global through copyreg's extension registry of the *loading* "
           "process; it cannot be resolved statically, so the scanner fails closed.", code=code)
    push(Opaque("extension global"))


def _op_call(how: str, s, off, push):
    """REDUCE (``func(*args)``) and NEWOBJ (``cls.__new__(cls, *args)``)."""
    args = s._pop()
    func = s._pop()
    push(s._call(func, args, off, how))


def _op_newobj_ex(s, off, push):
    kwargs = s._pop()
    args = s._pop()
    cls = s._pop()
    push(s._call(cls, (args, kwargs), off, "NEWOBJ_EX"))


def _op_build(s, off, push):
    state = s._pop()
    if not s.stack:
        raise _Malformed("BUILD without a target")
    t = s.stack[-1]
    if isinstance(t, Call):
        if t.state is None:
            t.state = state
        if s.on_build is not None and isinstance(t.func, G):
            s.on_build(s, t, state, off)
        if not isinstance(t.func, G):
            _mutate_target(s, t, off, "BUILD")
    elif isinstance(t, (G, Opaque)):
        _mutate_target(s, t, off, "BUILD")


def _op_persid(s, off, push):
    push(Opaque("persistent object", s.r.readline_capped(1024)[0]))


def _op_binpersid(s, off, push):
    push(Opaque("persistent object", s._pop()))


def _op_frame(s, off, push):
    s.r.read(8)


def _op_proto(s, off, push):
    p = s.r.read1()
    if p > 5:
        raise _Malformed(f"unsupported pickle protocol {p}")
    s.protocol = max(s.protocol, p)


_DISPATCH: dict[int, Callable] = {
    0x95: _op_frame, 0x80: _op_proto,
    ord("("): _op_mark, ord("0"): _op_pop, ord("1"): _op_pop_mark, ord("2"): _op_dup,
    ord("F"): _op_float, ord("G"): _op_binfloat, ord("I"): _line_int, ord("L"): _line_int,
    ord("J"): _op_binint, ord("K"): _op_binint1, ord("M"): _op_binint2,
    0x8A: _op_long1, 0x8B: _op_long4, ord("N"): _op_none, 0x88: _op_true, 0x89: _op_false,
    ord("S"): _op_string, ord("V"): _op_unicode,
    ord("T"): partial(_op_text, "bytes", 4, signed=True, latin1=True),
    ord("U"): partial(_op_text, "bytes", 1, latin1=True),
    ord("X"): partial(_op_text, "str", 4), 0x8C: partial(_op_text, "str", 1), 0x8D: partial(_op_text, "str", 8),
    ord("B"): partial(_op_text, "bytes", 4), ord("C"): partial(_op_text, "bytes", 1),
    0x8E: partial(_op_text, "bytes", 8), 0x96: partial(_op_text, "bytes", 8),  # BINBYTES8, BYTEARRAY8
    0x97: _op_next_buffer, 0x98: _op_readonly_buffer,
    ord("]"): _op_empty_list, ord("}"): _op_empty_dict, 0x8F: _op_empty_set, ord(")"): _op_empty_tuple,
    ord("l"): _op_list, ord("t"): _op_tuple, ord("d"): _op_dict, 0x91: _op_frozenset,
    0x85: _op_tuple1, 0x86: _op_tuple2, 0x87: _op_tuple3,
    ord("a"): _op_append, ord("e"): _op_appends, ord("s"): _op_setitem, ord("u"): _op_setitems,
    0x90: _op_additems,
    ord("g"): _op_get, ord("h"): _op_binget, ord("j"): _op_long_binget,
    ord("p"): _op_put, ord("q"): _op_binput, ord("r"): _op_long_binput, 0x94: _op_memoize,
    ord("c"): _op_global, 0x93: _op_stack_global, ord("i"): _op_inst, ord("o"): _op_obj,
    0x82: partial(_op_ext, 1), 0x83: partial(_op_ext, 2), 0x84: partial(_op_ext, 4),
    ord("R"): partial(_op_call, "REDUCE"), 0x81: partial(_op_call, "NEWOBJ"), 0x92: _op_newobj_ex, ord("b"): _op_build,
    ord("P"): _op_persid, ord("Q"): _op_binpersid,
}


@dataclass
class StreamResult:
    findings: list[RawFinding]
    globals: dict[str, str]
    pickles: int
    ops: int
    protocol: int
    complete: bool
    is_pickle: bool
    joblib: bool = False
    end_offset: int = 0


def scan_pickle_stream(
    reader: Reader,
    budget: Budget,
    *,
    depth: int = 0,
    nested: Callable[[bytes, int], list[RawFinding]] | None = None,
    on_build: Callable[[PickleScan, Call, Any, int], None] | None = None,
    fetch_blob: Callable[[Blob], bytes | None] | None = None,
    max_pickles: int = MAX_PICKLES,
    probe: bool = False,
    probe_named: bool = False,
    context: str = "pickle",
) -> StreamResult:
    """Scan consecutive pickles from ``reader`` until the data ends or stops being a pickle.

    The first pickle must parse; a failure there is *malformed* (with every finding up to the
    failing opcode kept: a "broken" pickle still runs its payload before the error). Data after a
    complete pickle is scanned as further pickles (several ``pickle.dump`` calls into one file,
    legacy ``torch.save``); when it does not parse it is reported as trailing data.
    ``probe`` treats a first pickle that fails before reaching any global (so before anything could
    run) as "not a pickle"; a pickle stopped by a time or size bound never is (it is inconclusive).
    Data after a complete pickle is always probe-parsed, whatever its first byte. ``probe_named``
    (for bytes no loader unpickles, such as raw tensor storages: only defence in depth) counts the
    data as a pickle only when it reaches a *named* global (``GLOBAL``/``STACK_GLOBAL``/``INST``) or a
    bound: random float data starts with an ``EXT`` or call opcode far too often to count those.
    ``context`` is ``"torchscript"`` for pickles inside a TorchScript archive, which torch reads with
    its C++ unpickler (see :func:`~modelshield.artifacts.policy.classify_global`).
    """
    findings: list[RawFinding] = []
    allglobals: dict[str, str] = {}
    ops = 0
    proto = 0
    count = 0
    complete = True
    joblib = False
    while count < max_pickles:
        start = reader.offset
        if count and reader.at_eof():
            break
        ps = PickleScan(reader, budget, depth=depth, nested=nested, on_build=on_build, fetch_blob=fetch_blob,
                        context=context)
        err: Exception | None = None
        gc_was = gc.isenabled()
        gc.disable()  # the simulation allocates many small acyclic objects; GC passes only cost time
        try:
            ps.run()
        except (_Malformed, Truncated, LimitExceeded) as exc:
            err = exc
        except RecursionError:  # pragma: no cover - defensive
            err = LimitExceeded("recursion bound")
        finally:
            ps.release()  # free the value graph by refcount first: else re-enabling the collector
            if gc_was:    # makes the next allocation pay for a pass over every freed object
                gc.enable()
        ops += ps.ops
        proto = max(proto, ps.protocol)
        findings.extend(ps.findings)
        for k, v in ps.globals.items():
            allglobals.setdefault(k, v)
        joblib = joblib or "joblib" in ps.flags
        count += 1
        if err is None:
            continue
        where = getattr(err, "offset", None)
        where = reader.offset if where is None else where
        # nothing can run before the first global/finding
        ran_code = bool(ps.globals) if probe_named else bool(ps.globals or ps.findings)
        if isinstance(err, LimitExceeded):
            # a bound hit is never "not a pickle": the probe did not finish, so nothing is known
            pass
        elif count == 1 and probe and not ran_code:
            return StreamResult([], {}, 0, ops, proto, False, False)
        elif count > 1 and not ran_code:
            # data after a complete pickle that fails before any global: ``pickle.load`` never
            # reads it, and a second load of it would fail before running anything
            findings.append(RawFinding(
                Severity.LOW, "artifact.pickle.trailing-data",
                "non-pickle data after the last pickle", start,
                f"Bytes follow the pickle stream and do not parse as a pickle ({err}); "
                "they were probe-parsed and reach no global.",
            ))
            break
        if isinstance(err, LimitExceeded):
            findings.append(RawFinding(
                Severity.HIGH, "artifact.limit-exceeded", f"scan bound hit: {err}", where,
                "The scan stopped at a safety bound; the rest of the file was not analysed.",
            ))
            complete = False
        else:
            findings.append(RawFinding(
                Severity.HIGH, "artifact.malformed", f"pickle stream is malformed: {err}", where,
                "The stream fails to parse. Loaders execute every opcode before the failing one, so "
                "findings above still apply (the 'broken pickle' technique), and the remainder was "
                "not analysed.", {"pickle_index": count - 1, "pickle_start": start},
            ))
            complete = False
        break
    if probe_named and not allglobals and not any(f.rule == "artifact.limit-exceeded" for f in findings):
        return StreamResult([], {}, 0, ops, proto, False, False)
    return StreamResult(findings, allglobals, count, ops, proto, complete, True, joblib, reader.offset)
