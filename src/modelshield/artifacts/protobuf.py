"""A minimal, streaming protobuf wire-format walker (no generated code, no payload reads).

Length-delimited fields are yielded as ``(start, length)`` spans of the underlying seekable file;
the caller reads the few small ones it needs (names, op types, paths) and recurses into messages,
so tensor payloads (``raw_data``) are skipped by seeking, never read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from modelshield.artifacts._io import Budget
from modelshield.artifacts.pickle_scan import _Malformed

__all__ = ["Walker"]

MAX_DEPTH = 32


class Walker:
    """Iterate the fields of a message lying at ``[start, end)`` of ``fh``."""

    def __init__(self, fh: BinaryIO, size: int, budget: Budget) -> None:
        self.fh, self.size, self.budget = fh, size, budget
        self.steps = 0

    def _varint(self, buf: bytes, i: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            if i >= len(buf):
                raise _Malformed("truncated varint")
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value, i
            shift += 7
            if shift > 63:
                raise _Malformed("varint longer than 10 bytes")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """Yield ``(field, wire_type, value_or_start, length)``; length is -1 for scalars."""
        if end > self.size or start < 0 or start > end:
            raise _Malformed("protobuf span outside the file")
        pos = start
        while pos < end:
            self.steps += 1
            if not self.steps & 0x3FF:
                self.budget.check()
            self.fh.seek(pos)
            buf = self.fh.read(min(20, end - pos))
            key, i = self._varint(buf, 0)
            field, wt = key >> 3, key & 7
            if field == 0:
                raise _Malformed("protobuf field number 0")
            if wt == 0:
                v, i = self._varint(buf, i)
                pos += i
                yield field, wt, v, -1
            elif wt == 1:
                pos += i + 8
                yield field, wt, 0, -1
            elif wt == 5:
                pos += i + 4
                yield field, wt, 0, -1
            elif wt == 2:
                n, i = self._varint(buf, i)
                s = pos + i
                if s + n > end:
                    raise _Malformed(f"protobuf field {field} declares {n} bytes past its message")
                pos = s + n
                yield field, wt, s, n
            else:
                raise _Malformed(f"unsupported protobuf wire type {wt}")
        if pos != end:
            raise _Malformed("protobuf message overruns its span")

    def read(self, start: int, n: int, limit: int = 1 << 16) -> bytes:
        if n > limit:
            raise _Malformed(f"protobuf string of {n} bytes exceeds the {limit}-byte bound")
        self.fh.seek(start)
        return self.fh.read(n)

    def text(self, start: int, n: int, limit: int = 1 << 16) -> str:
        return self.read(start, n, limit).decode("utf-8", "replace")
