"""MLflow registries (``mlflow://``): real registered model versions in a local SQLite store, through the
mlflow client. Creating versions with mlflow takes tens of seconds here: marked slow."""

from __future__ import annotations

import json

import pytest

from modelshield.cli import main
from modelshield.errors import UserError
from modelshield.scale.sources import discover

from .conftest import make_registry

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    import joblib
    import mlflow.sklearn

    root = tmp_path_factory.mktemp("mlflow")
    reg = make_registry(root / "reg", 2)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("audit", artifact_location=(root / "artifacts").as_uri())
    for i, path in enumerate(sorted(reg.rglob("*.joblib"))):
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.sklearn.log_model(joblib.load(path), name="model", serialization_format="pickle",
                                            registered_model_name="credit")
        if i == 0:  # the registry records this version's data
            client = mlflow.tracking.MlflowClient(uri, uri)
            version = client.get_registered_model("credit").latest_versions[-1].version
            for k, v in {"data": reg / "holdout.csv", "train": reg / "train.csv", "target": "label"}.items():
                client.set_model_version_tag("credit", version, f"modelshield.{k}", str(v))
        assert info is not None
    return uri, root


def test_every_version_is_a_model_with_its_tagged_data(mlflow_store):
    uri, _ = mlflow_store
    models = discover(f"mlflow://{uri}")
    assert [m.name for m in models] == ["credit/1", "credit/2"]
    assert models[0].data is not None and models[0].data.target == "label"
    assert models[1].data is None
    assert all(m.path.endswith(".pkl") and not m.scan_only for m in models)


def test_audit_registry_on_mlflow(mlflow_store, tmp_path, capsys):
    uri, _ = mlflow_store
    rc = main(["audit-registry", f"mlflow://{uri}", "--out", str(tmp_path / "out"), "--checks", "baseline",
               "--no-cache", "--no-progress"])
    capsys.readouterr()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in summary["models"]] == ["pass", "pass"], summary["models"]
    assert rc == 0
    first = json.loads((tmp_path / "out" / summary["models"][0]["report"].replace(".html", ".json")).read_text())
    assert first["runs"][0]["data"] is not None  # audited with its registered data


def test_a_file_that_is_not_an_mlflow_database(tmp_path):
    bad = tmp_path / "x.db"
    bad.write_bytes(b"not sqlite" * 100)
    with pytest.raises(UserError, match="cannot open the MLflow registry"):
        discover(f"mlflow://sqlite:///{bad}")
