"""``modelshield deploy export``: the three targets from the CLI, bad input (exit 2), no secret in any
generated file, copies that are the exported model."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets

import pytest

from modelshield.cli import main
from modelshield.deploy import TARGETS, DeploySpec, export
from modelshield.errors import InputNotFoundError, OutputError, UserError


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_each_target_from_the_cli(models, tmp_path, capsys):
    expect = {"docker": {"Dockerfile", "requirements.txt", "model/SHA256SUMS", "model/model.onnx"},
              "k8s": {"k8s/deployment.yaml", "k8s/networkpolicy.yaml", "k8s/service.yaml", "k8s/namespace.yaml"},
              "gramine": {"modelshield.manifest.template", "model/model.onnx", "app/modelshield/__init__.py"}}
    for target in TARGETS:
        out = tmp_path / target
        code, text, err = run(capsys, "deploy", "export", "--target", target, "--model", models["plain"], "--out", out)
        assert code == 0, err
        written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert expect[target] <= written
        assert f"to {out}" in text
    copy = tmp_path / "docker" / "model" / "model.onnx"
    assert copy.read_bytes() == models["plain"].read_bytes()


def test_existing_output_folder_needs_force(models, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "deploy", "export", "--target", "docker", "--model", models["plain"], "--out", out)
    assert code == 2 and err.startswith("error:") and "--force" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # nothing written
    code, _, _ = run(capsys, "deploy", "export", "--target", "docker", "--model", models["plain"], "--out", out,
                     "--force")
    assert code == 0 and (out / "Dockerfile").is_file() and (out / "keep.txt").read_text() == "mine"
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(OutputError):
        export(DeploySpec(model=models["plain"], target="k8s"), f, force=True)


def test_bad_input_exits_2(models, tmp_path, capsys):
    cases = [
        ("--target", "docker", "--model", tmp_path / "missing.onnx", "--out", tmp_path / "a"),
        ("--target", "podman", "--model", models["plain"], "--out", tmp_path / "b"),
        ("--target", "k8s", "--model", models["signed"], "--signature", models["signature"], "--out", tmp_path / "c"),
        ("--target", "k8s", "--model", models["plain"], "--port", "80", "--out", tmp_path / "d"),
        ("--target", "k8s", "--model", models["plain"], "--name", "Bad_Name", "--out", tmp_path / "e"),
        ("--target", "docker", "--model", models["plain"], "--python-digest", "latest", "--out", tmp_path / "f"),
        ("--target", "docker", "--model", models["plain"], "--wheel", tmp_path / "no.whl", "--out", tmp_path / "g"),
        ("--target", "docker", "--model", models["dir"], "--out", tmp_path / "h"),
    ]
    for args in cases:
        code, _, err = run(capsys, "deploy", "export", *args)
        assert code == 2, (args, err)
        assert err.startswith("error:") and "Traceback" not in err, err
        assert not (tmp_path / str(args[-1])).exists()
    with pytest.raises(InputNotFoundError):
        export(DeploySpec(model=tmp_path / "missing", target="k8s"), tmp_path / "x")
    with pytest.raises(UserError):
        export(DeploySpec(model=models["plain"], target="k8s", memory_limit="lots"), tmp_path / "y")
    with pytest.raises(UserError, match="a signature and its public key go together") as ei:
        export(DeploySpec(model=models["plain"], target="k8s", signature=models["signature"]), tmp_path / "z")
    assert ei.value.cli_hint == "give both --signature and --public-key" and "--" not in str(ei.value)


#: What a secret looks like in a file: PEM private keys, long hex/base64 runs assigned to key-ish names.
SECRET_PATTERNS = [re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
                   re.compile(rb"(?i)(password|passphrase|secret|token|api[_-]?key)\s*[:=]\s*['\"]?[A-Za-z0-9+/=_-]{16,}")]


def test_no_secret_in_any_generated_file(models, tmp_path, monkeypatch):
    """Plant secrets where a careless exporter would pick them up (the environment, the state folder, a
    private key beside the model) and grep every exported file for them."""
    planted = {"env": secrets.token_hex(32), "jwt": secrets.token_urlsafe(32), "api": secrets.token_hex(24)}
    monkeypatch.setenv("MODELSHIELD_MODEL_KEY", models["key_hex"])
    monkeypatch.setenv("MS_JWT_SECRET", planted["jwt"])
    state = tmp_path / "state"
    state.mkdir()
    (state / "keys.json").write_text(json.dumps({"keys": [{"id": "k1", "hash": planted["api"]}]}))
    monkeypatch.setenv("MODELSHIELD_STATE_DIR", str(state))
    private_pem = models["private_key"].read_bytes()
    needles = [models["key_hex"].encode(), bytes.fromhex(models["key_hex"]), planted["jwt"].encode(),
               planted["api"].encode(), private_pem.strip().splitlines()[1]]
    n = 0
    for target in TARGETS:
        for kind in ("encrypted", "signed"):
            sig = {"signature": models["signature"], "public_key": models["public_key"]} if kind == "signed" else {}
            out = tmp_path / f"{target}-{kind}"
            export(DeploySpec(model=models[kind], target=target, **sig), out)
            for p in out.rglob("*"):
                if not p.is_file():
                    continue
                data = p.read_bytes()
                n += 1
                for needle in needles:
                    assert needle not in data, (p, needle[:8])
                # patterns: not in the (encrypted) model's opaque bytes, nor in the package's own source,
                # copied verbatim for the enclave (it names secrets, e.g. MODEL_KEY_SECRET = "<a name>")
                if p.name != models[kind].name and "app" not in p.relative_to(out).parts[:1]:
                    for pat in SECRET_PATTERNS:
                        assert not pat.search(data), (p, pat.pattern)
            assert not (out / "model" / "owner.key").exists()
    assert n > 20
    # the grep is live: a file holding the planted key is caught
    leak = tmp_path / "leak.yaml"
    leak.write_text(f"env:\n- name: MODELSHIELD_MODEL_KEY\n  value: {models['key_hex']}\n")
    assert models["key_hex"].encode() in leak.read_bytes()
    assert SECRET_PATTERNS[0].search(private_pem)


def test_a_model_changed_during_export_is_refused(models, tmp_path, monkeypatch):
    """The copy must hash to what the generated files pin; a model swapped in between is exit 3."""
    import importlib

    export_mod = importlib.import_module("modelshield.deploy.exporter")
    from modelshield.errors import IntegrityError

    m = tmp_path / "m.onnx"
    m.write_bytes(models["plain"].read_bytes())
    real = export_mod._render

    def render_then_swap(spec, sha):
        res = real(spec, sha)
        m.write_bytes(models["signed"].read_bytes())  # replaced after hashing, before copying
        return res

    monkeypatch.setattr(export_mod, "_render", render_then_swap)
    with pytest.raises(IntegrityError, match="changed while it was exported"):
        export_mod.export(DeploySpec(model=m, target="docker"), tmp_path / "o")
    assert not (tmp_path / "o" / "model" / "m.onnx").exists()


def test_exported_hashes_name_the_model(models, tmp_path):
    res = export(DeploySpec(model=models["plain"], target="k8s"), tmp_path / "k")
    assert res.model_sha256 == hashlib.sha256(models["plain"].read_bytes()).hexdigest()
    text = (tmp_path / "k" / "k8s" / "deployment.yaml").read_text()
    assert f"modelshield.dev/model-sha256: {res.model_sha256}" in text
    assert os.stat(tmp_path / "k" / "k8s" / "deployment.yaml").st_size > 0
