"""The lean paths (``modelshield scan``, ``modelshield protect sign|verify`` without typer) must behave
exactly like the typer commands: same exit code, same stdout/stderr, same files written.

Each case runs the same argument vector twice, in two identical folders: once through the lean
runner (with the dispatcher's error contract, ``cli._run_lean``) and once through the full typer CLI
(``cli._app.run_typer``), then compares everything (timings in the protect messages and in the JSON
report aside).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from modelshield.cli import _fast_protect, _fast_scan, _guarded, _run_lean, main
from modelshield.cli._app import run_typer
from modelshield.cli._lean import clean, say

_EVIL = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x06echo x\x85R."  # os.system("echo x"), never loaded
_TIMING = re.compile(r"\d+\.\d\d s\)")


def _tree(root: Path) -> None:
    (root / "models" / "sub").mkdir(parents=True)
    (root / "models" / "good.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    (root / "models" / "sub" / "weights.bin").write_bytes(_EVIL)
    (root / "broken.pkl").write_bytes(pickle.dumps(list(range(50)), protocol=4)[:30])
    (root / "exists.json").write_text("keep me\n")
    (root / "model.bin").write_bytes(os.urandom(100_000))
    (root / "mdir").mkdir()
    (root / "mdir" / "a.bin").write_bytes(b"aaa")
    (root / "mdir" / "b.bin").write_bytes(b"bbb")
    (root / "mdir" / "notes.txt").write_text("not signed\n")


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    """Two identical working folders (same files, same keys): one per path."""
    lean, full = tmp_path / "lean", tmp_path / "typer"
    lean.mkdir()
    _tree(lean)
    for kind, name in (("ed25519", "sk.pem"), ("ed25519", "other.pem")):
        assert main(["protect", "keygen", str(lean / name), "--type", kind]) == 0
    shutil.copytree(lean, full)
    return lean, full


def _snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.suffix in (".json", ".sarif"):
                data = re.sub(rb'"duration_s": [0-9.e-]+', b'"duration_s": 0', data)
            out[str(p.relative_to(root))] = data
    return out


def _both(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, twins: tuple[Path, Path],
          lean_run: Callable[[list[str]], int | None], words: list[str], args: list[str],
          setup: Callable[[Path], None] | None = None) -> tuple[int, str, str]:
    """Run ``args`` through the lean runner and through typer; assert identical results."""
    results = []
    for root, lean in zip(twins, (True, False)):
        if setup is not None:
            setup(root)
        monkeypatch.chdir(root)
        capsys.readouterr()
        code = (_run_lean(lean_run, list(args), False) if lean
                else _guarded(lambda: run_typer([*words, *args]), False))
        assert code is not None, "the lean path handed a valid command line to typer"
        out = capsys.readouterr()
        results.append((code, _TIMING.sub("T s)", out.out), _TIMING.sub("T s)", out.err), _snapshot(root)))
    (lc, lo, le, lf), (tc, to, te, tf) = results
    assert (lc, lo, le) == (tc, to, te)
    assert lf == tf
    return lc, lo, le


@pytest.mark.parametrize(
    ("args", "code", "expect"),
    [
        (["models/good.pkl"], 0, "PASS (--fail-on medium)"),
        (["models"], 1, "artifact.pickle.dangerous-global"),
        (["models", "--json", "r.json"], 1, "FAIL"),
        (["models", "--sarif", "r.sarif"], 1, "FAIL"),
        (["models", "--json", "r.json", "--sarif", "r.sarif"], 1, "FAIL"),
        (["broken.pkl", "--fail-on", "critical"], 0, "1 malformed"),
        (["broken.pkl", "--fail-on=high"], 1, "1 malformed"),
        (["models", "-q"], 1, "1 dangerous"),
        (["models", "--quiet", "broken.pkl", "--fail-on", "info"], 1, "malformed"),
        (["models/good.pkl", "--hash", "--json", "h.json"], 0, "PASS"),
        (["models", "--fail-on", "severe"], 2, "unknown severity 'severe'"),
        (["models", "--timeout", "0"], 2, "--timeout must be a positive number"),
        (["models", "--json", "exists.json"], 2, "already exists; pass --force"),
        (["models", "--json", "exists.json", "-f"], 1, "FAIL"),
        (["models", "--json", "same.json", "--sarif", "./same.json"], 2, "must name different files"),
        (["nope.pkl"], 2, "nope.pkl"),
    ],
)
def test_scan_parity(capsys, monkeypatch, twins, args: list[str], code: int, expect: str) -> None:
    rc, out, err = _both(capsys, monkeypatch, twins, _fast_scan.run, ["scan"], args)
    assert rc == code
    assert expect in out + err


def test_scan_quiet_hides_clean_files(capsys, monkeypatch, twins) -> None:
    _, out, _ = _both(capsys, monkeypatch, twins, _fast_scan.run, ["scan"], ["models", "-q"])
    assert "good.pkl" not in out and "weights.bin" in out


def test_scan_json_report_is_written_and_matches(capsys, monkeypatch, twins) -> None:
    _both(capsys, monkeypatch, twins, _fast_scan.run, ["scan"], ["models/good.pkl", "--hash", "--json", "h.json"])
    report = json.loads((twins[0] / "h.json").read_text())
    assert report["files"][0]["sha256"] and report["files"][0]["status"] == "clean"


def _sign(root: Path) -> None:
    assert _fast_protect.run_sign([str(root / "model.bin"), "--private-key", str(root / "sk.pem")]) == 0
    assert _fast_protect.run_sign([str(root / "mdir"), "--private-key", str(root / "sk.pem"),
                                   "--ignore", "notes.txt"]) == 0


def _sign_shards(root: Path) -> None:
    assert _fast_protect.run_sign([str(root / "model.bin"), "--private-key", str(root / "sk.pem"), "--shards"]) == 0


def _tamper(root: Path) -> None:
    _sign(root)
    with (root / "model.bin").open("r+b") as fh:
        fh.seek(500)
        b = fh.read(1)
        fh.seek(500)
        fh.write(bytes([b[0] ^ 1]))


@pytest.mark.parametrize(
    ("args", "code", "expect"),
    [
        (["model.bin", "--private-key", "sk.pem"], 0, "signed model.bin -> model.bin.sig"),
        (["mdir", "--private-key", "sk.pem", "--ignore", "notes.txt", "-s", "d.sig"], 0, "-> d.sig"),
        (["mdir", "--ignore=notes.txt", "--ignore", "b.bin", "--private-key=sk.pem"], 0, "mdir/model.sig"),
        (["model.bin", "--private-key", "missing.pem"], 2, "missing.pem"),
        (["model.bin", "--private-key", "sk.pem", "--signature", "exists.json"], 2, "already exists"),
        (["model.bin", "--private-key", "sk.pem", "--signature", "exists.json", "--force"], 0, "exists.json"),
        (["nope.bin", "--private-key", "sk.pem"], 2, "nope.bin"),
        (["model.bin", "--private-key", "sk.pem", "--shards"], 0, "signed model.bin -> model.bin.sig"),
    ],
)
def test_sign_parity(capsys, monkeypatch, twins, args: list[str], code: int, expect: str) -> None:
    rc, out, err = _both(capsys, monkeypatch, twins, _fast_protect.run_sign, ["protect", "sign"], args)
    assert rc == code
    assert expect in out + err


@pytest.mark.parametrize(
    ("args", "setup", "code", "expect"),
    [
        (["model.bin", "--public-key", "sk.pem.pub"], _sign, 0, "verified model.bin: 1 file(s)"),
        (["mdir", "--public-key", "sk.pem.pub"], _sign, 0, "2 file(s)"),
        (["model.bin", "--public-key", "sk.pem.pub"], _tamper, 3, "model.bin"),
        (["model.bin", "--public-key", "sk.pem.pub"], _sign_shards, 0, "verified model.bin: 1 file(s)"),
        (["model.bin", "--public-key", "other.pem.pub"], _sign, 3, "error:"),
        (["model.bin", "--public-key", "missing.pub"], _sign, 2, "missing.pub"),
        (["model.bin", "--public-key", "sk.pem.pub"], None, 3, "no signature"),
        (["model.bin", "-s", "mdir/model.sig", "--public-key", "sk.pem.pub"], _sign, 3, "error:"),
    ],
)
def test_verify_parity(capsys, monkeypatch, twins, args: list[str], setup: Callable[[Path], None] | None,
                       code: int, expect: str) -> None:
    rc, out, err = _both(capsys, monkeypatch, twins, _fast_protect.run_verify, ["protect", "verify"], args,
                         setup=setup)
    assert rc == code
    assert expect in out + err


@pytest.mark.parametrize(
    ("run", "args"),
    [
        (_fast_scan.run, []),                                   # missing PATHS
        (_fast_scan.run, ["m.pkl", "--bogus"]),                  # unknown option
        (_fast_scan.run, ["m.pkl", "--fail"]),                   # abbreviation (click has none)
        (_fast_scan.run, ["m.pkl", "--timeout", "soon"]),        # not a float
        (_fast_scan.run, ["m.pkl", "--json"]),                   # option without its value
        (_fast_scan.run, ["m.pkl", "--force=yes"]),              # flag with a value
        (_fast_scan.run, ["-h"]),
        (_fast_scan.run, ["--", "-weird.pkl"]),                  # "--": left to click's rules
        (_fast_protect.run_sign, ["m.bin"]),                     # missing --private-key
        (_fast_protect.run_sign, ["m.bin", "--private-key", "k", "--public-key", "p"]),
        (_fast_protect.run_verify, ["m.bin", "--public-key", "p", "--private-key", "k"]),
        (_fast_protect.run_verify, ["m.bin", "--public-key", "p", "--force"]),  # sign-only option
        (_fast_protect.run_verify, ["m.bin", "extra", "--public-key", "p"]),
    ],
)
def test_unhandled_command_lines_fall_back_to_typer(run: Callable[[list[str]], int | None],
                                                    args: list[str]) -> None:
    assert run(args) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "m.pkl", "--bogus"],
        ["scan", "m.pkl", "--timeout", "soon"],
        ["scan"],
        ["protect", "verify", "m.bin", "--public-key", "p", "--private-key", "k"],
    ],
)
def test_fallback_gives_typer_usage_errors(capsys, argv: list[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--help" in err


def test_help_comes_from_typer(capsys) -> None:
    assert main(["scan", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--fail-on" in out and "Scan model files" in out
    assert main(["protect", "verify", "-h"]) == 0
    assert "--public-key" in capsys.readouterr().out


_CLI_STACK = ("typer", "click", "rich", "yaml", "pydantic")


def _imports_after(code: str, cwd: Path, heavy: tuple[str, ...] = (*_CLI_STACK, "numpy", "torch")) -> list[str]:
    """The top-level packages among ``heavy`` that running ``code`` in a fresh interpreter imported."""
    probe = (
        "import sys\n" + code + "\n"
        f"heavy = {heavy!r}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_scan_does_not_import_typer_click_rich(twins) -> None:
    root = twins[0]
    code = "from modelshield.cli import main\nassert main(['scan', 'models', '-q']) == 1"
    assert _imports_after(code, root) == []
    code = "from modelshield.artifacts.__main__ import main\nassert main(['models']) == 1"
    assert _imports_after(code, root) == []


_SIGN_VERIFY = ("from modelshield.cli import _run_lean\nfrom modelshield.cli._fast_protect import run_sign, run_verify\n"
                "assert _run_lean(run_sign, ['model.bin', '--private-key', 'sk.pem'], False) == 0\n"
                "assert _run_lean(run_verify, ['model.bin', '--public-key', 'sk.pem.pub'], False) == 0")


def test_sign_verify_lean_runners_do_not_import_typer_click_rich(twins) -> None:
    assert _imports_after(_SIGN_VERIFY, twins[0], _CLI_STACK) == []


def test_sign_verify_lean_runners_do_not_import_numpy(twins) -> None:
    assert _imports_after(_SIGN_VERIFY, twins[0], ("numpy", "torch")) == []


def test_protect_verify_command_takes_the_lean_path(twins) -> None:
    code = ("from modelshield.cli import _run_lean, main\nfrom modelshield.cli._fast_protect import run_sign\n"
            "assert _run_lean(run_sign, ['model.bin', '--private-key', 'sk.pem'], False) == 0\n"
            "assert main(['protect', 'verify', 'model.bin', '--public-key', 'sk.pem.pub']) == 0")
    assert _imports_after(code, twins[0]) == []


def test_say_escapes_control_characters_and_colours_only_on_request(capsys, monkeypatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    say(("dangerous", "bold red"), " evil\x1b]0;pwned\x07.pkl")
    assert capsys.readouterr().out == "dangerous evil\\x1b]0;pwned\\x07.pkl\n"  # captured: not a TTY
    monkeypatch.setenv("FORCE_COLOR", "1")
    say(("clean", "green"), " a")
    assert capsys.readouterr().out == "\x1b[32mclean\x1b[0m a\n"
    monkeypatch.setenv("NO_COLOR", "1")
    say(("clean", "green"), " a")
    assert capsys.readouterr().out == "clean a\n"
    assert clean("tab\tok\nnl\r\x9b") == "tab\tok\nnl\\x0d\\x9b"


@pytest.mark.parametrize("command", [["protect", "sign", "model.bin", "--private-key", "sk.pem", "-f"],
                                     ["protect", "verify", "model.bin", "--public-key", "sk.pem.pub"]])
def test_sign_verify_start_hashing_before_cryptography_is_imported(twins, command: list[str]) -> None:
    """The key loads (cryptography import, PEM parsing) beside the hashing, not before it."""
    root = twins[0]
    assert main(["protect", "sign", str(root / "model.bin"), "--private-key", str(root / "sk.pem"), "-f"]) == 0
    probe = (  # the key's import is slowed down: hashing must start meanwhile, however busy the machine is
        "import sys, time\n"
        "class Slow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'cryptography.hazmat.primitives.serialization':\n"
        "            time.sleep(1.0)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Slow())\n"
        "from modelshield.protect import _hashing\n"
        "seen = []\n"
        "real = _hashing.hash_range\n"
        "def spy(*a, **k):\n"
        "    seen.append('cryptography.hazmat.primitives.serialization' in sys.modules)\n"
        "    return real(*a, **k)\n"
        "_hashing.hash_range = spy\n"
        "from modelshield.cli import main\n"
        f"assert main({command!r}) == 0\n"
        "print(seen[0])\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=root, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"
