"""Registry discovery: folder trees with registry.yaml, Hugging Face hub caches, bad sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelshield.errors import DataError, InputNotFoundError, UserError
from modelshield.scale.sources import discover, source_kind

from .conftest import make_registry


def test_folder_tree_finds_every_model_in_path_order_with_its_registered_data(tmp_path):
    root = make_registry(tmp_path / "reg", 4, faults=("garbage",))
    (root / "notes.txt").write_text("not a model")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.pkl").write_bytes(b"\x80\x04N.")
    models = discover(str(root))
    assert [m.name for m in models] == ["broken/garbage.pkl", "team0/model00.joblib", "team0/model02.joblib",
                                        "team1/model01.joblib", "team1/model03.joblib"]
    assert all(m.data is not None and m.data.data == str(root / "holdout.csv") and m.data.target == "label"
               and m.data.train == str(root / "train.csv") for m in models)
    assert not any(m.scan_only for m in models)  # joblib loads; garbage is "unknown": the loader will say why


def test_the_nearest_registry_file_and_a_models_own_entry_win(tmp_path):
    root = make_registry(tmp_path / "reg", 2)
    (root / "team1" / "other.csv").write_text("a,b\n1,2\n")
    (root / "team1" / "registry.yaml").write_text(
        "defaults: {data: other.csv, target: b}\nmodels:\n  model01.joblib: {data: null}\n")
    (root / "team1" / "extra.joblib").write_bytes((root / "team1" / "model01.joblib").read_bytes())
    by = {m.name: m for m in discover(str(root))}
    assert by["team0/model00.joblib"].data.data == str(root / "holdout.csv")
    assert by["team1/model01.joblib"].data is None  # its own entry: no data
    assert by["team1/extra.joblib"].data.data == str(root / "team1" / "other.csv")
    assert by["team1/extra.joblib"].data.target == "b"


@pytest.mark.parametrize("text, msg", [
    ("[1, 2]", "expected a mapping"),
    ("models: [a]", "'models' must be a mapping"),
    ("defaults: {data: x.csv, colour: red}", "unknown key 'colour'"),
    ("defaults: {data: [unclosed", "registry file .* is not valid YAML"),
])
def test_a_bad_registry_file_is_a_data_error(tmp_path, text, msg):
    root = make_registry(tmp_path / "reg", 1)
    (root / "registry.yaml").write_text(text)
    with pytest.raises(DataError, match=msg):
        discover(str(root))


def _hf_cache(root: Path, repos: dict[str, dict[str, bytes]]) -> Path:
    """The hub cache layout: models--ORG--NAME/{blobs/<sha>, snapshots/<rev>/<file> -> ../../blobs/<sha>}."""
    import hashlib

    for repo, files in repos.items():
        d = root / ("models--" + repo.replace("/", "--"))
        (d / "blobs").mkdir(parents=True)
        snap = d / "snapshots" / ("a1b2c3d4" * 5)
        snap.mkdir(parents=True)
        (d / "refs").mkdir()
        (d / "refs" / "main").write_text("a1b2c3d4" * 5)
        for name, data in files.items():
            sha = hashlib.sha256(data).hexdigest()
            (d / "blobs" / sha).write_bytes(data)
            (snap / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(d / "blobs" / sha, (snap / name).parent), snap / name)
    return root


def _safetensors() -> bytes:
    import json
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 8


def test_hugging_face_cache_one_model_per_snapshot(tmp_path, registry):
    joblib_bytes = (registry / "team0" / "model00.joblib").read_bytes()
    root = _hf_cache(tmp_path / "hub", {"acme/tabular": {"model.joblib": joblib_bytes, "config.json": b"{}"},
                                         "acme/bert-tiny": {"model.safetensors": _safetensors(),
                                                            "sub/pytorch_model.bin": b"\x80\x04N."}})
    assert source_kind(str(root)) == "hf"
    models = discover(str(root))
    assert [m.name for m in models] == ["acme/bert-tiny@a1b2c3d4a1b2", "acme/tabular@a1b2c3d4a1b2"]
    bert, tab = models
    assert not tab.scan_only and tab.path.endswith("model.joblib") and len(tab.files) == 1
    assert len(bert.files) == 2  # every model file of the snapshot is scanned
    assert bert.path.endswith("pytorch_model.bin")  # the loadable one is the main file
    # one repo folder on its own is a source too
    assert [m.name for m in discover(str(root / "models--acme--tabular"))] == ["acme/tabular@a1b2c3d4a1b2"]


def test_weights_only_snapshot_is_scan_only(tmp_path):
    root = _hf_cache(tmp_path / "hub", {"acme/w": {"model.safetensors": _safetensors()}})
    (m,) = discover(str(root))
    assert m.scan_only and "safetensors" in m.note


def test_missing_and_file_sources_are_user_errors(tmp_path):
    with pytest.raises(InputNotFoundError, match="registry not found"):
        discover(str(tmp_path / "nope"))
    (tmp_path / "f.pkl").write_bytes(b"x")
    with pytest.raises(UserError, match="is a file"):
        discover(str(tmp_path / "f.pkl"))


@pytest.mark.parametrize("uri, err", [("mlflow://", UserError), ("mlflow:///no/such/store", InputNotFoundError),
                                      ("mlflow://sqlite:////no/such.db", InputNotFoundError),
                                      ("mlflow://http://127.0.0.1:1", UserError)])
def test_mlflow_uris_that_cannot_open_are_user_errors(uri, err):
    pytest.importorskip("mlflow")
    with pytest.raises(err):
        discover(uri)
