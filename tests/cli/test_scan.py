"""``modelshield scan`` end to end: exit codes, JSON/SARIF outputs, usage errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from modelshield.cli import main


def _evil_pickle() -> bytes:
    # os.system("echo x") written opcode by opcode; never loaded
    return b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x06echo x\x85R."


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    rc = main(["scan", *[str(a) for a in args]])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "models" / "good.pkl"
    good.parent.mkdir()
    good.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    bad = tmp_path / "models" / "sub" / "weights.bin"
    bad.parent.mkdir()
    bad.write_bytes(_evil_pickle())
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(pickle.dumps(list(range(50)), protocol=4)[:30])
    return {"dir": tmp_path, "good": good, "bad": bad, "models": good.parent, "broken": broken}


def test_clean_file_exits_0(capsys, tree) -> None:
    rc, out, _ = _run(capsys, tree["good"])
    assert rc == 0 and "PASS" in out and "clean" in out


def test_directory_with_payload_exits_1_and_names_offset(capsys, tree) -> None:
    rc, out, _ = _run(capsys, tree["models"])
    assert rc == 1
    assert "artifact.pickle.dangerous-global" in out and "os.system @ 14" in out
    assert "1 dangerous" in out


def test_malformed_file_is_never_silent(capsys, tree) -> None:
    rc, out, _ = _run(capsys, tree["broken"])
    assert rc == 1 and "malformed" in out


def test_fail_on_threshold(capsys, tree) -> None:
    assert _run(capsys, tree["broken"], "--fail-on", "critical")[0] == 0
    assert _run(capsys, tree["bad"], "--fail-on", "critical")[0] == 1


def test_json_and_sarif_outputs(capsys, tree) -> None:
    j, s = tree["dir"] / "r.json", tree["dir"] / "r.sarif"
    rc, _, _ = _run(capsys, tree["models"], "--json", j, "--sarif", s, "--hash")
    assert rc == 1
    report = json.loads(j.read_text())
    assert report["schema_version"] == "1.0" and report["summary"]["files"] == 2
    assert all(len(f["sha256"]) == 64 for f in report["files"])
    sarif = json.loads(s.read_text())
    res = sarif["runs"][0]["results"]
    assert res[0]["ruleId"] == "artifact.pickle.dangerous-global" and res[0]["level"] == "error"
    assert res[0]["locations"][0]["physicalLocation"]["region"]["byteOffset"] == 14
    # outputs are never clobbered without --force
    rc, _, err = _run(capsys, tree["good"], "--json", j)
    assert rc == 2 and "already exists" in err
    assert _run(capsys, tree["good"], "--json", j, "--force")[0] == 0


@pytest.mark.parametrize("args", [["/no/such/file"], ["{good}", "--fail-on", "severe"],
                                  ["{good}", "--timeout", "0"], []])
def test_usage_errors_exit_2(capsys, tree, args) -> None:
    args = [a.format(good=tree["good"]) for a in args]
    rc, _, err = _run(capsys, *args)
    assert rc == 2
    assert "Traceback" not in err


def test_installed_command(tree) -> None:
    exe = Path(sys.executable).with_name("modelshield")
    proc = subprocess.run([str(exe), "scan", str(tree["bad"])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "dangerous" in proc.stdout


def test_unparseable_and_empty_model_files_fail_by_default(capsys, tmp_path: Path) -> None:
    rand = tmp_path / "rand.pkl"
    rand.write_bytes(bytes((i * 97 + 13) % 256 for i in range(300)))
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    rc, out, _ = _run(capsys, rand)
    assert rc == 1 and "inconclusive" in out and "artifact.inconclusive" in out and "FAIL" in out
    rc, out, _ = _run(capsys, empty)
    assert rc == 1 and "malformed" in out and "empty model file" in out


def test_model_folder_with_text_companions_passes(capsys, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    (tmp_path / "README.md").write_text("# model card\n")
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    rc, out, _ = _run(capsys, tmp_path)
    assert rc == 0 and "4 clean" in out and "PASS" in out


def test_encrypted_container_is_reported_not_clean(capsys, tmp_path: Path) -> None:
    import os

    from modelshield.protect.crypto import encrypt_bytes

    enc = tmp_path / "model.bin"
    enc.write_bytes(encrypt_bytes(pickle.dumps([1, 2], protocol=4), key=os.urandom(32)))
    rc, out, _ = _run(capsys, enc, "--json", tmp_path / "r.json")
    assert rc == 1 and "(modelshield-encrypted)" in out and "artifact.encrypted" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["files"][0]["status"] == "inconclusive" and doc["summary"]["inconclusive"] == 1


def test_pipes_reports_over_inputs_and_bad_timeouts_are_exit_2(capsys, tree) -> None:
    """A FIFO would block past any timeout: refused up front. A report path that is one of the scanned
    files is refused even with --force. A NaN or infinite timeout is not a timeout."""
    import os

    fifo = tree["dir"] / "p.fifo"
    os.mkfifo(fifo)
    rc, _, err = _run(capsys, fifo, "--timeout", "2")
    assert rc == 2 and "not a regular file" in err
    before = tree["good"].read_bytes()
    rc, _, err = _run(capsys, tree["good"], "--json", tree["good"], "--force")
    assert rc == 2 and "is also an input" in err and tree["good"].read_bytes() == before
    for bad in ("nan", "inf", "0"):
        rc, _, err = _run(capsys, tree["good"], "--timeout", bad)
        assert rc == 2 and "--timeout" in err


def test_an_empty_folder_is_not_a_pass(capsys, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    rc, out, err = _run(capsys, tmp_path / "empty")
    assert rc == 2 and "nothing to scan" in err and "PASS" not in out
