"""Fixtures for the protection tests: keys, small model files, signing key pairs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelshield.protect.keys import write_signing_keypair


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def payload() -> bytes:
    # 3.5 chunks of 4 KiB: the tamper tests use chunk_size=4096
    return os.urandom(4096 * 3 + 2048)


@pytest.fixture(params=["ed25519", "ecdsa-p256"])
def keypair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    priv, pub = tmp_path / f"{request.param}.pem", tmp_path / f"{request.param}.pub.pem"
    write_signing_keypair(priv, pub, request.param)
    return priv, pub


@pytest.fixture
def ec_keypair(tmp_path: Path) -> tuple[Path, Path]:
    priv, pub = tmp_path / "ec.pem", tmp_path / "ec.pub.pem"
    write_signing_keypair(priv, pub, "ecdsa-p256")
    return priv, pub


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    (d / "shards").mkdir(parents=True)
    (d / "config.json").write_text('{"layers": 2}')
    for i in range(3):
        (d / "shards" / f"part-{i}.bin").write_bytes(os.urandom(10_000 + i))
    (d / ".git").mkdir()
    (d / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return d
