"""Signing and verification pinned exactly (issue #23: tests that would catch a regression).

Each test asserts the exact outcome (the bytes written, the error type and its whole message, the
fields returned), so that a changed constant, comparison or message in ``protect/signing.py`` fails
here. Found by mutation testing (``scripts/mutation.sh signing``); docs/testing.md lists the mutants
that cannot change behaviour.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from modelshield.errors import InputNotFoundError, IntegrityError, OutputError, UserError
from modelshield.protect import signing
from modelshield.protect.keys import public_pem
from modelshield.protect.signing import (
    BUNDLE_MEDIA_TYPE,
    GIT_PATHS,
    PREDICATE_TYPE,
    Manifest,
    Verification,
    build_manifest,
    default_signature_path,
    hash_file,
    sign,
    sign_manifest,
    verify,
    verify_bytes,
)

V = Path(__file__).parent / "vectors"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SHARD = 4096

PrivKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _root(digests: list[str]) -> str:
    return _sha(b"".join(bytes.fromhex(d) for d in digests))


def _pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, written from the DSSE spec (not the code under test)."""
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def _raw_sign(key: PrivKey, payload: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(_pae(payload))
    algo = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]
    return key.sign(_pae(payload), ec.ECDSA(algo))


def _bundle(sig: Path) -> dict[str, Any]:
    return json.loads(sig.read_text())


def _statement(sig: Path) -> dict[str, Any]:
    return json.loads(base64.b64decode(_bundle(sig)["dsseEnvelope"]["payload"]))


def _resign(sig: Path, stmt: Any, key: PrivKey, *, payload: bytes | None = None) -> None:
    """Replace the signed statement by ``stmt`` (or raw ``payload``), validly signed by ``key``."""
    body = payload if payload is not None else json.dumps(stmt).encode()
    bundle = _bundle(sig)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(body).decode()
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(_raw_sign(key, body)).decode()
    sig.write_text(json.dumps(bundle))


def _both(pub: Any) -> list[Any]:
    """The key and a key function: verify() takes a sequential path for one, an early-hashing one for
    the other, and both must give the same verdict."""
    return [pub, lambda: pub]


@pytest.fixture(params=["ed25519", "p256"])
def key(request: pytest.FixtureRequest) -> PrivKey:
    if request.param == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    (d / "sub" / "deep").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"alpha")
    (d / "sub" / "b.bin").write_bytes(b"bravo" * 100)
    (d / "sub" / "deep" / "c.bin").write_bytes(b"charlie")
    (d / "z-empty").write_bytes(b"")
    return d


def _err(fn: Callable[[], object], exc: type[BaseException]) -> str:
    with pytest.raises(exc) as info:
        fn()
    assert type(info.value) is exc, type(info.value)
    return str(info.value)


# --- the committed vectors: the exact bytes of a signature -----------------------------------------


