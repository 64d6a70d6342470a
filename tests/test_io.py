"""The one atomic-write path (issue 14.7): durable (the file and its folder are fsynced), atomic, never
clobbering without ``force``, mode 0600 for secrets; library errors carry a neutral message and a CLI hint."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelshield import _io
from modelshield.errors import OutputError


def test_writes_fsync_the_file_and_its_folder_before_and_after_the_rename(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(a, b) -> None:
        calls.append("rename")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    _io.write_bytes_safely(tmp_path / "a.json", b"{}")
    assert calls == ["file", "rename", "dir"]
    calls.clear()
    _io.replace_private_file(tmp_path / "state", b"s")
    assert calls == ["file", "rename", "dir"]
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o600


def test_private_files_are_0600_and_reports_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        key = _io.write_bytes_safely(tmp_path / "k.key", b"secret", private=True)
        rep = _io.write_bytes_safely(tmp_path / "r.html", b"<html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(rep.stat().st_mode) == 0o644


def test_an_existing_file_is_kept_and_the_error_is_neutral_with_a_cli_hint(tmp_path):
    p = tmp_path / "r.json"
    p.write_text("precious")
    with pytest.raises(OutputError) as err:
        _io.write_json(p, {"a": 1})
    assert str(err.value) == f"output {p} already exists"
    assert err.value.cli_message() == f"output {p} already exists; pass --force to overwrite it"
    assert p.read_text() == "precious"
    assert not [x for x in tmp_path.iterdir() if x.name != "r.json"]  # no temp file left behind
    _io.write_json(p, {"a": 1}, force=True)
    assert '"a": 1' in p.read_text()


def test_a_failed_batch_leaves_nothing_half_written(tmp_path):
    (tmp_path / "b.txt").write_text("old")
    with pytest.raises(OutputError):
        _io.write_files_safely([(tmp_path / "a.txt", b"A"), (tmp_path / "b.txt", b"B")])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b.txt"] and (tmp_path / "b.txt").read_text() == "old"


def test_fsync_dir_tolerates_a_folder_it_cannot_open(tmp_path):
    _io.fsync_dir(tmp_path / "missing")  # no error: nothing to make durable


def test_one_number_formatter_reads_the_same_everywhere():
    import numpy as np

    from modelshield._format import MISSING, fmt_value

    assert [fmt_value(x) for x in (None, float("nan"), float("inf"), np.float32("nan"))] == [MISSING] * 4
    assert fmt_value(True) == "yes" and fmt_value(np.int64(7)) == "7" and fmt_value(3) == "3"
    assert fmt_value(0.1234567) == "0.123" and fmt_value(0.5, 4, trim=True) == "0.5" and fmt_value(0.5) == "0.500"
    assert fmt_value(1e-5) == "1.00e-05" and fmt_value(2.5e7) == "2.50e+07" and fmt_value(12345.678) == "12,345.7"
    assert fmt_value([0.5, None], trim=True) == "0.5, n/a" and fmt_value({"a": 1.0}, trim=True) == "a: 1"
    assert fmt_value(list(range(13))).endswith(" …")


@pytest.mark.parametrize("text, shape", [("30", (30,)), ("1,8,8", (1, 8, 8)), ("1x8x8", (1, 8, 8)), ("", None)])
def test_one_shape_parser(text, shape):
    from modelshield.cli._common import parse_shape

    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["a,b", "0,8", "-1", ","])
def test_a_bad_shape_is_one_usage_error(text):
    from modelshield.cli._common import parse_shape
    from modelshield.errors import UserError

    with pytest.raises(UserError, match="bad --input-shape"):
        parse_shape(text)


# -- the writer's contract, pinned (mutation testing of _io: scripts/mutation.sh io) -------------------------


def _capture_replace(monkeypatch) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    real = os.replace

    def replace(a, b) -> None:
        seen.append((str(a), str(b)))
        real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    return seen


@pytest.mark.parametrize("how", ["bytes", "files", "private_file", "stream"])
def test_the_temp_file_is_hidden_beside_its_target_and_named_after_it(tmp_path, monkeypatch, how):
    target = tmp_path / "sub" / "report.json"
    target.parent.mkdir()
    seen = _capture_replace(monkeypatch)
    if how == "bytes":
        _io.write_bytes_safely(target, b"x")
    elif how == "files":
        _io.write_files_safely([(target, b"x")])
    elif how == "private_file":
        _io.replace_private_file(target, b"x", prefix=".report.json.")
    else:
        with _io.AtomicOutput(target, force=False) as fh:
            fh.write(b"x")
    ((tmp, dst),) = seen
    assert dst == str(target) and os.path.dirname(tmp) == str(target.parent)  # same folder: an atomic rename
    assert os.path.basename(tmp).startswith(".report.json.")
    assert target.read_bytes() == b"x" and sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_a_very_long_name_still_gets_a_temp_file(tmp_path):
    target = tmp_path / ("r" * 240 + ".json")
    _io.write_bytes_safely(target, b"x")
    assert target.read_bytes() == b"x"


def test_a_bare_file_name_is_written_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _io.check_output_path("out.json") == Path("out.json")
    _io.write_bytes_safely("out.json", b"x")
    _io.replace_private_file(Path("state.json"), b"s")
    assert (tmp_path / "out.json").read_bytes() == b"x" and (tmp_path / "state.json").read_bytes() == b"s"


def test_defaults_never_overwrite_and_are_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        (p,) = _io.write_files_safely([(tmp_path / "a.txt", b"a")])
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        for write in (lambda: _io.write_files_safely([(p, b"b")]), lambda: _io.write_bytes_safely(p, b"b"),
                      lambda: _io.write_text_safely(p, "b"), lambda: _io.check_output_path(p)):
            with pytest.raises(OutputError, match="already exists"):
                write()
        assert p.read_bytes() == b"a"
    finally:
        os.umask(old)


def test_output_errors_name_the_path(tmp_path):
    with pytest.raises(OutputError, match=f"output {tmp_path} is a directory; give a file name"):
        _io.check_output_path(tmp_path)
    with pytest.raises(OutputError, match=f"output {tmp_path} is a directory; give a file name"):
        _io.AtomicOutput(tmp_path, force=True)
    missing = tmp_path / "nope" / "x.json"
    with pytest.raises(OutputError, match=r"folder .*nope does not exist"):
        _io.check_output_path(missing)


def test_an_os_error_during_the_write_is_one_output_error_and_leaves_nothing(tmp_path, monkeypatch):
    def failing_replace(a, b) -> None:
        os.unlink(a)  # e.g. a cleaner removed the temp file first: the cleanup must still not fail
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"cannot write .*a\.txt: Permission denied"):
        _io.write_bytes_safely(tmp_path / "a.txt", b"a")
    with pytest.raises(PermissionError):
        _io.replace_private_file(tmp_path / "s.json", b"s")
    assert list(tmp_path.iterdir()) == []


def test_an_os_error_without_strerror_names_its_type(tmp_path, monkeypatch):
    def failing_replace(a, b) -> None:
        raise OSError()

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"cannot write .*a\.txt: OSError$"):
        _io.write_bytes_safely(tmp_path / "a.txt", b"a")
    assert list(tmp_path.iterdir()) == []


def test_write_json_is_indented_ordered_and_takes_paths(tmp_path):
    p = _io.write_json(tmp_path / "r.json", {"b": 1, "a": [1, 2], "p": Path("x/y")})
    assert p.read_text() == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ],\n  "p": "x/y"\n}\n'
    t = _io.write_text_safely(tmp_path / "t.txt", "é")
    assert t.read_bytes() == "é".encode()


def test_file_sha256_streams_any_size(tmp_path):
    import hashlib

    for n in (0, 1, (1 << 20) + 3):
        f = tmp_path / f"f{n}"
        f.write_bytes(os.urandom(n))
        assert _io.file_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest()
        assert _io.file_sha256(f, chunk=7) == hashlib.sha256(f.read_bytes()).hexdigest()


def test_check_outputs_refuses_an_input_and_two_flags_on_one_file(tmp_path):
    from modelshield.errors import UserError

    model = tmp_path / "model.pkl"
    model.write_bytes(b"m")
    with pytest.raises(UserError, match=r"--out .*model\.pkl is also an input"):
        _io.check_outputs({"--out": model}, [model], force=True)
    with pytest.raises(UserError, match="--json and --sarif must name different files"):
        _io.check_outputs({"--json": tmp_path / "r", "--sarif": tmp_path / "r"}, [])
    _io.check_outputs({"--out": tmp_path / "new.html", "--json": None}, [None, "http://x/model", model])


def test_input_file_and_private_dir(tmp_path):
    from modelshield.errors import FormatError, InputNotFoundError

    with pytest.raises(InputNotFoundError, match=r"^model file not found: "):
        _io.input_file(tmp_path / "none", "model", "; pass the model file inside it")
    with pytest.raises(FormatError, match=r"is a directory; pass the model file inside it$"):
        _io.input_file(tmp_path, "model", "; pass the model file inside it")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match=r"not a regular file \(a pipe, device or socket\); save the data to a file"):
        _io.input_file(fifo, "data", "")
    f = tmp_path / "ok.csv"
    f.write_text("a\n")
    assert _io.input_file(str(f), "data", "") == f
    d = _io.private_dir(tmp_path / "a" / "b")
    assert d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o700
    with pytest.raises(OutputError, match=r"cannot create the state directory .*ok\.csv"):
        _io.private_dir(f / "sub")


def test_check_outputs_sees_links_skips_urls_and_missing_inputs(tmp_path):
    from modelshield.errors import UserError

    model = tmp_path / "model.pkl"
    model.write_bytes(b"m")
    link = tmp_path / "same.pkl"
    os.link(model, link)
    with pytest.raises(UserError, match="is also an input"):  # another name of the same file
        _io.check_outputs({"--out": link}, [None, "https://host/model", tmp_path / "missing.csv", model], force=True)
    # inputs that are URLs or missing files come first and do not stop the check of the ones after them
    with pytest.raises(UserError, match="is also an input"):
        _io.check_outputs({"--json": tmp_path / "r.json", "--out": link}, [None, "s3://b/k", model], force=True)
    _io.check_outputs({"--out": tmp_path / "new.html"}, [model, tmp_path / "missing.csv"])


def test_private_dir_accepts_an_existing_folder_and_names_an_os_error(tmp_path, monkeypatch):
    d = _io.private_dir(tmp_path / "s")
    assert _io.private_dir(d) == d  # already there: fine

    def mkdir(self, *a, **k) -> None:
        raise OSError()

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(OutputError, match=r"cannot create the key folder .*x: OSError$"):
        _io.private_dir(tmp_path / "x", what="key folder")


def test_an_empty_batch_writes_nothing(tmp_path):
    assert _io.write_files_safely([]) == []
    assert list(tmp_path.iterdir()) == []


def test_file_sha256_reads_in_chunks_never_the_whole_file(tmp_path, monkeypatch):
    f = tmp_path / "big"
    f.write_bytes(os.urandom(50))
    sizes: list[object] = []
    real_open = Path.open

    def spy_open(self, *a, **k):
        fh = real_open(self, *a, **k)
        real_read = fh.read

        class Spy:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

            def read(self, n=-1):
                sizes.append(n)
                return real_read(n)

        return Spy()

    monkeypatch.setattr(Path, "open", spy_open)
    _io.file_sha256(f, chunk=16)
    assert sizes and all(n == 16 for n in sizes)


def test_an_output_created_while_the_batch_is_written_is_kept(tmp_path, monkeypatch):
    import tempfile

    target = tmp_path / "r.json"
    real = tempfile.mkstemp

    def mkstemp(*a, **k):
        target.write_text("someone else's")  # another process creates the output meanwhile
        return real(*a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(OutputError) as err:
        _io.write_bytes_safely(target, b"ours")
    assert str(err.value) == f"output {target} already exists"
    assert target.read_text() == "someone else's" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_the_private_file_temp_prefix_and_an_unwritable_folder(tmp_path, monkeypatch):
    seen = _capture_replace(monkeypatch)
    _io.replace_private_file(tmp_path / "state.json", b"s")
    assert os.path.basename(seen[0][0]).startswith(".tmp.")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # root can write anywhere: pretend otherwise
    with pytest.raises(OutputError, match=r"cannot write .*r\.json: folder .* is not writable"):
        _io.check_output_path(tmp_path / "r.json")


def test_a_none_output_does_not_end_the_check(tmp_path):
    from modelshield.errors import UserError

    model = tmp_path / "model.pkl"
    model.write_bytes(b"m")
    with pytest.raises(UserError, match="is also an input"):
        _io.check_outputs({"--json": None, "--out": model}, [model], force=True)


def test_check_outputs_defaults_and_what_is_not_the_same_file(tmp_path, monkeypatch):
    from modelshield.errors import UserError

    old = tmp_path / "report.html"
    old.write_text("an earlier report")
    with pytest.raises(OutputError, match="already exists"):  # no force by default
        _io.check_outputs({"--out": old}, [])
    # an existing output and a missing input are not the same file
    _io.check_outputs({"--out": old}, [tmp_path / "missing.csv"], force=True)
    model = tmp_path / "model.pkl"
    model.write_bytes(b"m")

    def samefile(a, b) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os.path, "samefile", samefile)  # cannot tell: not the same (the paths differ)
    _io.check_outputs({"--out": old}, [model], force=True)
    with pytest.raises(UserError, match="is also an input"):  # equal paths need no samefile
        _io.check_outputs({"--out": model}, [model], force=True)
