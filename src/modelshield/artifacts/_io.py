"""Bounded, streaming byte readers for the scanner (no payload is ever read whole)."""

from __future__ import annotations

import io
import lzma
import time
import zlib
from typing import BinaryIO

__all__ = ["Budget", "InflateStream", "LimitExceeded", "RangeFile", "Reader", "Truncated"]

CHUNK = 1 << 16
SMALL_CHUNK = 1 << 12


class Truncated(Exception):
    """The stream ended before a declared length was satisfied."""


class LimitExceeded(Exception):
    """A time / size / depth bound was hit; the file is inconclusive."""


class Budget:
    """A wall-clock deadline (``clock`` injectable for tests) shared by all readers of one scan."""

    def __init__(self, seconds: float = 60.0, clock=time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + seconds
        self.seconds = seconds

    def check(self) -> None:
        if self.clock() > self.deadline:
            raise LimitExceeded(f"scan exceeded its {self.seconds:g} s time bound")


class RangeFile(io.RawIOBase):
    """A read-only window ``[start, start+length)`` of a seekable file."""

    def __init__(self, fh: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self.fh, self.start, self.length, self.pos = fh, start, max(0, length), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        left = self.length - self.pos
        if n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        self.fh.seek(self.start + self.pos)
        data = self.fh.read(n)
        self.pos += len(data)
        return data

    def readinto(self, b) -> int:  # pragma: no cover - RawIOBase protocol
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class InflateStream(io.RawIOBase):
    """Streams a raw-deflate (zip method 8) or zlib member with a hard cap on output bytes."""

    def __init__(self, fh: BinaryIO, *, wbits: int = -15, max_out: int = 1 << 34) -> None:
        super().__init__()
        self.fh = fh
        self.d = zlib.decompressobj(wbits)
        self.pending = b""
        self.out = 0
        self.max_out = max_out
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = CHUNK
        parts: list[bytes] = []
        got = 0
        while got < n:
            if self.pending:
                piece = self.pending[: n - got]
                self.pending = self.pending[len(piece):]
            elif self.eof:
                break
            else:
                if self.d.unconsumed_tail:
                    src = self.d.unconsumed_tail
                else:
                    src = self.fh.read(CHUNK)
                    if not src:
                        tail = self.d.flush()
                        self.eof = True
                        self.pending = tail
                        continue
                try:
                    piece = self.d.decompress(src, max(n - got, CHUNK))
                except zlib.error as exc:
                    raise Truncated(f"corrupt deflate stream: {exc}") from None
                if self.d.eof:
                    self.eof = True
            self.out += len(piece)
            if self.out > self.max_out:
                raise LimitExceeded(f"decompressed data exceeds {self.max_out} bytes (decompression bomb)")
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)


class Reader:
    """A buffered forward reader over a file object. ``offset`` counts bytes consumed."""

    __slots__ = ("base", "budget", "buf", "chunk", "end", "fh", "pos", "seekable", "size", "start")

    def __init__(self, fh: BinaryIO, budget: Budget, *, size: int | None = None) -> None:
        self.fh = fh
        self.buf = b""
        self.pos = 0
        self.budget = budget
        try:
            self.seekable = bool(fh.seekable())
        except Exception:
            self.seekable = False
        self.start = fh.tell() if self.seekable else 0
        self.base = 0  # stream offset of buf[0]
        self.size = size  # remaining size from start, when known
        self.chunk = SMALL_CHUNK  # grows while reading sequentially, shrinks after a skip
        self.end: int | None = None  # fh's end position, found by the first seeking skip

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self, need: int) -> None:
        avail = len(self.buf) - self.pos
        if avail >= need:
            return
        chunks = [self.buf[self.pos:]]
        have = avail
        while have < need:
            try:
                piece = self.fh.read(max(self.chunk, need - have))
                self.chunk = min(self.chunk * 2, CHUNK)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
                raise Truncated(f"corrupt or truncated stream: {exc}") from None
            if not piece:
                break
            chunks.append(piece)
            have += len(piece)
        self.base += self.pos
        self.buf = b"".join(chunks)
        self.pos = 0

    def read(self, n: int) -> bytes:
        if n > len(self.buf) - self.pos:
            self._fill(n)
            if n > len(self.buf) - self.pos:
                self.pos = len(self.buf)
                raise Truncated(f"stream ends before {n} declared bytes")
        out = self.buf[self.pos: self.pos + n]
        self.pos += n
        return out

    def read1(self) -> int:
        if self.pos >= len(self.buf):
            self._fill(1)
            if not self.buf:
                raise Truncated("unexpected end of stream")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def peek(self, n: int = 1) -> bytes:
        self._fill(n)
        return self.buf[self.pos: self.pos + n]

    def at_eof(self) -> bool:
        return not self.peek(1)

    def readline(self, limit: int = 1 << 16) -> bytes:
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                if i - self.pos > limit:
                    raise LimitExceeded(f"text line longer than {limit} bytes")
                out = self.buf[self.pos: i]
                self.pos = i + 1
                return out
            if len(self.buf) - self.pos > limit:
                raise LimitExceeded(f"text line longer than {limit} bytes")
            before = len(self.buf) - self.pos
            self._fill(before + CHUNK)
            if len(self.buf) - self.pos == before:
                raise Truncated("unterminated text line")

    def readline_capped(self, limit: int) -> tuple[bytes, bool]:
        """The next line (without its newline) if it is at most ``limit`` bytes, else its first ``limit``
        bytes and True: the rest of the line is consumed, whatever its length, without being kept (the
        unpickler reads lines of any length, so an opcode argument may not be cut short)."""
        try:
            return self.readline(limit), False
        except LimitExceeded:
            pass
        prefix = self.buf[self.pos: self.pos + limit]
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                self.pos = i + 1
                return prefix, True
            self.pos = len(self.buf)
            self.budget.check()
            self._fill(1)
            if self.pos >= len(self.buf):
                raise Truncated("unterminated text line")

    def remaining_known(self) -> int | None:
        if self.size is None:
            return None
        return self.size - self.offset

    def skip(self, n: int) -> None:
        """Skip ``n`` bytes without keeping them (seek when possible, else read in chunks)."""
        if n < 0:
            raise Truncated("negative length")
        avail = len(self.buf) - self.pos
        if n <= avail:
            self.pos += n
            return
        rem = self.remaining_known()
        if rem is not None and n > rem:
            raise Truncated(f"declared length {n} runs past the end of the data ({rem} bytes left)")
        n -= avail
        self.base += len(self.buf)
        self.buf, self.pos = b"", 0
        self.chunk = SMALL_CHUNK
        if self.seekable:
            here = self.fh.tell()
            end = self.end
            if end is None:
                end = self.end = self.fh.seek(0, 2)
            if here + n > end:
                self.fh.seek(end)
                self.base += end - here
                raise Truncated(f"declared length runs {here + n - end} bytes past the end of the data")
            self.fh.seek(here + n)
            self.base += n
            return
        while n > 0:
            self.budget.check()
            piece = self.fh.read(min(n, 1 << 20))
            if not piece:
                raise Truncated("stream ends inside a skipped payload")
            n -= len(piece)
            self.base += len(piece)