def test_resigning_the_committed_model_with_the_committed_ed25519_key_gives_the_committed_bytes(
        tmp_path: Path) -> None:
    """Ed25519 is deterministic: the statement, its JSON layout, the bundle and the file's trailing
    newline are all pinned by the committed signature."""
    model = Path(shutil.copytree(V / "signed_model", tmp_path / "signed_model"))
    key = serialization.load_pem_private_key((V / "signer-ed25519.pem").read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    out = sign(model, key, signature=tmp_path / "again.sig")
    assert out == tmp_path / "again.sig"
    committed = (V / "signed_model.ed25519.sig").read_bytes()
    assert out.read_bytes() == committed
    assert committed.endswith(b"}\n") and b'\n  "mediaType": ' in committed


def test_the_committed_statement_is_the_documented_one() -> None:
    stmt = _statement(V / "signed_model.ed25519.sig")
    files = {"config.json": (V / "signed_model" / "config.json").read_bytes(),
             "weights/empty.bin": b"",
             "weights/part-0.bin": (V / "signed_model" / "weights" / "part-0.bin").read_bytes(),
             "weights/part-1.bin": (V / "signed_model" / "weights" / "part-1.bin").read_bytes()}
    digests = [_sha(files[n]) for n in sorted(files)]
    assert stmt == {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "signed_model", "digest": {"sha256": _root(digests)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": []},
            "resources": [{"name": n, "algorithm": "sha256", "digest": d} for n, d in zip(sorted(files), digests)],
        },
    }


# --- the bundle sign() writes -------------------------------------------------------------------------


def test_sign_writes_the_documented_bundle_for_a_single_file(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "weights.bin"
    f.write_bytes(b"some weights")
    sig = sign(f, key)
    assert sig == tmp_path / "weights.bin.sig"
    raw = sig.read_bytes()
    bundle = json.loads(raw)
    assert raw == (json.dumps(bundle, indent=2) + "\n").encode()
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True)
    digest = _sha(b"some weights")
    stmt = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "weights.bin", "digest": {"sha256": _root([digest])}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": list(GIT_PATHS)},
            "resources": [{"name": ".", "algorithm": "sha256", "digest": digest}],
        },
    }
    assert payload == json.dumps(stmt, indent=2).encode("utf-8")
    assert list(bundle) == ["mediaType", "verificationMaterial", "dsseEnvelope"]
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": _sha(public_pem(key))}, "tlogEntries": []}
    env = bundle["dsseEnvelope"]
    assert list(env) == ["payload", "payloadType", "signatures"]
    assert env["payloadType"] == PAYLOAD_TYPE
    assert len(env["signatures"]) == 1 and env["signatures"][0]["keyid"] == ""
    raw_sig = base64.b64decode(env["signatures"][0]["sig"], validate=True)
    pub = key.public_key()
    if isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(raw_sig, _pae(payload))
    else:
        pub.verify(raw_sig, _pae(payload), ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(("curve", "algo"), [(ec.SECP384R1(), hashes.SHA384()), (ec.SECP521R1(), hashes.SHA512())])
def test_larger_curves_sign_with_their_own_hash(tmp_path: Path, curve: ec.EllipticCurve,
                                                algo: hashes.HashAlgorithm) -> None:
    key = ec.generate_private_key(curve)
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    env = _bundle(sig)["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    key.public_key().verify(base64.b64decode(env["signatures"][0]["sig"]), _pae(payload), ec.ECDSA(algo))
    res = verify(f, key.public_key())
    assert res.key_type == f"ecdsa-{curve.name}"


def test_key_types_are_named(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sign(f, ed_key)
    assert verify(f, ed_key.public_key()).key_type == "ed25519"
    p256 = ec.generate_private_key(ec.SECP256R1())
    sign(f, p256, force=True)
    assert verify(f, p256.public_key()).key_type == "ecdsa-secp256r1"
    assert verify_bytes(b"w", "m.bin", p256.public_key(), signature=tmp_path / "m.bin.sig").key_type == \
        "ecdsa-secp256r1"


def test_an_unsupported_key_is_a_user_error(tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    msg = _err(lambda: sign(f, rsa_key), UserError)  # type: ignore[arg-type]
    assert msg == "unsupported signing key RSAPrivateKey; use Ed25519 or ECDSA P-256"
    assert not (tmp_path / "m.bin.sig").exists()


def test_sign_manifest_of_a_sharded_manifest(ed_key: ed25519.Ed25519PrivateKey) -> None:
    m = Manifest(name="ckpt", files={".:4096:5000": "22" * 32, ".:0:4096": "11" * 32}, shard_size=SHARD,
                 ignore_paths=("x",))
    bundle = sign_manifest(m, ed_key)
    stmt = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert stmt["subject"] == [{"name": "ckpt", "digest": {"sha256": _root(["11" * 32, "22" * 32])}}]
    assert stmt["predicate"] == {
        "serialization": {"method": "shards", "hash_type": "sha256", "shard_size": SHARD, "allow_symlinks": False,
                          "ignore_paths": ["x"]},
        "resources": [{"name": ".:0:4096", "algorithm": "sha256-sharded-4096", "digest": "11" * 32},
                      {"name": ".:4096:5000", "algorithm": "sha256-sharded-4096", "digest": "22" * 32}],
    }
    assert list(stmt["predicate"]["serialization"]) == ["method", "hash_type", "shard_size", "allow_symlinks",
                                                        "ignore_paths"]


def test_sign_a_directory_lists_every_file_in_component_order(model: Path, key: PrivKey) -> None:
    (model / "sub-x").write_bytes(b"dash")  # "sub-x" < "sub/..." as strings, after by components
    sig = sign(model, key)
    assert sig == model / "model.sig"
    stmt = _statement(sig)
    names = [r["name"] for r in stmt["predicate"]["resources"]]
    assert names == ["a.bin", "sub/b.bin", "sub/deep/c.bin", "sub-x", "z-empty"]
    assert [r["digest"] for r in stmt["predicate"]["resources"]] == [
        _sha(b"alpha"), _sha(b"bravo" * 100), _sha(b"charlie"), _sha(b"dash"), _sha(b"")]
    assert stmt["predicate"]["serialization"]["ignore_paths"] == ["model.sig"]
    assert stmt["subject"][0]["name"] == "model"
    res = verify(model, key.public_key())
    assert res == Verification(path=model, signature=model / "model.sig", files=5,
                               key_type=res.key_type, root_digest=_root([r["digest"] for r in
                                                                         stmt["predicate"]["resources"]]),
                               manifest=res.manifest, unsigned=())
    assert res.manifest.files == {r["name"]: r["digest"] for r in stmt["predicate"]["resources"]}
    assert res.manifest.ignore_paths == ("model.sig",) and res.manifest.shard_size is None
    assert res.manifest.name == "model" and res.serialization == "files"


# --- sign(): arguments and refusals -----------------------------------------------------------------


def test_sign_refusals_are_exact(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    assert _err(lambda: sign(f, ed_key, serialization="x"), UserError) == \
        "unknown serialization 'x'; expected 'files' or 'shards'"  # type: ignore[arg-type]
    assert _err(lambda: sign(f, ed_key, shard_size=10), UserError) == "a shard size needs serialization='shards'"
    assert _err(lambda: sign(tmp_path / "nope", ed_key), InputNotFoundError) == \
        f"model not found: {tmp_path / 'nope'}"
    for bad in (0, -3, True, 2.0):
        assert _err(lambda: sign(f, ed_key, serialization="shards", shard_size=bad), UserError) == \
            f"shard size must be a positive number of bytes, not {bad!r}"  # type: ignore[arg-type]
    assert not (tmp_path / "m.bin.sig").exists()
    sign(f, ed_key, serialization="shards", shard_size=1)  # the smallest shard size is allowed
    assert _statement(tmp_path / "m.bin.sig")["predicate"]["resources"][0]["name"] == ".:0:1"
    one = verify(f, ed_key.public_key())  # ... and verifies
    assert one.manifest.shard_size == 1 and one.manifest.files == {".:0:1": _sha(b"w")}
    err = _err(lambda: sign(f, ed_key), OutputError)
    assert err == f"signature {tmp_path / 'm.bin.sig'} already exists"
    before = (tmp_path / "m.bin.sig").read_bytes()
    assert sign(f, ed_key, force=True) == tmp_path / "m.bin.sig"
    assert (tmp_path / "m.bin.sig").read_bytes() != before
    assert verify(f, ed_key.public_key()).serialization == "files"


def test_sign_refuses_a_link_or_a_special_file(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    target = tmp_path / "real.bin"
    target.write_bytes(b"w")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    assert _err(lambda: sign(link, ed_key), UserError) == f"{link} is a symbolic link; sign the file it points to"
    assert _err(lambda: build_manifest(link), UserError) == f"{link} is a symbolic link; sign the file it points to"
    dlink = tmp_path / "dirlink"
    dlink.symlink_to(tmp_path, target_is_directory=True)
    assert _err(lambda: build_manifest(dlink), UserError) == \
        f"{dlink} is a symbolic link; sign the file it points to"
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        assert _err(lambda: build_manifest(fifo), UserError) == f"{fifo} is not a regular file or a directory"
    assert _err(lambda: build_manifest(tmp_path / "gone"), InputNotFoundError) == \
        f"model not found: {tmp_path / 'gone'}"
    assert _err(lambda: build_manifest(target, shard_size=0), UserError) == \
        "shard size must be a positive number of bytes, not 0"


def test_shards_refusals_name_what_cannot_be_represented(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    d = tmp_path / "m"
    d.mkdir()
    for i in range(7):
        (d / f"e{i}").write_bytes(b"")
    (d / "full").write_bytes(b"x")
    msg = _err(lambda: sign(d, ed_key, serialization="shards"), UserError)
    assert msg == (f"cannot sign {d} with shards: the shards format cannot list empty files "
                   "(e0, e1, e2, e3, e4), so adding or removing one would go unnoticed; sign per file "
                   "(the default), or remove or ignore them")
    single = tmp_path / "empty.bin"
    single.write_bytes(b"")
    assert "cannot list empty files (empty.bin)" in _err(lambda: sign(single, ed_key, serialization="shards"),
                                                         UserError)
    c = tmp_path / "c"
    (c / "x:y").mkdir(parents=True)
    (c / "x:y" / "f").write_bytes(b"1")
    (c / "b:2").write_bytes(b"2")
    (c / "plain").write_bytes(b"3")
    msg = _err(lambda: sign(c, ed_key, serialization="shards"), UserError)
    assert msg == (f"cannot sign {c} with shards: file names with ':' (b:2) are ambiguous in shard names "
                   "(path:start:end); sign per file (the default)")
    assert not (c / "model.sig").exists()
    sign(c, ed_key)  # per file, ':' is fine
    assert verify(c, ed_key.public_key()).files == 3


def test_sign_with_a_key_function_and_its_error(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(os.urandom(3000))
    sig = sign(f, lambda: ed_key)
    assert verify(f, ed_key.public_key(), signature=sig).files == 1

    def broken() -> ed25519.Ed25519PrivateKey:
        raise OutputError("no key today")

    assert _err(lambda: sign(f, broken, force=True), OutputError) == "no key today"
    assert verify(f, ed_key.public_key()).files == 1  # the old signature is left as it was


def test_default_signature_path() -> None:
    assert default_signature_path(V / "signed_model") == V / "signed_model" / "model.sig"
    assert default_signature_path(V / "v1_plain.bin") == V / "v1_plain.bin.sig"
    assert default_signature_path("nowhere/x.pt") == Path("nowhere/x.pt.sig")


# --- ignore paths -------------------------------------------------------------------------------------


def test_ignore_paths_from_the_cwd_the_model_or_absolute(tmp_path: Path, model: Path,
                                                         ed_key: ed25519.Ed25519PrivateKey,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (model / "notes").mkdir()
    (model / "notes" / "n.txt").write_text("n")
    (model / "notes2").write_bytes(b"not a child of notes")
    outside = tmp_path / "outside.txt"
    outside.write_text("o")
    sig = sign(model, ed_key, ignore_paths=[
        "model/sub/deep",  # from the working directory, inside the model
        "notes",  # inside the model
        str(model / "a.bin"),  # absolute, inside the model
        str(outside),  # absolute, outside: dropped
        "../elsewhere",  # climbs out: dropped
        "notes",  # twice: once
    ])
    ignores = _statement(sig)["predicate"]["serialization"]["ignore_paths"]
    assert ignores == ["a.bin", "model.sig", "notes", "sub/deep"]
    assert [r["name"] for r in _statement(sig)["predicate"]["resources"]] == ["notes2", "sub/b.bin", "z-empty"]
    res = verify(model, ed_key.public_key())
    assert res.files == 3
    assert res.unsigned == ("a.bin", "notes/n.txt", "sub/deep/c.bin")
    assert res.manifest.ignore_paths == ("a.bin", "model.sig", "notes", "sub/deep")
    (model / "notes2").write_bytes(b"changed")
    assert _err(lambda: verify(model, ed_key.public_key()), IntegrityError) == \
        f"{model} does not match its signature: changed: notes2"


def test_a_relative_ignore_path_outside_the_model_is_dropped(tmp_path: Path, model: Path,
                                                             ed_key: ed25519.Ed25519PrivateKey,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(model / "sub")
    sig = sign(model, ed_key, ignore_paths=["deep", "../../x", "..x"])
    # from the working directory: "deep" is sub/deep and "..x" is sub/..x; "../../x" is outside
    assert _statement(sig)["predicate"]["serialization"]["ignore_paths"] == ["model.sig", "sub/..x", "sub/deep"]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    sig = sign(model, ed_key, ignore_paths=["../x", "..x", "sub/deep", "sub/../../y"], force=True)
    # outside the model from here: "..x" and "sub/deep" are names inside the model; a path with a ".."
    # component climbs out and is dropped
    assert _statement(sig)["predicate"]["serialization"]["ignore_paths"] == ["..x", "model.sig", "sub/deep"]


def test_a_signature_elsewhere_in_the_model_is_left_out(model: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    sig = sign(model, ed_key, signature=model / "sub" / "sig.json")
    assert _statement(sig)["predicate"]["serialization"]["ignore_paths"] == ["sub/sig.json"]
    res = verify(model, ed_key.public_key(), signature=model / "sub" / "sig.json")
    assert res.files == 4 and res.unsigned == ()
    assert res.signature == model / "sub" / "sig.json"


def test_ignores_match_whole_components_only(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    d = tmp_path / "m"
    (d / "data").mkdir(parents=True)
    (d / "data" / "x").write_bytes(b"x")
    (d / "data.bak").write_bytes(b"y")
    (d / "dat").write_bytes(b"z")
    sig = sign(d, ed_key, ignore_paths=["data"])
    assert [r["name"] for r in _statement(sig)["predicate"]["resources"]] == ["dat", "data.bak"]
    assert verify(d, ed_key.public_key()).unsigned == ("data/x",)
    sig = sign(d, ed_key, ignore_paths=["data/x"], force=True)
    assert [r["name"] for r in _statement(sig)["predicate"]["resources"]] == ["dat", "data.bak"]
    (d / "data" / "y").write_bytes(b"new")
    assert _err(lambda: verify(d, ed_key.public_key()), IntegrityError) == \
        f"{d} does not match its signature: added (not signed): data/y"


def test_git_paths_present_at_signing_are_left_out(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "w.bin").write_bytes(b"w")
    (d / ".github").mkdir()
    (d / ".github" / "ci.yml").write_text("x")
    (d / ".gitignore").write_text("*")
    (d / ".gitattributes").symlink_to(d / "w.bin")  # a dangling or not link counts as present
    sig = sign(d, ed_key)
    assert _statement(sig)["predicate"]["serialization"]["ignore_paths"] == [
        ".gitattributes", ".github", ".gitignore", "model.sig"]
    res = verify(d, ed_key.public_key())
    assert res.unsigned == (".gitattributes", ".github/ci.yml", ".gitignore")
    assert res.files == 1


# --- links and special files inside a model ------------------------------------------------------------


def test_links_inside_a_model_are_refused_with_their_name(tmp_path: Path, model: Path) -> None:
    (model / "sub" / "ln").symlink_to(model / "a.bin")
    assert _err(lambda: build_manifest(model), IntegrityError) == \
        f"{model}: sub/ln is a symbolic link; links are not allowed in a signed model"
    (model / "sub" / "ln").unlink()
    (model / "sub" / "dirlink").symlink_to(model / "sub" / "deep", target_is_directory=True)
    assert _err(lambda: build_manifest(model), IntegrityError) == \
        f"{model}: sub/dirlink is a symbolic link; links are not allowed in a signed model"
    m = build_manifest(model, ignore_paths=["sub/dirlink"])
    assert sorted(m.files) == ["a.bin", "sub/b.bin", "sub/deep/c.bin", "z-empty"]
    (model / "sub" / "ln").symlink_to(tmp_path / "nowhere")  # dangling
    assert _err(lambda: build_manifest(model, ignore_paths=["sub/dirlink"]), IntegrityError) == \
        f"{model}: sub/ln is a symbolic link; links are not allowed in a signed model"
    m = build_manifest(model, ignore_paths=["sub/dirlink", "sub/ln"])
    assert sorted(m.files) == ["a.bin", "sub/b.bin", "sub/deep/c.bin", "z-empty"]


def test_a_link_added_after_signing_fails_verification(model: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    sign(model, ed_key)
    (model / "evil").symlink_to("/etc/passwd")
    for pub in _both(ed_key.public_key()):
        assert _err(lambda: verify(model, pub), IntegrityError) == \
            f"{model}: evil is a symbolic link; links are not allowed in a signed model"


def test_a_file_replaced_by_a_link_to_identical_content_fails(tmp_path: Path, model: Path,
                                                               ed_key: ed25519.Ed25519PrivateKey) -> None:
    sign(model, ed_key)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(b"alpha")
    (model / "a.bin").unlink()
    (model / "a.bin").symlink_to(copy)
    assert _err(lambda: verify(model, ed_key.public_key()), IntegrityError) == \
        f"{model}: a.bin is a symbolic link; links are not allowed in a signed model"


def test_a_fifo_inside_a_model_is_named(model: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(model / "sub" / "pipe")
    assert _err(lambda: build_manifest(model), IntegrityError) == (
        f"{model}: sub/pipe is not a regular file (a FIFO, socket or device); it cannot be part of a signed model")
    m = build_manifest(model, ignore_paths=["sub/pipe"])
    assert sorted(m.files) == ["a.bin", "sub/b.bin", "sub/deep/c.bin", "z-empty"]


def test_unsigned_entries_include_links_but_are_not_followed(tmp_path: Path, model: Path,
                                                             ed_key: ed25519.Ed25519PrivateKey) -> None:
    (model / "extra").mkdir()
    (model / "extra" / "f").write_text("f")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hidden").write_text("h")
    (model / "extra" / "dl").symlink_to(elsewhere, target_is_directory=True)
    (model / "extra" / "fl").symlink_to(model / "a.bin")
    sign(model, ed_key, ignore_paths=["extra"])
    res = verify(model, ed_key.public_key())
    assert res.unsigned == ("extra/dl", "extra/f", "extra/fl")
    msg = _err(lambda: verify(model, ed_key.public_key(), strict=True), IntegrityError)
    assert msg == (f"{model} does not match its signature: "
                   "unsigned (in a path the signature leaves out): extra/dl; "
                   "unsigned (in a path the signature leaves out): extra/f; "
                   "unsigned (in a path the signature leaves out): extra/fl")


def test_unsigned_entries_are_sorted_by_path_components(model: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    (model / "ig" / "a").mkdir(parents=True)
    (model / "ig" / "a" / "z").write_text("1")
    (model / "ig" / "a-b").write_text("2")
    (model / "ig" / "0").write_text("3")
    sign(model, ed_key, ignore_paths=["ig"])
    assert verify(model, ed_key.public_key()).unsigned == ("ig/0", "ig/a/z", "ig/a-b")


def test_a_file_signature_has_no_unsigned_list_even_with_git_beside(tmp_path: Path,
                                                                    ed_key: ed25519.Ed25519PrivateKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("x")
    sign(f, ed_key)
    res = verify(f, ed_key.public_key(), strict=True)
    assert res.unsigned == () and res.files == 1 and res.path == f
    assert res.manifest.ignore_paths == GIT_PATHS
    assert res.manifest.files == {".": _sha(b"w")}


# --- verification: what it must refuse, exactly ---------------------------------------------------------


def test_verify_names_each_change_exactly(model: Path, key: PrivKey) -> None:
    sign(model, key)
    pub = key.public_key()
    (model / "a.bin").write_bytes(b"ALPHA")
    (model / "sub" / "deep" / "c.bin").unlink()
    (model / "sub" / "new").write_bytes(b"")
    (model / "z-empty").rename(model / "z-renamed")
    for k in _both(pub):
        assert _err(lambda: verify(model, k), IntegrityError) == (
            f"{model} does not match its signature: changed: a.bin; removed: sub/deep/c.bin; "
            "added (not signed): sub/new; removed: z-empty; added (not signed): z-renamed")


def test_more_than_ten_problems_are_summarised(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    d = tmp_path / "m"
    d.mkdir()
    for i in range(13):
        (d / f"f{i:02d}").write_bytes(b"%d" % i)
    sign(d, ed_key)
    for i in range(13):
        (d / f"f{i:02d}").write_bytes(b"x")
    shown = "; ".join(f"changed: f{i:02d}" for i in range(10))
    assert _err(lambda: verify(d, ed_key.public_key()), IntegrityError) == \
        f"{d} does not match its signature: {shown}; and 3 more"
    for i in range(11, 13):
        (d / f"f{i:02d}").write_bytes(b"%d" % i)
    assert _err(lambda: verify(d, ed_key.public_key()), IntegrityError) == \
        f"{d} does not match its signature: {shown}; and 1 more"
    (d / "f10").write_bytes(b"10")
    assert _err(lambda: verify(d, ed_key.public_key()), IntegrityError) == \
        f"{d} does not match its signature: {shown}"


def test_a_single_file_change_is_named_by_its_file_name(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "weights.pt"
    f.write_bytes(b"original")
    sign(f, key)
    f.write_bytes(b"originaL")
    for k in _both(key.public_key()):
        assert _err(lambda: verify(f, k), IntegrityError) == \
            f"{f} does not match its signature: changed: weights.pt"
    assert _err(lambda: verify_bytes(b"x", "shown-name", key.public_key(), signature=tmp_path / "weights.pt.sig"),
                IntegrityError) == "shown-name does not match its signature: changed: shown-name"


def test_a_directory_signature_against_a_file_and_back(tmp_path: Path, model: Path,
                                                       ed_key: ed25519.Ed25519PrivateKey) -> None:
    sig = sign(model, ed_key, signature=tmp_path / "dir.sig")
    f = tmp_path / "a.bin"
    f.write_bytes(b"alpha")
    msg = _err(lambda: verify(f, ed_key.public_key(), signature=sig), IntegrityError)
    assert msg == (f"{f} does not match its signature: added (not signed): a.bin; removed: a.bin; "
                   "removed: sub/b.bin; removed: sub/deep/c.bin; removed: z-empty")


def test_verify_refuses_a_missing_model_or_signature(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    pub = ed_key.public_key()
    for k in _both(pub):
        assert _err(lambda: verify(tmp_path / "none.bin", k), InputNotFoundError) == \
            f"model not found: {tmp_path / 'none.bin'}"
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    for k in _both(pub):
        assert _err(lambda: verify(f, k), IntegrityError) == \
            f"no signature for {f}: {tmp_path / 'm.bin.sig'} does not exist"
    (tmp_path / "m.bin.sig").mkdir()  # not a file
    for k in _both(pub):
        assert _err(lambda: verify(f, k), IntegrityError) == \
            f"no signature for {f}: {tmp_path / 'm.bin.sig'} does not exist"
    assert _err(lambda: verify_bytes(b"w", "nm", pub, signature=tmp_path / "x.sig"), IntegrityError) == \
        f"no signature for nm: {tmp_path / 'x.sig'} does not exist"


def test_a_wrong_key_is_named_with_both_hints(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    other = ed25519.Ed25519PrivateKey.generate() if isinstance(key, ed25519.Ed25519PrivateKey) \
        else ec.generate_private_key(ec.SECP256R1())
    hint, mine = _sha(public_pem(key)), _sha(public_pem(other))
    want = (f"bad signature {sig}: it was made with a different key (key hint {hint[:16]}…, "
            f"yours is {mine[:16]}…)")
    for k in _both(other.public_key()):
        assert _err(lambda: verify(f, k), IntegrityError) == want
    assert _err(lambda: verify_bytes(b"w", "m", other.public_key(), signature=sig), IntegrityError) == want
    # a key of the other algorithm is just as wrong
    cross = ec.generate_private_key(ec.SECP256R1()) if isinstance(key, ed25519.Ed25519PrivateKey) \
        else ed25519.Ed25519PrivateKey.generate()
    assert _err(lambda: verify(f, cross.public_key()), IntegrityError).startswith(
        f"bad signature {sig}: it was made with a different key (key hint {hint[:16]}…")


@pytest.mark.parametrize("hint", ["absent", "empty", "same", "no-material"])
def test_an_altered_statement_without_a_useful_hint(tmp_path: Path, key: PrivKey, hint: str) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    bundle = _bundle(sig)
    stmt = _statement(sig)
    stmt["subject"][0]["name"] = "renamed"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    if hint == "absent":
        del bundle["verificationMaterial"]["publicKey"]["hint"]
    elif hint == "empty":
        bundle["verificationMaterial"]["publicKey"]["hint"] = ""
    elif hint == "no-material":
        del bundle["verificationMaterial"]
    sig.write_text(json.dumps(bundle))
    want = f"bad signature {sig}: the signed statement was altered or the key is wrong"
    for k in _both(key.public_key()):
        assert _err(lambda: verify(f, k), IntegrityError) == want


def test_a_tampered_signature_value_fails(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    bundle = _bundle(sig)
    raw = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    variants = {"truncated": raw[:-1], "flipped": bytes([raw[0] ^ 1]) + raw[1:], "empty": b""}
    for name, value in variants.items():
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(value).decode()
        sig.write_text(json.dumps(bundle))
        for k in _both(key.public_key()):
            assert _err(lambda: verify(f, k), IntegrityError) == \
                f"bad signature {sig}: the signed statement was altered or the key is wrong", name


def _bundle_variants(bundle: dict[str, Any]) -> dict[str, Any]:
    """Bundles broken in one place each (deep copies of ``bundle``)."""
    def with_(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        b = json.loads(json.dumps(bundle))
        fn(b)
        return b

    env = "dsseEnvelope"
    return {
        "no-envelope": with_(lambda b: b.pop(env)),
        "no-payload": with_(lambda b: b[env].pop("payload")),
        "no-signatures": with_(lambda b: b[env].pop("signatures")),
        "no-payload-type": with_(lambda b: b[env].pop("payloadType")),
        "envelope-a-list": with_(lambda b: b.__setitem__(env, [])),
        "a-list": [bundle],
        "a-string": "bundle",
    }


def test_a_bundle_that_is_not_a_bundle(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    good = _bundle(sig)
    want = (f"signature check failed: {sig} is not a valid model-signing (Sigstore bundle with DSSE) "
            "signature")
    cases: dict[str, bytes] = {k: json.dumps(v).encode() for k, v in _bundle_variants(good).items()}
    cases |= {"not-json": b"{", "not-utf8": b'{"a": "\xff"}', "truncated": sig.read_bytes()[:-30], "empty": b""}
    for name, raw in cases.items():
        sig.write_bytes(raw)
        for k in _both(key.public_key()):
            assert _err(lambda: verify(f, k), IntegrityError) == want, name


def test_bundle_fields_are_checked_in_order(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    good = _bundle(sig)
    pub = key.public_key()

    def broken(fn: Callable[[dict[str, Any]], None]) -> str:
        b = json.loads(json.dumps(good))
        fn(b)
        sig.write_text(json.dumps(b))
        msgs = {_err(lambda: verify(f, k), IntegrityError) for k in _both(pub)}
        assert len(msgs) == 1, msgs
        return msgs.pop()

    env = "dsseEnvelope"
    assert broken(lambda b: b.__setitem__("mediaType", "application/json")) == \
        f"signature check failed: {sig} has an unknown bundle media type 'application/json'"
    assert broken(lambda b: b.pop("mediaType")) == \
        f"signature check failed: {sig} has an unknown bundle media type None"
    assert broken(lambda b: b[env].__setitem__("payloadType", "application/json")) == \
        f"{sig}: DSSE payload type 'application/json' is not in-toto JSON"
    assert broken(lambda b: b[env].__setitem__("signatures", [])) == \
        f"{sig}: expected exactly one signature in the envelope"
    assert broken(lambda b: b[env]["signatures"].append(dict(b[env]["signatures"][0]))) == \
        f"{sig}: expected exactly one signature in the envelope"
    assert broken(lambda b: b[env].__setitem__("signatures", {"sig": "AAAA"})) == \
        f"{sig}: expected exactly one signature in the envelope"
    assert broken(lambda b: b[env]["signatures"][0].pop("sig")) == \
        "signature file is malformed: the signature is not base64"
    assert broken(lambda b: b[env]["signatures"][0].__setitem__("sig", "!!!!")) == \
        "signature file is malformed: the signature is not base64"
    assert broken(lambda b: b[env]["signatures"][0].__setitem__("sig", 12)) == \
        "signature file is malformed: the signature is not base64"
    assert broken(lambda b: b[env].__setitem__("payload", "e30=\n")) == \
        "signature file is malformed: the payload is not base64"
    assert broken(lambda b: b[env].__setitem__("payload", "e30")) == \
        "signature file is malformed: the payload is not base64"
    assert broken(lambda b: b[env].__setitem__("payload", None)) == \
        "signature file is malformed: the payload is not base64"


def test_a_different_sigstore_bundle_version_is_accepted(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    b = _bundle(sig)
    b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    sig.write_text(json.dumps(b))
    for k in _both(key.public_key()):
        assert verify(f, k).files == 1


# --- statements a trusted key signed but that are wrong ----------------------------------------------


def _file_and_statement(tmp_path: Path, key: PrivKey, *, shards: bool = False) -> tuple[Path, Path, dict[str, Any]]:
    f = tmp_path / "m.bin"
    f.write_bytes(os.urandom(3 * SHARD if shards else 100))
    sig = sign(f, key, serialization="shards", shard_size=SHARD) if shards else sign(f, key)
    return f, sig, _statement(sig)


def _verdicts(f: Path, key: PrivKey) -> set[str]:
    return {_err(lambda: verify(f, k), IntegrityError) for k in _both(key.public_key())}


def test_a_payload_that_is_not_json(tmp_path: Path, key: PrivKey) -> None:
    f, sig, _ = _file_and_statement(tmp_path, key)
    for payload in (b"not json", b"\xff\xfe", b""):
        _resign(sig, None, key, payload=payload)
        assert _verdicts(f, key) == {f"{sig}: the signed payload is not JSON"}, payload


def test_an_unsupported_statement_type(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    for field, value in (("_type", "https://in-toto.io/Statement/v0.1"), ("predicateType", "https://slsa.dev/p")):
        bad = dict(stmt) | {field: value}
        _resign(sig, bad, key)
        assert _verdicts(f, key) == {
            f"{sig}: unsupported statement ({bad['_type']}, {bad['predicateType']}); expected {PREDICATE_TYPE}"}


@pytest.mark.parametrize("change", ["two-subjects", "no-subject", "no-predicate", "resources-not-list",
                                    "digest-not-hex", "digest-short", "digest-long", "no-digest", "not-an-object",
                                    "subject-no-digest", "resource-no-name", "serialization-a-list",
                                    "a-list-statement"])
def test_malformed_statements(tmp_path: Path, key: PrivKey, change: str) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    pred, res = stmt["predicate"], stmt["predicate"]["resources"]
    bad: Any = stmt
    if change == "two-subjects":
        stmt["subject"].append(dict(stmt["subject"][0]))
    elif change == "no-subject":
        stmt["subject"] = []
    elif change == "no-predicate":
        del stmt["predicate"]
    elif change == "resources-not-list":
        pred["resources"] = 5
    elif change == "digest-not-hex":
        res[0]["digest"] = "zz" * 32
    elif change == "digest-short":
        res[0]["digest"] = "ab" * 31
    elif change == "digest-long":
        res[0]["digest"] = "ab" * 33
    elif change == "no-digest":
        del res[0]["digest"]
    elif change == "not-an-object":
        pred["resources"] = ["x"]
    elif change == "subject-no-digest":
        del stmt["subject"][0]["digest"]
    elif change == "resource-no-name":
        del res[0]["name"]
    elif change == "serialization-a-list":
        pred["serialization"] = []
    elif change == "a-list-statement":
        bad = [stmt]
    _resign(sig, bad, key)
    assert _verdicts(f, key) == {f"{sig}: the signed statement is malformed"}


@pytest.mark.parametrize(("method", "hash_type"), [("digests", "sha256"), (None, "sha256"), ("files", "sha512"),
                                                   ("files", None), ("FILES", "sha256"), ("files", "SHA256")])
def test_unsupported_serializations(tmp_path: Path, key: PrivKey, method: str | None, hash_type: str | None) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    ser = stmt["predicate"]["serialization"]
    for k, v in (("method", method), ("hash_type", hash_type)):
        if v is None:
            del ser[k]
        else:
            ser[k] = v
    _resign(sig, stmt, key)
    assert _verdicts(f, key) == {
        f"{sig}: serialization {method}/{hash_type} is not supported; sign with method 'files' or 'shards' "
        "and SHA-256"}


def test_a_per_file_resource_with_another_algorithm(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    stmt["predicate"]["resources"][0]["algorithm"] = "sha256-sharded-4096"
    _resign(sig, stmt, key)
    assert _verdicts(f, key) == {
        f"{sig}: digest algorithm sha256-sharded-4096 is not supported (expected sha256)"}


def test_a_sharded_resource_with_another_algorithm(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key, shards=True)
    stmt["predicate"]["resources"][2]["algorithm"] = "sha256-sharded-8192"
    _resign(sig, stmt, key)
    assert _verdicts(f, key) == {
        f"{sig}: digest algorithm sha256-sharded-8192 is not supported (expected sha256-sharded-4096)"}


def test_a_resource_listed_twice_and_a_root_mismatch(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    stmt["predicate"]["resources"].append(dict(stmt["predicate"]["resources"][0]))
    _resign(sig, stmt, key)
    assert _verdicts(f, key) == {f"{sig}: resource . is listed twice"}
    (tmp_path / "again").mkdir()
    f, sig, stmt = _file_and_statement(tmp_path / "again", key)
    stmt["subject"][0]["digest"]["sha256"] = _sha(b"other")
    _resign(sig, stmt, key)
    assert _verdicts(f, key) == {f"{sig}: the statement is inconsistent (root digest mismatch)"}


def test_the_root_is_hashed_in_the_order_signed(tmp_path: Path, key: PrivKey) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "a").write_bytes(b"1")
    (d / "b").write_bytes(b"2")
    sig = sign(d, key)
    stmt = _statement(sig)
    res = stmt["predicate"]["resources"]
    stmt["predicate"]["resources"] = [res[1], res[0]]  # reordered: the signed root no longer matches
    _resign(sig, stmt, key)
    assert _verdicts(d, key) == {f"{sig}: the statement is inconsistent (root digest mismatch)"}
    # ... but a root computed over the listed order verifies, whatever the order
    stmt["subject"][0]["digest"]["sha256"] = _root([res[1]["digest"], res[0]["digest"]])
    _resign(sig, stmt, key)
    for k in _both(key.public_key()):
        out = verify(d, k)
        assert out.root_digest == _root([res[1]["digest"], res[0]["digest"]])
        assert out.manifest.resources() == ["a", "b"] and out.files == 2


def test_upper_case_hex_is_accepted_and_normalised(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    root = stmt["subject"][0]["digest"]["sha256"]
    stmt["subject"][0]["digest"]["sha256"] = root.upper()
    digest = stmt["predicate"]["resources"][0]["digest"]
    stmt["predicate"]["resources"][0]["digest"] = digest.upper()
    _resign(sig, stmt, key)
    for k in _both(key.public_key()):
        out = verify(f, k)
        assert out.root_digest == root and out.manifest.files == {".": digest}


def test_statement_fields_that_are_optional_or_converted(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    del stmt["predicate"]["serialization"]["ignore_paths"]
    stmt["subject"][0]["name"] = 7
    _resign(sig, stmt, key)
    for k in _both(key.public_key()):
        out = verify(f, k)
        assert out.manifest.ignore_paths == () and out.manifest.name == "7"
    stmt["predicate"]["serialization"]["ignore_paths"] = [1, "x"]
    _resign(sig, stmt, key)
    assert verify(f, key.public_key()).manifest.ignore_paths == ("1", "x")


@pytest.mark.parametrize(("value", "shown"), [(True, "True"), (0, "0"), (-4096, "-4096"), ("4096", "'4096'"),
                                              (4096.5, "4096.5"), (None, "None"), (0.0, "0")])
def test_signed_shard_sizes_that_are_refused(tmp_path: Path, key: PrivKey, value: Any, shown: str) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key, shards=True)
    stmt["predicate"]["serialization"]["shard_size"] = value
    _resign(sig, stmt, key)
    assert _verdicts(f, key) == {f"{sig}: the signed shard size {shown} is not a positive integer"}


def test_a_sharded_statement_without_a_shard_size(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key, shards=True)
    del stmt["predicate"]["serialization"]["shard_size"]
    _resign(sig, stmt, key)
    assert _verdicts(f, key) == {f"{sig}: the signed statement is malformed"}


def test_a_per_file_statement_ignores_a_shard_size(tmp_path: Path, key: PrivKey) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key)
    stmt["predicate"]["serialization"]["shard_size"] = "nonsense"
    _resign(sig, stmt, key)
    assert verify(f, key.public_key()).manifest.shard_size is None


@pytest.mark.parametrize(("name", "ok"), [
    (".:0:4096", True), (".:4096:8192", True), (".:8192:12288", True),
    (".:1:4096", False),  # not aligned
    (".:4096:4096", False),  # empty
    (".:4096:4095", False),  # backwards
    (".:4096:8193", False),  # longer than a shard
    (".:0:4097", False),
    (".:-0:4096", False), (".:0:4096x", False), (".:a:b", False), (".:0", False), (".", False),
])
def test_shard_names_in_a_statement(tmp_path: Path, key: PrivKey, name: str, ok: bool) -> None:
    f, sig, stmt = _file_and_statement(tmp_path, key, shards=True)
    res = stmt["predicate"]["resources"]
    target = {".:0:4096": 0, ".:4096:8192": 1, ".:8192:12288": 2}.get(name, 1)
    res[target]["name"] = name
    _resign(sig, stmt, key)
    if ok:
        assert verify(f, key.public_key()).manifest.shard_size == SHARD
    else:
        assert _verdicts(f, key) == {f"{sig}: the signed statement is malformed"}


def test_a_short_last_shard_is_accepted(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(os.urandom(SHARD + 1))
    sign(f, key, serialization="shards", shard_size=SHARD)
    for k in _both(key.public_key()):
        out = verify(f, k)
        assert out.manifest.resources() == [".:0:4096", ".:4096:4097"]


# --- early hashing (a key function) against the sequential path --------------------------------------


def test_a_key_function_starts_hashing_before_the_key_loads(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(os.urandom(2 * SHARD))
    sign(f, key)
    hashed = threading.Event()
    real = signing.hash_jobs

    def spy(*a: Any, **kw: Any) -> list[str]:
        out = real(*a, **kw)
        hashed.set()
        return out

    def slow_key() -> Any:
        assert hashed.wait(10), "the model was not hashed while the key loaded"
        return key.public_key()

    signing.hash_jobs = spy  # type: ignore[assignment]
    try:
        assert verify(f, slow_key).files == 1
    finally:
        signing.hash_jobs = real  # type: ignore[assignment]


def test_early_hashing_is_skipped_for_tiny_shards_or_a_bad_bundle(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(os.urandom(3 * SHARD))
    order: list[str] = []
    real = signing.hash_jobs

    def spy(*a: Any, **kw: Any) -> list[str]:
        order.append("hash")
        return real(*a, **kw)

    def loader() -> Any:
        order.append("key")
        return key.public_key()

    signing.hash_jobs = spy  # type: ignore[assignment]
    try:
        sign(f, key, serialization="shards", shard_size=SHARD)  # 4 KiB shards: below 1 MiB
        order.clear()
        verify(f, loader)
        assert order == ["key", "hash"]
        sign(f, key, serialization="shards", shard_size=1 << 20, force=True)  # exactly 1 MiB: early
        assert signing._unverified(tmp_path / "m.bin.sig") is not None
        sign(f, key, serialization="shards", shard_size=(1 << 20) - 1, force=True)
        assert signing._unverified(tmp_path / "m.bin.sig") is None
    finally:
        signing.hash_jobs = real  # type: ignore[assignment]


def test_unverified_reads_the_bundle_or_gives_up(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"w")
    sig = sign(f, key)
    early = signing._unverified(sig)
    assert early is not None
    bundle, payload, raw_sig, expected, root = early
    assert bundle == _bundle(sig)
    assert payload == base64.b64decode(bundle["dsseEnvelope"]["payload"])
    assert raw_sig == base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    assert expected.files == {".": _sha(b"w")} and root == _root([_sha(b"w")])
    assert signing._unverified(tmp_path / "none.sig") is None
    assert signing._unverified(tmp_path) is None  # a folder
    sig.write_text("{}")
    assert signing._unverified(sig) is None
    b = bundle | {"dsseEnvelope": bundle["dsseEnvelope"] | {"payload": base64.b64encode(b"[").decode()}}
    sig.write_text(json.dumps(b))
    assert signing._unverified(sig) is None
    b = bundle | {"dsseEnvelope": bundle["dsseEnvelope"] | {"payload": base64.b64encode(b"{}").decode()}}
    sig.write_text(json.dumps(b))
    assert signing._unverified(sig) is None


def test_a_key_function_error_wins_over_a_hashing_error(tmp_path: Path, model: Path,
                                                         ed_key: ed25519.Ed25519PrivateKey) -> None:
    sign(model, ed_key)

    def bad() -> Any:
        raise InputNotFoundError("public key not found: k.pub")

    (model / "sub" / "b.bin").chmod(0)  # unreadable: a hashing error, unless running as root
    try:
        assert _err(lambda: verify(model, bad), InputNotFoundError) == "public key not found: k.pub"
    finally:
        (model / "sub" / "b.bin").chmod(0o644)
    assert _err(lambda: verify(model, bad), InputNotFoundError) == "public key not found: k.pub"


def test_a_hashing_error_is_raised_when_the_key_is_fine(tmp_path: Path, model: Path,
                                                        ed_key: ed25519.Ed25519PrivateKey,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    sign(model, ed_key)

    def broken(*a: Any, **kw: Any) -> list[str]:
        raise InputNotFoundError("cannot read x")

    monkeypatch.setattr(signing, "hash_jobs", broken)
    assert _err(lambda: verify(model, lambda: ed_key.public_key()), InputNotFoundError) == "cannot read x"
    assert _err(lambda: sign(model, lambda: ed_key, force=True), InputNotFoundError) == "cannot read x"


def test_background_returns_or_raises_and_flags_failure() -> None:
    ok = signing._Background(lambda: 42)
    assert ok.result() == 42 and not ok.failed.is_set()
    assert ok._thread.name == "modelshield-key" and ok._thread.daemon

    def boom() -> int:
        raise KeyError("k")

    bad = signing._Background(boom)
    with pytest.raises(KeyError):
        bad.result()
    assert bad.failed.is_set()
    none = signing._Background(lambda: None)
    assert none.result() is None and not none.failed.is_set()


# --- Manifest ------------------------------------------------------------------------------------------


def test_manifest_serialization_resources_root_and_paths() -> None:
    m = Manifest(name="m", files={"b": "02" * 32, "a/z": "01" * 32, "a-b": "03" * 32})
    assert m.serialization == "files"
    assert m.resources() == ["a/z", "a-b", "b"]
    assert m.root_digest == _root(["01" * 32, "03" * 32, "02" * 32])
    assert m.paths() == {"b": {(0, -1): "02" * 32}, "a/z": {(0, -1): "01" * 32}, "a-b": {(0, -1): "03" * 32}}
    s = Manifest(name="s", files={"f:4096:5000": "aa" * 32, "f:0:4096": "bb" * 32, "e:0:1": "cc" * 32},
                 shard_size=SHARD, empty=("z",))
    assert s.serialization == "shards"
    assert s.resources() == ["e:0:1", "f:0:4096", "f:4096:5000"]
    assert s.paths() == {"f": {(4096, 5000): "aa" * 32, (0, 4096): "bb" * 32}, "e": {(0, 1): "cc" * 32}, "z": {}}
    big = Manifest(name="s", files={"f:40960:40961": "aa" * 32, "f:8192:12288": "bb" * 32}, shard_size=SHARD)
    assert big.resources() == ["f:8192:12288", "f:40960:40961"]  # numeric, not string, order
    with pytest.raises(ValueError, match=re.escape("bad shard name 'f:x:1'")):
        Manifest(name="s", files={"f:x:1": "aa" * 32}, shard_size=SHARD).paths()
    with pytest.raises(ValueError, match=re.escape("bad shard name 'f:1:'")):
        Manifest(name="s", files={"f:1:": "aa" * 32}, shard_size=SHARD).resources()
    colon = Manifest(name="s", files={"a:b:0:1": "aa" * 32}, shard_size=SHARD)
    assert colon.paths() == {"a:b": {(0, 1): "aa" * 32}}  # the path keeps its own colons


def test_manifest_diff_messages() -> None:
    d = "11" * 32
    want = Manifest(name="signed", files={".": d})
    assert want.diff(Manifest(name="actual", files={".": d})) == []
    assert want.diff(Manifest(name="actual", files={".": "22" * 32})) == ["changed: actual"]
    assert want.diff(Manifest(name="actual", files={})) == ["removed: actual"]
    assert Manifest(name="s", files={}).diff(Manifest(name="actual", files={".": d})) == \
        ["added (not signed): actual"]
    with pytest.raises(ValueError, match=r"^cannot compare a per-file manifest with a sharded one$"):
        want.diff(Manifest(name="a", files={}, shard_size=SHARD))
    with pytest.raises(ValueError, match=r"^cannot compare a per-file manifest with a sharded one$"):
        Manifest(name="a", files={}, shard_size=SHARD).diff(want)

    signed = Manifest(name="s", files={f"f:{i * 10}:{i * 10 + 10}": "00" * 32 for i in range(6)}, shard_size=10)
    same = Manifest(name="s", files=dict(signed.files), shard_size=10)
    assert signed.diff(same) == []
    for n in (3, 4, 5):
        changed = dict(signed.files)
        for i in range(n):
            changed[f"f:{i * 10}:{i * 10 + 10}"] = "ff" * 32
        more = f" and {n - 3} more shards" if n > 3 else ""
        assert signed.diff(Manifest(name="s", files=changed, shard_size=10)) == \
            [f"changed: f (bytes 0-10, 10-20, 20-30{more})"]
    one = dict(signed.files)
    one["f:50:60"] = "ff" * 32
    assert signed.diff(Manifest(name="s", files=one, shard_size=10)) == ["changed: f (bytes 50-60)"]
    shorter = {k: v for k, v in signed.files.items() if k != "f:50:60"}
    assert signed.diff(Manifest(name="s", files=shorter, shard_size=10)) == \
        ["changed: f (size 50 bytes, signed 60 bytes)"]
    assert signed.diff(Manifest(name="s", files={}, shard_size=10, empty=("f",))) == \
        ["changed: f (size 0 bytes, signed 60 bytes)"]
    assert Manifest(name="s", files={}, shard_size=10).diff(
        Manifest(name="s", files={}, shard_size=10, empty=("new",))) == \
        ["added (not signed): new (an empty file; the shards format cannot sign empty files)"]
    assert Manifest(name="s", files={}, shard_size=10).diff(
        Manifest(name="act", files={}, shard_size=10, empty=(".",))) == \
        ["added (not signed): act (an empty file; the shards format cannot sign empty files)"]
    assert Manifest(name="s", files={}, shard_size=10).diff(
        Manifest(name="s", files={"g:0:3": "00" * 32}, shard_size=10)) == ["added (not signed): g"]


def test_diff_lists_paths_in_component_order() -> None:
    d = "11" * 32
    want = Manifest(name="m", files={"a/b": d, "a-c": d, "b": d})
    got = Manifest(name="m", files={"a/a": d, "a-b": d, "c": d})
    assert want.diff(got) == ["added (not signed): a/a", "removed: a/b", "added (not signed): a-b",
                              "removed: a-c", "removed: b", "added (not signed): c"]


# --- hashing -------------------------------------------------------------------------------------------


def test_build_manifest_per_file_and_sharded(model: Path) -> None:
    m = build_manifest(model, workers=1)
    assert m == Manifest(name="model", files={"a.bin": _sha(b"alpha"), "sub/b.bin": _sha(b"bravo" * 100),
                                              "sub/deep/c.bin": _sha(b"charlie"), "z-empty": _sha(b"")})
    assert list(m.files) == ["a.bin", "sub/b.bin", "sub/deep/c.bin", "z-empty"]
    s = build_manifest(model, shard_size=200, workers=2)
    data = b"bravo" * 100
    assert s.files == {"a.bin:0:5": _sha(b"alpha"), "sub/b.bin:0:200": _sha(data[:200]),
                       "sub/b.bin:200:400": _sha(data[200:400]), "sub/b.bin:400:500": _sha(data[400:]),
                       "sub/deep/c.bin:0:7": _sha(b"charlie")}
    assert s.empty == ("z-empty",) and s.shard_size == 200 and s.ignore_paths == ()
    auto = build_manifest(model, shard_size="auto")
    assert auto.shard_size == signing.DEFAULT_SHARD_SIZE == 1 << 24
    f = model / "a.bin"
    assert build_manifest(f) == Manifest(name="a.bin", files={".": _sha(b"alpha")}, ignore_paths=GIT_PATHS)
    assert build_manifest(f, shard_size=2) == Manifest(
        name="a.bin", files={".:0:2": _sha(b"al"), ".:2:4": _sha(b"ph"), ".:4:5": _sha(b"a")},
        ignore_paths=GIT_PATHS, shard_size=2)
    empty = model / "z-empty"
    assert build_manifest(empty, shard_size=2) == Manifest(name="z-empty", files={}, ignore_paths=GIT_PATHS,
                                                           shard_size=2, empty=(".",))
    ig = build_manifest(model, ignore_paths=["sub", "sub", "a.bin"])
    assert ig.files == {"z-empty": _sha(b"")} and ig.ignore_paths == ("a.bin", "sub")


def test_hash_file_is_sha256(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    assert hash_file(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_file(str(f)) == _sha(b"abc")


def test_default_shard_size_doubles_at_exactly_4096_shards() -> None:
    base = signing.DEFAULT_SHARD_SIZE
    assert signing.MAX_AUTO_SHARDS == 4096
    assert signing.default_shard_size(base * 4096) == base
    assert signing.default_shard_size(base * 4096 + 1) == 2 * base
    assert signing.default_shard_size(2 * base * 4096) == 2 * base
    assert signing.default_shard_size(2 * base * 4096 + 1) == 4 * base


def test_auto_shards_use_the_models_total_size(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = signing.default_shard_size

    def spy(total: int) -> int:
        seen.append(total)
        return real(total)

    monkeypatch.setattr(signing, "default_shard_size", spy)
    d = tmp_path / "m"
    d.mkdir()
    (d / "a").write_bytes(b"x" * 10)
    (d / "b").write_bytes(b"y" * 32)
    sig = sign(d, ed_key, serialization="shards")
    assert seen == [42]
    assert _statement(sig)["predicate"]["serialization"]["shard_size"] == real(42)


def test_pae_and_hash_helpers() -> None:
    assert signing._pae(b"hello") == b"DSSEv1 28 application/vnd.in-toto+json 5 hello"
    assert signing._pae(b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "
    assert signing._algorithm(None) == "sha256" and signing._algorithm(7) == "sha256-sharded-7"
    for curve, name in ((ec.SECP256R1(), "sha256"), (ec.SECP384R1(), "sha384"), (ec.SECP521R1(), "sha512")):
        assert signing._ec_hash(ec.generate_private_key(curve).public_key()).name == name


def test_verify_bytes_accepts_bytearray_and_memoryview(tmp_path: Path, key: PrivKey) -> None:
    f = tmp_path / "m.bin"
    data = os.urandom(3 * SHARD + 5)
    f.write_bytes(data)
    sig = sign(f, key)
    for buf in (data, bytearray(data), memoryview(data)):
        out = verify_bytes(buf, "named", key.public_key(), signature=str(sig))
        assert out == Verification(path=Path("named"), signature=sig, files=1, key_type=out.key_type,
                                   root_digest=_root([_sha(data)]), manifest=out.manifest)
        assert out.unsigned == () and out.serialization == "files"
    sign(f, key, serialization="shards", shard_size=SHARD, force=True)
    for workers in (1, 3):
        out = verify_bytes(memoryview(data), "named", key.public_key(), signature=sig, workers=workers)
        assert out.serialization == "shards" and out.files == 1
    bad = bytearray(data)
    bad[-1] ^= 1
    assert _err(lambda: verify_bytes(bad, "named", key.public_key(), signature=sig), IntegrityError) == \
        "named does not match its signature: changed: named (bytes 12288-12293)"
    assert _err(lambda: verify_bytes(b"", "named", key.public_key(), signature=sig), IntegrityError) == \
        "named does not match its signature: changed: named (size 0 bytes, signed 12293 bytes)"


def test_verify_bytes_of_an_empty_file_signed_per_file(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    f = tmp_path / "e.bin"
    f.write_bytes(b"")
    sig = sign(f, ed_key)
    assert verify_bytes(b"", "e.bin", ed_key.public_key(), signature=sig).root_digest == _root([_sha(b"")])
    assert _err(lambda: verify_bytes(b"\0", "e.bin", ed_key.public_key(), signature=sig), IntegrityError) == \
        "e.bin does not match its signature: changed: e.bin"


def test_verify_bytes_refuses_a_directory_signature(tmp_path: Path, model: Path,
                                                    ed_key: ed25519.Ed25519PrivateKey) -> None:
    sig = sign(model, ed_key)
    msg = _err(lambda: verify_bytes(b"alpha", "x", ed_key.public_key(), signature=sig), IntegrityError)
    assert msg == ("x does not match its signature: added (not signed): x; removed: a.bin; removed: sub/b.bin; "
                   "removed: sub/deep/c.bin; removed: z-empty")


def test_verify_bytes_summarises_after_ten(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    d = tmp_path / "m"
    d.mkdir()
    for i in range(12):
        (d / f"f{i:02d}").write_bytes(b"x")
    sig = sign(d, ed_key)
    msg = _err(lambda: verify_bytes(b"", "x", ed_key.public_key(), signature=sig), IntegrityError)
    assert msg == "x does not match its signature: added (not signed): x; " + "; ".join(
        f"removed: f{i:02d}" for i in range(9))


def test_verify_with_workers_and_a_signature_given_as_text(tmp_path: Path, model: Path, key: PrivKey) -> None:
    sig = sign(model, key, signature=str(tmp_path / "s.sig"), workers=1)
    assert sig == tmp_path / "s.sig"
    for w in (1, 4):
        for k in _both(key.public_key()):
            res = verify(str(model), k, signature=str(sig), workers=w)
            assert res.path == model and res.signature == sig and res.files == 4


# --- the workers argument reaches the hashing engine -------------------------------------------------


def test_workers_reach_the_hashing_engine(tmp_path: Path, model: Path, ed_key: ed25519.Ed25519PrivateKey,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    real_jobs, real_buf = signing.hash_jobs, signing.hash_buffer_ranges

    def jobs(*a: Any, **kw: Any) -> list[str]:
        seen.append(("jobs", kw.get("workers", "absent")))
        return real_jobs(*a, **kw)

    def buf(*a: Any, **kw: Any) -> list[str]:
        seen.append(("buffer", kw.get("workers", "absent")))
        return real_buf(*a, **kw)

    monkeypatch.setattr(signing, "hash_jobs", jobs)
    monkeypatch.setattr(signing, "hash_buffer_ranges", buf)
    build_manifest(model, workers=3)
    sign(model, lambda: ed_key, workers=5)
    sign(model, ed_key, workers=6, force=True)
    verify(model, ed_key.public_key(), workers=7)
    verify(model, lambda: ed_key.public_key(), workers=2)
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(3 * SHARD))
    sig = sign(f, ed_key, serialization="shards", shard_size=SHARD, workers=4)
    verify_bytes(f.read_bytes(), "f.bin", ed_key.public_key(), signature=sig, workers=9)
    assert seen == [("jobs", 3), ("jobs", 5), ("jobs", 6), ("jobs", 7), ("jobs", 2), ("jobs", 4), ("buffer", 9)]


def test_only_the_signature_itself_is_exempt_from_the_unsigned_list(tmp_path: Path, model: Path,
                                                                     ed_key: ed25519.Ed25519PrivateKey,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A signature kept outside the model, named by a relative path that also exists inside the model
    under a left-out folder: the file inside is not the signature, so it is listed (and fails strict)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sig").mkdir()
    sign(model, ed_key, signature="sig/model.sig", ignore_paths=["sig"])
    assert _statement(tmp_path / "sig" / "model.sig")["predicate"]["serialization"]["ignore_paths"] == ["sig"]
    (model / "sig").mkdir()
    (model / "sig" / "model.sig").write_text("planted")
    assert verify(model, ed_key.public_key(), signature="sig/model.sig").unsigned == ("sig/model.sig",)
    assert _err(lambda: verify(model, ed_key.public_key(), signature="sig/model.sig", strict=True),
                IntegrityError) == (f"{model} does not match its signature: "
                                    "unsigned (in a path the signature leaves out): sig/model.sig")


def test_strict_reports_differences_and_unsigned_files_together(model: Path,
                                                                ed_key: ed25519.Ed25519PrivateKey) -> None:
    (model / "notes").mkdir()
    (model / "notes" / "n.txt").write_text("n")
    sign(model, ed_key, ignore_paths=["notes"])
    (model / "a.bin").write_bytes(b"changed")
    assert _err(lambda: verify(model, ed_key.public_key(), strict=True), IntegrityError) == (
        f"{model} does not match its signature: changed: a.bin; "
        "unsigned (in a path the signature leaves out): notes/n.txt")
    assert _err(lambda: verify(model, ed_key.public_key()), IntegrityError) == \
        f"{model} does not match its signature: changed: a.bin"


def test_the_hashing_engine_gets_each_jobs_size(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sizes let the longest jobs start first (so one big file does not start last)."""
    seen: list[object] = []
    real = signing.hash_jobs

    def spy(jobs: Any, **kw: Any) -> list[str]:
        seen.append(kw.get("sizes"))
        return real(jobs, **kw)

    monkeypatch.setattr(signing, "hash_jobs", spy)
    build_manifest(model)
    build_manifest(model, shard_size=200)
    assert seen == [[5, 500, 7, 0], [5, 200, 200, 100, 7]]


def test_a_one_byte_shard_size_signs_and_verifies(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"wx")
    sign(f, ed_key, serialization="shards", shard_size=1)
    for k in _both(ed_key.public_key()):
        res = verify(f, k)
        assert res.manifest.shard_size == 1 and res.manifest.files == {".:0:1": _sha(b"w"), ".:1:2": _sha(b"x")}


def test_build_manifest_lists_files_in_the_canonical_order(model: Path) -> None:
    (model / "sub-x").write_bytes(b"dash")  # before "sub/..." as a string, after it by path components
    m = build_manifest(model, workers=1)
    assert list(m.files) == m.resources() == ["a.bin", "sub/b.bin", "sub/deep/c.bin", "sub-x", "z-empty"]
    s = build_manifest(model, shard_size=300, workers=1)
    assert list(s.files) == s.resources() == ["a.bin:0:5", "sub/b.bin:0:300", "sub/b.bin:300:500",
                                              "sub/deep/c.bin:0:7", "sub-x:0:4"]
