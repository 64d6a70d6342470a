"""Files a directory signature does not cover: git files added after signing fail verification, and
every unsigned file present under a path the signature leaves out is listed (``strict`` fails)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelshield.cli import main
from modelshield.errors import IntegrityError
from modelshield.protect.keys import load_private_key, load_public_key
from modelshield.protect.signing import GIT_PATHS, sign, verify


def _model(root: Path, *, git: bool) -> Path:
    d = root / "model"
    (d / "weights").mkdir(parents=True)
    (d / "config.json").write_text('{"layers": 2}')
    (d / "weights" / "w.bin").write_bytes(os.urandom(4096))
    if git:
        (d / ".git").mkdir()
        (d / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return d


#: Git-related files an attacker can add after signing: an LFS/smudge filter, an ignore rule that hides
#: files from review, a CI workflow, repository hooks and config (where the model had no .git).
ADDED_LATER = [
    (".gitattributes", "*.bin filter=evil"),
    (".gitignore", "weights/\n"),
    (".github/workflows/release.yml", "on: push\n"),
    (".github/CODEOWNERS", "* @someone\n"),
    (".git/hooks/post-checkout", "#!/bin/sh\necho pwned\n"),
    (".git/config", "[core]\n\tfsmonitor = evil\n"),
]


def _add(d: Path, rel: str, text: str) -> None:
    (d / rel).parent.mkdir(parents=True, exist_ok=True)
    (d / rel).write_text(text)


def _signed_ignores(sig: Path) -> list[str]:
    import base64

    stmt = json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))
    return stmt["predicate"]["serialization"]["ignore_paths"]


@pytest.mark.parametrize(("rel", "text"), ADDED_LATER, ids=[r for r, _ in ADDED_LATER])
def test_a_git_file_added_after_signing_fails_verification(tmp_path: Path, ec_keypair: tuple[Path, Path],
                                                          rel: str, text: str) -> None:
    priv, pub = ec_keypair
    d = _model(tmp_path, git=False)
    sig = sign(d, load_private_key(priv))
    assert _signed_ignores(sig) == ["model.sig"]  # nothing else left out: there were no git files
    assert verify(d, load_public_key(pub)).unsigned == ()
    _add(d, rel, text)
    with pytest.raises(IntegrityError, match=rf"added \(not signed\): {rel}"):
        verify(d, load_public_key(pub))


def test_git_files_present_at_signing_are_left_out_and_listed(tmp_path: Path, ec_keypair: tuple[Path, Path]) -> None:
    priv, pub = ec_keypair
    d = _model(tmp_path, git=True)
    _add(d, ".gitattributes", "*.bin filter=lfs\n")
    sig = sign(d, load_private_key(priv))
    assert sorted(_signed_ignores(sig)) == [".git", ".gitattributes", "model.sig"]
    res = verify(d, load_public_key(pub))
    assert res.files == 2 and res.unsigned == (".git/HEAD", ".gitattributes")
    # a file added later under a left-out path is not a failure by default, but it is listed ...
    _add(d, ".git/hooks/pre-commit", "#!/bin/sh\n")
    res = verify(d, load_public_key(pub))
    assert res.unsigned == (".git/HEAD", ".git/hooks/pre-commit", ".gitattributes")
    # ... and strict fails on every unsigned file, naming each
    with pytest.raises(IntegrityError, match=r"unsigned \(in a path the signature leaves out\): "
                                             r"\.git/hooks/pre-commit") as exc:
        verify(d, load_public_key(pub), strict=True)
    assert ".git/HEAD" in str(exc.value) and ".gitattributes" in str(exc.value)
    # a git path that was absent at signing is not left out
    _add(d, ".github/workflows/x.yml", "on: push\n")
    with pytest.raises(IntegrityError, match=r"added \(not signed\): \.github/workflows/x\.yml"):
        verify(d, load_public_key(pub))


@pytest.mark.parametrize("ignored", ["notes", "notes/sub", "README.md"])
def test_files_under_user_ignores_are_listed(tmp_path: Path, ec_keypair: tuple[Path, Path], ignored: str) -> None:
    priv, pub = ec_keypair
    d = _model(tmp_path, git=False)
    sign(d, load_private_key(priv), ignore_paths=[ignored])
    target = f"{ignored}/later.txt" if "." not in ignored else ignored
    _add(d, target, "added after signing")
    assert verify(d, load_public_key(pub)).unsigned == (target,)
    with pytest.raises(IntegrityError, match="unsigned"):
        verify(d, load_public_key(pub), strict=True)


def test_older_signatures_that_name_every_git_path_still_verify(tmp_path: Path, ec_keypair: tuple[Path, Path]) -> None:
    """Signatures that name all four git paths (model_signing's, and modelshield's before this change)
    keep verifying; the files there are listed as unsigned."""
    priv, pub = ec_keypair
    d = _model(tmp_path, git=False)
    sign(d, load_private_key(priv), ignore_paths=list(GIT_PATHS))
    _add(d, ".gitattributes", "*.bin filter=evil")
    assert verify(d, load_public_key(pub)).unsigned == (".gitattributes",)


def test_cli_lists_unsigned_files_and_strict_fails(tmp_path: Path, ec_keypair: tuple[Path, Path], capsys) -> None:
    priv, pub = ec_keypair
    d = _model(tmp_path, git=True)
    assert main(["protect", "sign", str(d), "--private-key", str(priv)]) == 0
    _add(d, ".git/hooks/post-merge", "#!/bin/sh\n")
    capsys.readouterr()
    assert main(["protect", "verify", str(d), "--public-key", str(pub)]) == 0
    err = capsys.readouterr().err
    assert "warning: 2 unsigned file(s)" in err and ".git/hooks/post-merge" in err
    assert main(["protect", "verify", str(d), "--public-key", str(pub), "--strict"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and ".git/hooks/post-merge" in err
    _add(d, ".gitignore", "*\n")
    assert main(["protect", "verify", str(d), "--public-key", str(pub)]) == 3
    assert "added (not signed): .gitignore" in capsys.readouterr().err
