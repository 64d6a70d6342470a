"""Output files that are validated up front, written atomically and durably, and never clobbered silently.

The one atomic-write path of the project: a temp file in the target's folder, written, ``fsync``-ed, renamed
over the target, then the folder ``fsync``-ed (so the rename survives a crash); mode 0600 where the file holds
a secret. Reports, keys, the key store, encryption outputs and the gateway's state all go through it."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from modelshield.errors import FormatError, InputNotFoundError, OutputError, UserError

__all__ = ["AtomicOutput", "check_output_path", "check_outputs", "file_sha256", "fsync_dir", "input_file",
           "private_dir", "replace_private_file", "same_file", "write_bytes_safely", "write_files_safely", "write_json",
           "write_text_safely"]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in ``chunk``-byte blocks (memory does not grow with the file)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_output_path(path: str | Path, force: bool = False) -> Path:
    """Validate an output path up front (before any work): it must not exist unless ``force``,
    and its folder must exist and be writable."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"output {p} is a directory; give a file name")
    if p.exists() and not force:
        raise OutputError.exists(p)
    parent = p.parent  # "." for a bare file name: never empty
    if not parent.is_dir():
        raise OutputError(f"cannot write {p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {p}: folder {parent} is not writable")
    return p


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file: the same resolved path, or one file reached through a
    link (hard or symbolic). A path that cannot be examined is not the same file."""
    pa, pb = Path(a), Path(b)
    try:
        return pa.resolve() == pb.resolve() or (pa.exists() and pb.exists() and os.path.samefile(pa, pb))
    except OSError:
        return False


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Sequence[object], force: bool = False) -> None:
    """Validate a command's report paths before any work: each one writable (:func:`check_output_path`),
    no two the same file, and none of them one of the command's ``inputs`` -- not even with ``--force``,
    which allows replacing an old report, never the model or data being examined."""
    seen: dict[Path, str] = {}
    for flag, p in outputs.items():
        if p is None:
            continue
        check_output_path(p, force)
        r = Path(p).resolve()
        if r in seen:
            raise UserError(f"{seen[r]} and {flag} must name different files")
        seen[r] = flag
    for x in inputs:
        if x is None or "://" in str(x):
            continue
        src = Path(str(x))
        for r, flag in seen.items():
            if same_file(r, src):
                raise UserError(f"{flag} {src} is also an input: the report would replace it; choose another path")


def input_file(path: str | Path, what: str, on_folder: str) -> Path:
    """An input that must be a regular file: missing -> :class:`InputNotFoundError` ("<what> file not found");
    a folder -> :class:`FormatError` (``on_folder`` says what to do); a pipe, device or socket ->
    :class:`FormatError` (it would block or cannot be read twice)."""
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"{what} file not found: {p}")
    if p.is_dir():
        raise FormatError(f"{p} is a directory{on_folder}")
    if not p.is_file():
        raise FormatError(f"{p} is not a regular file (a pipe, device or socket); save the {what} to a file")
    return p


def private_dir(path: str | Path, what: str = "state directory") -> Path:
    """Create ``path`` and its parents (mode 0700); a path that cannot be a directory (a file in the way,
    no permission, a read-only file system) is one clear :class:`OutputError` (exit 2), not a crash."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise OutputError(f"cannot create the {what} {p}: {exc.strerror or type(exc).__name__}") from None
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_safely(path: str | Path, data: bytes, force: bool = False, *, private: bool = False) -> Path:
    """Write atomically (temp file + rename in the same folder); never leaves a half-written file
    and never replaces an existing file unless ``force``."""
    return write_files_safely([(path, data)], force, private=private)[0]


def write_files_safely(files: Sequence[tuple[str | Path, bytes]], force: bool = False, *,
                       private: bool = False) -> list[Path]:
    """Write several files all or nothing: every one goes to a temp file beside its target first, and only
    when all of them are written are they renamed into place (a report set is never left half written).
    ``private``: mode 0600 (keys); otherwise the umask's (reports are ordinary files)."""
    targets = [check_output_path(p, force) for p, _ in files]
    if not targets:
        return []
    temps: list[str] = []
    p = targets[0]
    try:
        for p, (_, data) in zip(targets, files):
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:200]}.", dir=p.parent)
            temps.append(tmp)
            os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())  # mkstemp makes 0600
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if not force:
            for p in targets:
                if p.exists():
                    raise OutputError.exists(p)
        for p, tmp in zip(targets, temps):
            os.replace(tmp, p)
        for folder in {t.parent for t in targets}:
            fsync_dir(folder)
    except OSError as exc:  # no permission, a read-only or special file system, a name too long
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {p}: {exc.strerror or type(exc).__name__}") from None
    except BaseException:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise
    return targets


def replace_private_file(path: Path, data: bytes, *, prefix: str = ".tmp.") -> None:
    """Replace ``path`` durably with ``data`` at mode 0600 (state the gateway keeps: keys, defence state):
    a temp file beside it, fsynced, then renamed over it; the temp file never outlives a failure."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory: the data itself is already synced
        pass
    finally:
        os.close(fd)


class AtomicOutput:
    """The streaming form of the atomic write (large outputs written chunk by chunk): ``with
    AtomicOutput(path, force) as fh: fh.write(...)`` writes a hidden ``.part`` temp file in the destination's
    folder, fsyncs it, renames it onto the destination and fsyncs the folder on success; deletes it on failure."""

    def __init__(self, path: str | Path, force: bool) -> None:
        self.path = Path(path)
        self.force = force
        if self.path.is_dir():
            raise OutputError(f"output {self.path} is a directory; give a file name")
        if self.path.exists() and not force:
            raise OutputError.exists(self.path)
        parent = self.path.parent  # "." for a bare file name: never empty
        if not parent.is_dir():
            raise OutputError(f"cannot write {self.path}: folder {parent} does not exist")
        self._parent = parent

    def __enter__(self) -> BinaryIO:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self._parent)
        except OSError as exc:
            raise OutputError(f"cannot write in {self._parent}: {exc.strerror}") from None
        self.tmp = Path(tmp)
        self.fh = os.fdopen(fd, "wb")
        return self.fh  # type: ignore[return-value]

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
            self.fh.close()
            if exc_type is None:
                if not self.force and self.path.exists():
                    raise OutputError.exists(self.path)
                os.replace(self.tmp, self.path)
                fsync_dir(self._parent)
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


def write_text_safely(path: str | Path, text: str, force: bool = False) -> Path:
    return write_bytes_safely(path, text.encode("utf-8"), force)


def write_json(path: str | Path, obj: Any, force: bool = False) -> Path:
    return write_text_safely(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", force)
