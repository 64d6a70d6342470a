"""The one atomic-write path (issue 14.7): durable (the file and its folder are fsynced), atomic, never
clobbering without ``force``, mode 0600 for secrets; library errors carry a neutral message and a CLI hint."""

from __future__ import annotations

import os
import stat

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
