"""Registry sources: where the models of a registry audit come from.

* a **folder tree**: every model file under it (by extension: :data:`MODEL_SUFFIXES`), in path order; the data
  a model is audited with is recorded in a ``registry.yaml`` in the model's folder or any folder above it::

      defaults: {data: holdout.csv, target: label}      # every model at or below this folder
      models:
        credit/model.joblib: {data: credit.csv, train: credit-train.csv, target: y, sensitive: [sex]}
        old.pkl: {data: null}                            # audit without data

  (paths relative to the ``registry.yaml``; a model's own entry wins over ``defaults``, the nearest file over
  those above it);
* a **Hugging Face hub cache** (``~/.cache/huggingface/hub``): one model per ``models--ORG--NAME/snapshots/REV``,
  named ``ORG/NAME@REV``, its model files (symbolic links into ``blobs/``) scanned together;
* an **MLflow registry** ``mlflow://TRACKING_URI`` (``mlflow:///path/mlruns`` for a file store,
  ``mlflow://sqlite:///path/mlflow.db``): every version of every registered model, through the ``mlflow``
  client; the version tags ``modelshield.data``, ``modelshield.train``, ``modelshield.target`` and
  ``modelshield.sensitive`` (comma-separated) record its data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelshield._yaml import load_yaml_file
from modelshield.errors import DataError, InputNotFoundError, MissingExtraError, UserError
from modelshield.formats import detect_format_bytes
from modelshield.scale.units import DataSpec

__all__ = ["MODEL_SUFFIXES", "RegistryModel", "discover", "source_kind"]

#: File name endings taken for model files in a folder tree and a Hugging Face snapshot.
MODEL_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".onnx", ".safetensors", ".gguf", ".h5",
                  ".keras", ".bin", ".skops", ".torchscript")
#: Formats the secure loader loads (others are scanned only: weights without an architecture).
LOADABLE_FORMATS = frozenset({"pickle", "pickle0", "zip", "torch-zip", "torchscript", "onnx", "joblib-compressed"})
REGISTRY_FILE = "registry.yaml"
_HF_PREFIX = "models--"


@dataclass(frozen=True, kw_only=True)
class RegistryModel:
    """One model of a registry: its name (unique in the registry), main file, every file scanned with it,
    the data recorded for it, and whether it is only scanned (a format the loader does not load)."""

    name: str
    path: str
    files: tuple[str, ...] = ()
    data: DataSpec | None = None
    scan_only: bool = False
    note: str = ""
    error: str = ""  # found but cannot be audited (its files could not be fetched): an error row
    meta: Mapping[str, Any] = field(default_factory=dict)


def source_kind(source: str) -> str:
    """``mlflow``, ``hf`` (a hub cache or one ``models--...`` folder) or ``folder``; a missing path is exit 2."""
    if source.startswith("mlflow://"):
        return "mlflow"
    p = Path(source)
    if not p.exists():
        raise InputNotFoundError(f"registry not found: {source}")
    if not p.is_dir():
        raise UserError(f"registry {source} is a file; give the folder that holds the models")
    if p.name.startswith(_HF_PREFIX) and (p / "snapshots").is_dir():
        return "hf"
    try:
        if any(c.name.startswith(_HF_PREFIX) and (c / "snapshots").is_dir() for c in p.iterdir()):
            return "hf"
    except OSError as exc:
        raise InputNotFoundError(f"cannot read registry {source}: {exc.strerror or type(exc).__name__}") from None
    return "folder"


def discover(source: str) -> list[RegistryModel]:
    """Every model of ``source`` (see the module docstring), in a stable order."""
    kind = source_kind(source)
    if kind == "mlflow":
        return _mlflow_models(source[len("mlflow://"):])
    if kind == "hf":
        return _hf_models(Path(source))
    return _folder_models(Path(source))


def _sniff(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return "unreadable"
    return detect_format_bytes(head)


def _is_model_file(p: Path) -> bool:
    return p.name.lower().endswith(MODEL_SUFFIXES)


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("."):
                yield Path(dirpath) / f


def _read_registry_yaml(path: Path) -> dict[str, Any]:
    doc = load_yaml_file(path, "registry file", error=DataError) or {}
    if not isinstance(doc, dict) or not set(doc) <= {"defaults", "models"}:
        raise DataError(f"{path}: expected a mapping with 'defaults' and/or 'models'")
    for key in ("defaults", "models"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise DataError(f"{path}: '{key}' must be a mapping")
    return doc


def _data_spec(entry: Mapping[str, Any], base: Path, where: str) -> DataSpec | None:
    unknown = set(entry) - {"data", "train", "target", "sensitive", "features"}
    if unknown:
        raise DataError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: data, train, target, sensitive, "
                        "features)")
    if not entry.get("data"):
        return None

    def rel(v: Any) -> str | None:
        return str((base / str(v)).resolve()) if v else None

    def names(v: Any) -> tuple[str, ...]:
        return tuple(s.strip() for s in v.split(",") if s.strip()) if isinstance(v, str) else tuple(map(str, v or ()))

    feats = entry.get("features")
    return DataSpec(data=rel(entry["data"]) or "", train=rel(entry.get("train")), target=entry.get("target"),
                    sensitive=names(entry.get("sensitive")), features=names(feats) if feats else None)


def _folder_models(root: Path) -> list[RegistryModel]:
    files = list(_walk(root))
    registries = {p.parent: _read_registry_yaml(p) for p in files if p.name == REGISTRY_FILE}
    out: list[RegistryModel] = []
    for p in files:
        if not _is_model_file(p):
            continue
        spec: DataSpec | None = None
        for folder in [p.parent, *p.parent.parents]:  # the nearest registry.yaml that speaks of this model
            doc = registries.get(folder)
            if doc is not None:
                rel = p.relative_to(folder).as_posix()
                models = doc.get("models") or {}
                if rel in models:
                    spec = _data_spec(models[rel] or {}, folder, f"{folder / REGISTRY_FILE}: {rel}")
                    break
                if doc.get("defaults"):
                    spec = _data_spec(doc["defaults"], folder, f"{folder / REGISTRY_FILE}: defaults")
                    break
            if folder == root:
                break
        fmt = _sniff(p)
        scan_only = fmt not in LOADABLE_FORMATS and fmt not in ("unknown", "unreadable")
        out.append(RegistryModel(name=p.relative_to(root).as_posix(), path=str(p), files=(str(p),), data=spec,
                                 scan_only=scan_only, note=f"{fmt}: scanned, not loaded" if scan_only else ""))
    return out


def _hf_models(root: Path) -> list[RegistryModel]:
    repos = [root] if root.name.startswith(_HF_PREFIX) else sorted(
        c for c in root.iterdir() if c.name.startswith(_HF_PREFIX) and (c / "snapshots").is_dir())
    out: list[RegistryModel] = []
    for repo in repos:
        repo_name = repo.name[len(_HF_PREFIX):].replace("--", "/")
        for snap in sorted(s for s in (repo / "snapshots").iterdir() if s.is_dir()):
            files = [p for p in _walk(snap) if _is_model_file(p)]
            if not files:
                continue
            fmts = {str(p): _sniff(p) for p in files}
            loadable = [p for p in files if fmts[str(p)] in LOADABLE_FORMATS]
            main = loadable[0] if loadable else files[0]
            scan_only = not loadable
            out.append(RegistryModel(
                name=f"{repo_name}@{snap.name[:12]}", path=str(main), files=tuple(str(p) for p in files),
                scan_only=scan_only, note=f"{fmts[str(main)]}: scanned, not loaded" if scan_only else "",
                meta={"repo": repo_name, "revision": snap.name}))
    return out


def _mlflow_models(uri: str) -> list[RegistryModel]:
    if not uri:
        raise UserError("mlflow:// needs a tracking URI, e.g. mlflow:///path/mlruns or mlflow://sqlite:///mlflow.db")
    try:
        import mlflow  # optional extra: only for mlflow:// sources
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingExtraError("mlflow", "scale", "mlflow:// registries") from exc
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines ("Creating initial tables") are noise
    if "://" not in uri:  # a plain path: a file store
        if not Path(uri).is_dir():
            raise InputNotFoundError(f"MLflow tracking store not found: {uri}")
        uri = Path(uri).resolve().as_uri()
    elif uri.startswith("sqlite:///"):
        db = uri[len("sqlite:///"):]
        if not Path(db).is_file():
            raise InputNotFoundError(f"MLflow database not found: {db}")
    elif uri.startswith("file://"):
        if not Path(uri[len("file://"):]).is_dir():
            raise InputNotFoundError(f"MLflow tracking store not found: {uri[len('file://'):]}")
    else:
        raise UserError(f"mlflow://{uri}: only local stores are supported (a folder, file:// or sqlite:///)")
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        versions = sorted(client.search_model_versions(), key=lambda v: (v.name, int(v.version)))
    except Exception as exc:
        raise UserError(f"cannot open the MLflow registry at {uri}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    out: list[RegistryModel] = []
    for v in versions:
        try:
            where = str(client.get_model_version_download_uri(v.name, v.version))
            if where.startswith("file://"):
                where = where[len("file://"):]
            local = Path(where) if "://" not in where else Path(
                mlflow.artifacts.download_artifacts(artifact_uri=where, tracking_uri=uri))
            if not local.exists():
                raise FileNotFoundError(where)
        except Exception as exc:
            out.append(RegistryModel(name=f"{v.name}/{v.version}", path=str(v.source),
                                     error=f"cannot fetch the model's files: {type(exc).__name__}"))
            continue
        files = [p for p in _walk(local) if _is_model_file(p)] if local.is_dir() else [local]
        if not files:
            out.append(RegistryModel(name=f"{v.name}/{v.version}", path=str(local),
                                     error="no model file among its artifacts"))
            continue
        fmts = {str(p): _sniff(p) for p in files}
        loadable = [p for p in files if fmts[str(p)] in LOADABLE_FORMATS]
        main = loadable[0] if loadable else files[0]
        tags = dict(v.tags or {})
        entry = {k: tags[f"modelshield.{k}"] for k in ("data", "train", "target", "sensitive")
                 if tags.get(f"modelshield.{k}")}
        spec = _data_spec(entry, Path.cwd(), f"{v.name}/{v.version} tags") if entry else None
        out.append(RegistryModel(name=f"{v.name}/{v.version}", path=str(main), files=tuple(map(str, files)),
                                 data=spec, scan_only=not loadable,
                                 note="" if loadable else f"{fmts[str(main)]}: scanned, not loaded",
                                 meta={"mlflow_name": v.name, "mlflow_version": str(v.version),
                                       "source": str(v.source)}))
    return out
