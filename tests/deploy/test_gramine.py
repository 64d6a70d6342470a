"""The Gramine-SGX manifest template: parses as TOML, has the keys Gramine needs, pins the model and the
code by SHA-256, seals the state folder with the enclave's key."""

from __future__ import annotations

import hashlib
import sys

import pytest

from modelshield.deploy import DeploySpec, export
from modelshield.deploy.gramine import TEMPLATE_NAME, code_files

# the standard library's TOML parser (3.11+); on 3.10 its backport, when installed
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    out = {}
    for kind, spec in {
        "plain": DeploySpec(model=models["plain"], target="gramine"),
        "encrypted": DeploySpec(model=models["encrypted"], target="gramine", port=8443),
        "signed": DeploySpec(model=models["signed"], target="gramine", signature=models["signature"],
                             public_key=models["public_key"]),
    }.items():
        d = tmp_path_factory.mktemp(f"gramine-{kind}") / "out"
        export(spec, d)
        out[kind] = (spec, d, tomllib.loads((d / TEMPLATE_NAME).read_text()))
    return out


def test_template_parses_with_the_required_keys(exported):
    for spec, _, m in exported.values():
        assert m["libos"]["entrypoint"]
        assert m["loader"]["entrypoint"]["uri"].startswith("file:")
        argv = m["loader"]["argv"]
        assert argv[:4] == ["python3", "-m", "modelshield", "serve"]
        assert argv[argv.index("--port") + 1] == str(spec.port)
        sgx = m["sgx"]
        assert sgx["debug"] is False  # a debug enclave can be read by the host
        assert sgx["enclave_size"].endswith("G") and isinstance(sgx["max_threads"], int)
        assert isinstance(sgx["trusted_files"], list) and sgx["trusted_files"]
        assert m["sgx"]["allowed_files"] == []  # nothing unchecked
        mounts = {x["path"]: x for x in m["fs"]["mounts"]}
        assert mounts["/var/lib/modelshield"]["type"] == "encrypted"
        assert mounts["/var/lib/modelshield"]["key_name"] in ("_sgx_mrenclave", "_sgx_mrsigner")
        assert m["loader"]["env"]["PYTHONDONTWRITEBYTECODE"] == "1"


def test_model_and_code_are_trusted_with_their_hashes(exported):
    for spec, d, m in exported.values():
        pinned = {e["uri"]: e["sha256"] for e in m["sgx"]["trusted_files"] if isinstance(e, dict)}
        want = {f"file:/models/{spec.model.name}": hashlib.sha256(spec.model.read_bytes()).hexdigest()}
        for p in (spec.signature, spec.public_key):
            if p is not None:
                want[f"file:/models/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
        for rel, src in code_files().items():
            want[f"file:/opt/app/{rel}"] = hashlib.sha256(src.read_bytes()).hexdigest()
        assert pinned == want
        assert "file:/opt/app/modelshield/deploy/gramine.py" in pinned  # the code, not only the model
        # the exported copies are exactly the pinned files
        for uri, digest in pinned.items():
            rel = uri.removeprefix("file:")
            local = d / ("model" + rel.removeprefix("/models") if rel.startswith("/models/")
                         else "app" + rel.removeprefix("/opt/app"))
            assert hashlib.sha256(local.read_bytes()).hexdigest() == digest, uri


def test_encrypted_model_key_is_a_sealed_file_not_an_environment_value(exported):
    _, _, m = exported["encrypted"]
    argv = m["loader"]["argv"]
    assert argv[argv.index("--key-file") + 1].startswith("/var/lib/modelshield/")  # inside the sealed mount
    assert "--key-env" not in argv
    assert not [k for k, v in m["loader"]["env"].items() if isinstance(v, dict)]  # no host passthrough
    _, _, plain = exported["plain"]
    assert "--key-file" not in plain["loader"]["argv"]


def test_template_renders_like_gramine_manifest_does(exported):
    """``gramine-manifest`` renders the template with Jinja2 (globals ``gramine.libos``,
    ``gramine.runtimedir()`` and ``-D`` variables); the rendered manifest must still be TOML, with every
    placeholder filled."""
    jinja2 = pytest.importorskip("jinja2")

    class Gramine:
        libos = "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so"

        @staticmethod
        def runtimedir() -> str:
            return "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc"

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    for _, d, _ in exported.values():
        text = env.from_string((d / TEMPLATE_NAME).read_text()).render(
            gramine=Gramine, arch_libdir="/lib/x86_64-linux-gnu", log_level="error")
        assert "{{" not in text
        m = tomllib.loads(text)
        assert m["loader"]["entrypoint"]["uri"] == f"file:{Gramine.libos}"
        assert m["loader"]["log_level"] == "error"
        assert f"file:{Gramine.runtimedir()}/" in m["sgx"]["trusted_files"]
    with pytest.raises(jinja2.UndefinedError):  # a variable left out is an error, not an empty string
        env.from_string((d / TEMPLATE_NAME).read_text()).render(gramine=Gramine, log_level="error")
