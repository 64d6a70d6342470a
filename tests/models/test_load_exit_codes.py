"""One exit-code rule for model files (README's table): content that is unparseable or in no known
format is an input error (``FormatError``, exit 2); content that parses but is unsafe is a security
refusal (exit 3). The name's extension never matters; encryption does not change the answer.

Malicious files are generated here with harmless references (never called, never loaded).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelshield.cli import main
from modelshield.errors import FormatError, UnsafeModelError
from modelshield.protect.crypto import encrypt_bytes
from modelshield.protect.loader import load_model

KEY = bytes(range(32))
EXTENSIONS = [".onnx", ".pkl", ".pt", ".joblib", ".bin", ".safetensors"]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


_CLEAN_ZIP = _zip({"archive/data.pkl": pickle.dumps({"w": list(range(200))}), "archive/version": b"3\n"})

#: Unparseable or unknown content, by class (several instances each).
UNPARSEABLE: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "text": lambda: b"this is not a model, just a README someone renamed\n" * 5,
    "text-json": lambda: b'{"model": "gpt", "layers": 12}\n',
    "text-starts-like-pickle": lambda: b"config: true\nname: model\n",
    "random-bytes": lambda: bytes((i * 197 + 11) % 256 for i in range(3000)),
    "random-urandom": lambda: b"\x07" + os.urandom(4095),
    "truncated-zip-head": lambda: _CLEAN_ZIP[:40],
    "truncated-zip-half": lambda: _CLEAN_ZIP[: len(_CLEAN_ZIP) // 2],
    "truncated-zip-no-directory": lambda: _CLEAN_ZIP[:-22],
}


class _Hook:
    """Unpickles to ``os.system`` applied to a harmless string: never unpickled here."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("true",)


#: Parseable but unsafe content (several instances): must stay a security refusal.
UNSAFE: dict[str, Callable[[], bytes]] = {
    "pickle-calls-os-system": lambda: pickle.dumps(_Hook(), protocol=4),
    "protocol-0-pickle": lambda: pickle.dumps(_Hook(), protocol=0),
    "zip-with-malicious-member": lambda: _zip({"archive/data.pkl": pickle.dumps(_Hook(), protocol=2)}),
}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("ext", EXTENSIONS)
@pytest.mark.parametrize("kind", list(UNPARSEABLE))
def test_unparseable_or_unknown_content_is_a_format_error(tmp_path: Path, kind: str, ext: str) -> None:
    p = _write(tmp_path, f"model{ext}", UNPARSEABLE[kind]())
    with pytest.raises(FormatError, match="unsupported model format") as exc:
        load_model(p)
    assert exc.value.exit_code == 2
    with pytest.raises(FormatError):
        load_model(p, trust=True)  # trust changes nothing: there is nothing to load


@pytest.mark.parametrize("kind", list(UNPARSEABLE))
def test_encrypted_unparseable_payload_is_a_format_error(tmp_path: Path, kind: str) -> None:
    p = _write(tmp_path, "model.enc", encrypt_bytes(UNPARSEABLE[kind](), key=KEY))
    with pytest.raises(FormatError, match="unsupported model format"):
        load_model(p, key=KEY)


@pytest.mark.parametrize("ext", [".pkl", ".onnx", ".bin"])
@pytest.mark.parametrize("kind", list(UNSAFE))
def test_parseable_but_unsafe_content_is_a_security_refusal(tmp_path: Path, kind: str, ext: str) -> None:
    p = _write(tmp_path, f"model{ext}", UNSAFE[kind]())
    with pytest.raises(UnsafeModelError) as exc:
        load_model(p)
    assert exc.value.exit_code == 3
    enc = _write(tmp_path, "model.enc", encrypt_bytes(UNSAFE[kind](), key=KEY))
    with pytest.raises(UnsafeModelError):
        load_model(enc, key=KEY)


def test_truncated_container_stays_an_integrity_error(tmp_path: Path) -> None:
    from modelshield.errors import IntegrityError

    blob = encrypt_bytes(pickle.dumps({"w": 1}), key=KEY)
    for cut in (len(blob) - 1, len(blob) // 2, 30):
        p = _write(tmp_path, "model.enc", blob[:cut])
        with pytest.raises(IntegrityError):
            load_model(p, key=KEY)


@pytest.mark.parametrize(("kind", "ext", "code"), [
    ("empty", ".onnx", 2), ("text", ".onnx", 2), ("random-bytes", ".pt", 2), ("truncated-zip-half", ".pt", 2),
    ("empty", ".joblib", 2), ("pickle-calls-os-system", ".onnx", 3),
])
def test_cli_audit_exit_codes(tmp_path: Path, capsys, kind: str, ext: str, code: int) -> None:
    data = (UNPARSEABLE | UNSAFE)[kind]()
    p = _write(tmp_path, f"model{ext}", data)
    rc = main(["audit", str(p), "--checks", "artifact", "--no-progress", "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()
