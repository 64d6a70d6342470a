"""``modelshield protect ...`` end to end: exit codes, messages, atomic outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelshield.cli import main
from modelshield.protect.crypto import HEADER_LEN


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    rc = main(["protect", *[str(a) for a in args]])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(2_500_000))  # 3 chunks of 1 MiB
    return {"dir": tmp_path, "model": model, "k1": tmp_path / "k1.key", "k2": tmp_path / "k2.key"}


def test_keygen_encrypt_decrypt_round_trip(capsys, files) -> None:
    d = files["dir"]
    assert _run(capsys, "keygen", files["k1"])[0] == 0
    assert files["k1"].stat().st_mode & 0o777 == 0o600
    rc, out, _ = _run(capsys, "encrypt", files["model"], d / "m.enc", "--key-file", files["k1"])
    assert rc == 0 and "key id" in out
    rc, out, _ = _run(capsys, "inspect", d / "m.enc")
    assert rc == 0 and "AES-256-GCM" in out
    rc, _, _ = _run(capsys, "decrypt", d / "m.enc", d / "m.out", "-k", files["k1"])
    assert rc == 0
    assert (d / "m.out").read_bytes() == files["model"].read_bytes()
    rc, _, err = _run(capsys, "decrypt", d / "m.enc", d / "m.out", "-k", files["k1"])
    assert rc == 2 and "already exists" in err


@pytest.mark.parametrize("damage", ["header", "chunk", "tag", "truncate", "append", "wrong-key"])
def test_decrypt_failures_exit_3_and_write_nothing(capsys, files, damage: str) -> None:
    d = files["dir"]
    _run(capsys, "keygen", files["k1"])
    _run(capsys, "keygen", files["k2"])
    enc = d / "m.enc"
    _run(capsys, "encrypt", files["model"], enc, "--key-file", files["k1"])
    data = bytearray(enc.read_bytes())
    if damage == "header":
        data[30] ^= 1
    elif damage == "chunk":
        data[HEADER_LEN + (1 << 20) + 100] ^= 1
    elif damage == "tag":
        data[-1] ^= 1
    elif damage == "truncate":
        data = data[: HEADER_LEN + 2 * ((1 << 20) + 16)]
    elif damage == "append":
        data += b"\x00" * 16
    enc.write_bytes(bytes(data))
    before = sorted(p.name for p in d.iterdir())
    key = files["k2"] if damage == "wrong-key" else files["k1"]
    rc, _, err = _run(capsys, "decrypt", enc, d / "plain.bin", "--key-file", key)
    assert rc == 3
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in d.iterdir()) == before  # no output, no leftover temp file


def test_env_key_passphrase_and_rotation(capsys, files, monkeypatch) -> None:
    d = files["dir"]
    import base64

    monkeypatch.setenv("MS_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("MS_PASS", "correct horse battery staple")
    assert _run(capsys, "encrypt", files["model"], d / "e.enc", "--key-env", "MS_KEY")[0] == 0
    before = (d / "e.enc").read_bytes()
    _run(capsys, "keygen", files["k2"])
    rc, out, _ = _run(capsys, "rotate", d / "e.enc", "--key-env", "MS_KEY", "--new-key-file", files["k2"])
    assert rc == 0 and "re-encrypted under a fresh data key" in out
    after = (d / "e.enc").read_bytes()
    assert after[HEADER_LEN:] != before[HEADER_LEN:] and after[:24] != before[:24]  # new data key, new prefix
    assert _run(capsys, "decrypt", d / "e.enc", d / "e.out", "-k", files["k2"])[0] == 0
    assert _run(capsys, "decrypt", d / "e.enc", d / "e2.out", "--key-env", "MS_KEY")[0] == 3
    rc, _, _ = _run(capsys, "rotate", d / "e.enc", "-k", files["k2"], "--new-passphrase-env", "MS_PASS",
                    "--out", d / "p.enc")
    assert rc == 0
    assert _run(capsys, "decrypt", d / "p.enc", d / "p.out", "--passphrase-env", "MS_PASS")[0] == 0
    assert (d / "p.out").read_bytes() == files["model"].read_bytes()


def test_rotate_rewrap_only_is_explicit_and_its_help_states_the_risk(capsys, files) -> None:
    d = files["dir"]
    k1, k2 = d / "k1", files["k2"]
    _run(capsys, "keygen", k1)
    _run(capsys, "keygen", k2)
    assert _run(capsys, "encrypt", files["model"], d / "e.enc", "-k", k1)[0] == 0
    before = (d / "e.enc").read_bytes()
    rc, out, _ = _run(capsys, "rotate", d / "e.enc", "-k", k1, "--new-key-file", k2, "--rewrap-only", "--verify")
    assert rc == 0 and "payload not re-encrypted" in out and "old copy still opens it" in out
    assert (d / "e.enc").read_bytes()[HEADER_LEN:] == before[HEADER_LEN:]
    rc, _, err = _run(capsys, "rotate", d / "e.enc", "-k", k2, "--new-key-file", k1, "--verify")
    assert rc == 2 and "--verify applies to --rewrap-only" in err
    from typer.testing import CliRunner

    from modelshield.cli._app import build_app

    help_text = " ".join(CliRunner().invoke(build_app(), ["protect", "rotate", "--help"],
                                            env={"COLUMNS": "200"}).output.split())
    assert "--rewrap-only" in help_text and "RISK" in help_text and "forge" in help_text


def test_bad_inputs_exit_2(capsys, files, monkeypatch) -> None:
    d = files["dir"]
    rc, _, err = _run(capsys, "encrypt", files["model"], d / "x.enc")
    assert rc == 2 and "exactly one of" in err
    rc, _, err = _run(capsys, "encrypt", d / "missing.bin", d / "x.enc", "-k", d / "nokey")
    assert rc == 2 and "not found" in err
    (d / "bad.key").write_text("not a key")
    rc, _, err = _run(capsys, "encrypt", files["model"], d / "x.enc", "-k", d / "bad.key")
    assert rc == 2 and "256-bit key" in err
    monkeypatch.delenv("NOPE", raising=False)
    rc, _, err = _run(capsys, "encrypt", files["model"], d / "x.enc", "--passphrase-env", "NOPE")
    assert rc == 2 and "NOPE" in err
    rc, _, err = _run(capsys, "keygen", d / "k", "--type", "rsa")
    assert rc == 2 and "unknown key type" in err and "--type" in err


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_sign_verify_cli(capsys, files, kind: str) -> None:
    d = files["dir"]
    model_dir = d / "m"
    model_dir.mkdir()
    (model_dir / "a.bin").write_bytes(b"aaa")
    (model_dir / "b.bin").write_bytes(b"bbb")
    assert _run(capsys, "keygen", d / "sk.pem", "--type", kind)[0] == 0
    pub = d / "sk.pem.pub"
    assert pub.exists()
    rc, out, _ = _run(capsys, "sign", model_dir, "--private-key", d / "sk.pem")
    assert rc == 0 and (model_dir / "model.sig").exists()
    rc, out, _ = _run(capsys, "verify", model_dir, "--public-key", pub)
    assert rc == 0 and "2 file(s)" in out
    (model_dir / "b.bin").write_bytes(b"bbB")
    rc, _, err = _run(capsys, "verify", model_dir, "--public-key", pub)
    assert rc == 3 and "changed: b.bin" in err
    rc, _, err = _run(capsys, "sign", files["model"], "--private-key", d / "sk.pem", "--signature", d / "s.sig")
    assert rc == 0
    rc, _, err = _run(capsys, "verify", files["model"], "--public-key", pub, "--signature", d / "s.sig")
    assert rc == 0
    rc, _, err = _run(capsys, "verify", files["model"], "--public-key", pub)
    assert rc == 3 and "no signature" in err


def test_garbage_signature_is_a_failed_verification_exit_3(tmp_path, capsys):
    from modelshield.cli import main

    f = tmp_path / "f.bin"
    f.write_bytes(b"weights")
    assert main(["protect", "keygen", str(tmp_path / "s.pem"), "--type", "ecdsa-p256",
                 "--public-out", str(tmp_path / "s.pub")]) == 0
    for content in (b"garbage", b'{"a": 1}'):
        sig = tmp_path / "bad.sig"
        sig.write_bytes(content)
        capsys.readouterr()
        rc = main(["protect", "verify", str(f), "--public-key", str(tmp_path / "s.pub"), "--signature", str(sig)])
        assert rc == 3 and "signature check failed" in capsys.readouterr().err


def test_sign_shards_writes_a_sharded_statement(tmp_path: Path) -> None:
    import base64
    import json

    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(3 << 20))
    assert main(["protect", "keygen", str(tmp_path / "k.pem"), "--type", "ecdsa-p256"]) == 0
    assert main(["protect", "sign", str(model), "--private-key", str(tmp_path / "k.pem"), "--shards"]) == 0
    bundle = json.loads((tmp_path / "model.bin.sig").read_text())
    stmt = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert stmt["predicate"]["serialization"]["method"] == "shards"
    assert main(["protect", "verify", str(model), "--public-key", str(tmp_path / "k.pem.pub")]) == 0
