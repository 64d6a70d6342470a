"""``modelshield audit-registry``: exit codes, outputs, the cache flags, and one line for each bad input."""

from __future__ import annotations

import json
import socket

import pytest

from modelshield.cli import main

from .conftest import make_registry


def _run(capsys, *args):
    rc = main(["audit-registry", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_pass_then_cached_then_forced(tmp_path, capsys):
    reg = make_registry(tmp_path / "reg", 2)
    cache = tmp_path / "c.sqlite"
    rc, out, _ = _run(capsys, reg, "--out", tmp_path / "out", "--checks", "baseline", "--cache", cache)
    assert rc == 0 and "2 models: 2 pass, 0 fail, 0 error; 0 from the cache" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in summary["models"]] == ["pass", "pass"]
    assert all((tmp_path / "out" / r["report"]).is_file() for r in summary["models"])
    assert summary["cache"]["computed"] == 4
    rc, out, _ = _run(capsys, reg, "--out", tmp_path / "out", "--checks", "baseline", "--cache", cache)
    assert rc == 0 and "2 from the cache" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert all(r["cached"] for r in summary["models"]) and summary["cache"] == {**summary["cache"], "hits": 4}
    rc, out, _ = _run(capsys, reg, "--out", tmp_path / "out", "--checks", "baseline", "--no-cache")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert rc == 0 and "0 from the cache" in out and summary["cache"] is None
    assert not any(r["cached"] for r in summary["models"])


def test_a_failing_model_exits_1_and_is_named(tmp_path, capsys):
    reg = make_registry(tmp_path / "reg", 1, faults=("malicious",))
    rc, out, _ = _run(capsys, reg, "--out", tmp_path / "out", "--checks", "baseline", "--no-cache")
    assert rc == 1
    assert "fail   broken/evil.pkl" in out
    sarif = json.loads((tmp_path / "out" / "summary.sarif").read_text())
    rules = {r["ruleId"] for run in sarif["runs"] for r in run["results"]}
    assert "loader.refused" in rules and any(r.startswith("artifact.") for r in rules)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("case", ["missing", "corrupt-cache", "ray-address", "bad-executor", "local-workers",
                                  "out-occupied", "unknown-check", "bad-option", "cache-and-no-cache",
                                  "mlflow-missing", "signature"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    reg = make_registry(tmp_path / "reg", 1)
    out = tmp_path / "out"
    args: list[object] = [reg, "--out", out, "--no-cache"]
    expect = {"missing": "registry not found", "corrupt-cache": "--no-cache", "ray-address": "does not answer",
              "bad-executor": "unknown executor", "local-workers": "--workers needs", "out-occupied": "--force",
              "unknown-check": "unknown check", "bad-option": "unknown option", "cache-and-no-cache": "not both",
              "mlflow-missing": "not found", "signature": "MODEL.sig"}[case]
    if case == "missing":
        args[0] = tmp_path / "nope"
    elif case == "corrupt-cache":
        bad = tmp_path / "c.sqlite"
        bad.write_bytes(b"not a database" * 200)
        args = [reg, "--out", out, "--cache", bad]
    elif case == "ray-address":
        args += ["--executor", "ray", "--ray-address", f"127.0.0.1:{_closed_port()}"]
    elif case == "bad-executor":
        args += ["--executor", "threads"]
    elif case == "local-workers":
        args += ["--workers", "3"]
    elif case == "out-occupied":
        out.mkdir()
        (out / "mine.txt").write_text("keep")
    elif case == "unknown-check":
        args += ["--checks", "baseline,nosuch"]
    elif case == "bad-option":
        args += ["--option", "baseline.nosuch=1"]
    elif case == "cache-and-no-cache":
        args += ["--cache", tmp_path / "c.sqlite"]
    elif case == "mlflow-missing":
        pytest.importorskip("mlflow")
        args[0] = f"mlflow://sqlite:///{tmp_path / 'no.db'}"
    elif case == "signature":
        args += ["--public-key", reg / "registry.yaml", "--signature", reg / "registry.yaml"]
    rc, stdout, err = _run(capsys, *args)
    assert rc == 2, (stdout, err)
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], err
    if case == "out-occupied":
        assert (out / "mine.txt").read_text() == "keep" and not (out / "summary.json").exists()
