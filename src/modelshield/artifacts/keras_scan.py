"""Keras models: ``.keras`` archives (``config.json``) and legacy ``.h5`` (``model_config`` attribute).

Keras rebuilds a model by importing the ``module``/``class_name`` each config entry names; Lambda
layers carry marshalled Python bytecode (CVE-2024-3660); configs can name arbitrary modules
(CVE-2025-1550), download files through ``keras.utils.get_file`` (CVE-2025-8747) or switch safe
mode off (CVE-2025-9906, CVE-2025-9905). Only attributes and JSON are read (h5py, no TensorFlow).
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from modelshield.artifacts.pickle_scan import RawFinding, _Malformed
from modelshield.artifacts.policy import classify_global
from modelshield.findings import Severity

__all__ = ["scan_h5", "scan_keras_config"]

KERAS_MODULES = ("keras", "tf_keras", "tensorflow.keras", "tensorflow.python.keras", "keras_core",
                 "keras_hub", "keras_nlp", "keras_cv")
KERAS_DENY = {
    "get_file": "downloads files to disk (CVE-2025-8747)",
    "enable_unsafe_deserialization": "turns off safe mode (CVE-2025-9906)",
    "load_model": "loads another model file",
    "load_weights": "reads other files",
    "save_model": "writes files",
    "TFSMLayer": "loads a SavedModel from a path",
}
MAX_CONFIG = 64 << 20


def _is_keras(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in KERAS_MODULES)


def scan_keras_config(data: bytes | str, where: str = "config.json") -> list[RawFinding]:
    if len(data) > MAX_CONFIG:
        raise _Malformed("Keras config larger than the bound")
    try:
        cfg = json.loads(data)
    except Exception as exc:
        raise _Malformed(f"Keras config is not JSON ({type(exc).__name__})") from None
    out: list[RawFinding] = []
    seen: set[tuple[str, str]] = set()

    def add(sev: Severity, rule: str, title: str, detail: str, refs: tuple[str, ...] = (), **ev: Any) -> None:
        key = (rule, title)
        if key not in seen:
            seen.add(key)
            out.append(RawFinding(sev, rule, title, None, detail, {"config": where, **ev}, refs))

    stack: list[tuple[Any, int]] = [(cfg, 0)]
    steps = 0
    while stack:
        node, depth = stack.pop()
        steps += 1
        if depth > 200 or steps > 2_000_000:
            raise _Malformed("Keras config nested too deeply / too large")
        if isinstance(node, list):
            stack.extend((x, depth + 1) for x in node)
            continue
        if isinstance(node, str):
            if "enable_unsafe_deserialization" in node:
                add(Severity.CRITICAL, "artifact.keras.unsafe-deserialization",
                    "config calls enable_unsafe_deserialization", "Turns safe mode off so that later "
                    "Lambda layers run (CVE-2025-9906).", ("CVE-2025-9906",))
            continue
        if not isinstance(node, dict):
            continue
        cls = node.get("class_name")
        module = node.get("module")
        if node.get("safe_mode") is False:
            add(Severity.CRITICAL, "artifact.keras.unsafe-deserialization", "config sets safe_mode=false",
                "Loading with safe mode off runs Lambda bytecode.", ("CVE-2025-9905",))
        if cls in ("Lambda", "__lambda__") or node.get("function_type") == "lambda":
            add(Severity.CRITICAL, "artifact.keras.lambda", "Lambda layer with serialized Python code",
                "Lambda layers are marshalled bytecode or function references; loading runs them "
                "(CVE-2024-3660, CVE-2025-9905 for .h5 files).", ("CVE-2024-3660", "CVE-2025-9905"),
                layer=str(node.get("name") or (node.get("config") or {}).get("name", ""))[:200]
                if isinstance(node.get("config", {}), dict) else "")
        if isinstance(module, str) and isinstance(cls, str):
            target = node.get("config") if cls == "function" and isinstance(node.get("config"), str) else cls
            name = str(target)
            if _is_keras(module):
                if KERAS_DENY.get(name):
                    add(Severity.CRITICAL, "artifact.keras.unsafe-reference", f"config references {module}.{name}",
                        KERAS_DENY[name], ("CVE-2025-8747",), module=module, name=name)
            else:
                verdict = classify_global(module, name)
                sev = Severity.CRITICAL if verdict.kind == "deny" else Severity.HIGH  # off the allowlist
                if verdict.kind != "allow":
                    add(sev, "artifact.keras.unsafe-reference", f"config references {module}.{name}",
                        f"Keras imports this when loading: {verdict.reason} (CVE-2025-1550).",
                        ("CVE-2025-1550",), module=module, name=name)
        reg = node.get("registered_name")
        if isinstance(reg, str) and reg and not isinstance(module, str) and ">" in reg:
            add(Severity.MEDIUM, "artifact.keras.unsafe-reference", f"config needs custom object {reg!r}",
                "A custom class must be registered (its code runs) to load this model.", registered_name=reg)
        for v in node.values():
            if isinstance(v, (dict, list, str)):
                stack.append((v, depth + 1))
    return out


def scan_h5(fh: BinaryIO) -> list[RawFinding]:
    try:
        import h5py  # lazy: h5py is optional; only Keras .h5 files need it
    except ImportError:  # pragma: no cover - h5py is installed with the keras extra
        return [RawFinding(Severity.HIGH, "artifact.archive.unsupported", "HDF5 file: h5py is not installed",
                           0, "Install h5py (pip install 'modelshield[keras]') to inspect Keras .h5 files.")]
    out: list[RawFinding] = []
    try:
        with h5py.File(fh, "r") as f:
            for key in ("model_config", "training_config"):
                if key in f.attrs:
                    raw = f.attrs[key]
                    if isinstance(raw, bytes):
                        raw = raw.decode("utf-8", "replace")
                    out.extend(scan_keras_config(str(raw), where=f"/{key}"))
    except _Malformed:
        raise
    except Exception as exc:
        raise _Malformed(f"HDF5 file cannot be read ({type(exc).__name__})") from None
    return out
