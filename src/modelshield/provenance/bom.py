"""Build and check a CycloneDX 1.6 ML-BOM (see the package docstring).

Layout of a BOM made here::

    metadata.component   the model: type machine-learning-model, SHA-256 + SHA-512, format, size,
                         framework versions, audit results and signature facts as properties,
                         a modelCard naming the data sets and the audit's numeric metrics,
                         externalReferences to the audit report and the signature (with their hashes)
    components           the data sets (type data, hash, size, sensitive columns) and the installed
                         Python distributions (type library, purl pkg:pypi/NAME@VERSION)
    dependencies         the model depends on its framework's distributions and on modelshield

Property names live under ``modelshield:`` (:data:`BOM_PROPERTY_PREFIX`); values are strings, as the
schema requires. The builder fails closed: an audit report or a signature that names another model's
hash is refused (:class:`~modelshield.errors.IntegrityError`), not written into the BOM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from modelshield._version import __version__
from modelshield.errors import DataError, FormatError, InputNotFoundError, IntegrityError, UserError
from modelshield.formats import ENCRYPTED, detect_format_bytes, is_encrypted_head
from modelshield.protect.signing import verify

__all__ = ["BOM_PROPERTY_PREFIX", "SPEC_VERSION", "BomCheck", "HashCheck", "build_bom", "load_bom", "verify_bom"]

SPEC_VERSION = "1.6"
SCHEMA_URL = "http://cyclonedx.org/schema/bom-1.6.schema.json"
BOM_PROPERTY_PREFIX = "modelshield:"
#: CycloneDX algorithm name -> hashlib name; both are written and both are checked.
HASH_ALGORITHMS: dict[str, str] = {"SHA-256": "sha256", "SHA-512": "sha512"}
SEVERITIES = ("critical", "high", "medium", "low", "info")

#: Loader format -> the distributions that load it (their installed versions go into the BOM). Pickle-
#: based files are scikit-learn/joblib or torch objects: all of them are listed when installed.
FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxruntime"),
    "torch-zip": ("torch",),
    "torchscript": ("torch",),
    "pickle": ("scikit-learn", "joblib", "numpy"),
    "joblib-compressed": ("scikit-learn", "joblib", "numpy"),
    "safetensors": ("safetensors", "torch"),
    "npy": ("numpy",),
    "hdf5": ("h5py",),
    "modelshield-encrypted": ("cryptography",),
}
#: An audit report's ``model.framework`` -> distributions (adds to :data:`FRAMEWORKS`).
AUDIT_FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn",), "scikit-learn": ("scikit-learn",), "torch": ("torch",),
    "pytorch": ("torch",), "onnx": ("onnx", "onnxruntime"), "keras": ("keras",), "tensorflow": ("tensorflow",),
}

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _hash_file(path: Path, chunk: int = 1 << 20) -> tuple[dict[str, str], int]:
    """SHA-256 and SHA-512 of ``path`` in one streamed pass, and its size in bytes."""
    hs = {alg: hashlib.new(name) for alg, name in HASH_ALGORITHMS.items()}
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            size += len(block)
            for h in hs.values():
                h.update(block)
    return {alg: h.hexdigest() for alg, h in hs.items()}, size


def _cdx_hashes(digests: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"alg": alg, "content": digests[alg]} for alg in HASH_ALGORITHMS if alg in digests]


def _prop(name: str, value: object) -> dict[str, str]:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return {"name": BOM_PROPERTY_PREFIX + name, "value": str(value)}


def _input_file(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"{what} not found: {p}")
    if not p.is_file():
        raise UserError(f"{what} {p} is not a file (a BOM covers one model file; sign a folder with "
                        "'modelshield protect sign' and give its signature instead)")
    return p


# -- Python distributions --------------------------------------------------------------------------


def _normalise(name: str) -> str:
    """PEP 503 normalised name (also the purl name for PyPI)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> list[tuple[str, str]]:
    """``(normalised name, version)`` of every distribution importable here, sorted, first one on
    ``sys.path`` winning when a name is installed twice (what ``import`` would pick)."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        seen.setdefault(_normalise(name), dist.version)
    return sorted(seen.items())


def _versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``names`` (normalised), those not installed left out."""
    out = {}
    for n in names:
        try:
            out[_normalise(n)] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def _purl(name: str, version: str) -> str:
    return f"pkg:pypi/{quote(name, safe='')}@{quote(version, safe='')}"


def _library(name: str, version: str) -> dict[str, Any]:
    purl = _purl(name, version)
    return {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}


# -- audit report ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Audit:
    properties: list[dict[str, str]]
    metrics: list[dict[str, str]]
    data: list[dict[str, Any]]
    frameworks: tuple[str, ...]
    reference: dict[str, Any] | None


def _load_report(report: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    if isinstance(report, Mapping):
        return dict(report), None
    if not isinstance(report, (str, Path)):
        raise FormatError(f"audit report must be a path or a parsed report (dict), not {type(report).__name__}")
    p = _input_file(report, "audit report")
    try:
        obj = json.loads(p.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"audit report {p} is not JSON",
                          cli_hint="write one with 'modelshield audit --json'") from None
    return obj, p


def _audit(report: str | Path | Mapping[str, Any], model_sha256: str) -> _Audit:
    obj, path = _load_report(report)
    runs = obj.get("runs") if isinstance(obj, dict) else None
    if not isinstance(runs, list) or not isinstance(obj.get("passed"), bool):
        raise FormatError("audit report is not a modelshield audit report (no 'runs' / 'passed')",
                          cli_hint="write one with 'modelshield audit --json'")
    named = [r for r in runs if isinstance(r, dict) and isinstance(r.get("model"), dict)
             and isinstance(r["model"].get("sha256"), str)]
    mine = [r for r in named if hmac.compare_digest(r["model"]["sha256"].lower(), model_sha256)]
    if not mine:
        others = ", ".join(sorted({r["model"]["sha256"][:16] for r in named})) or "none"
        raise IntegrityError(f"the audit report is not about this model: it names model SHA-256 {others}..., "
                             f"the model's is {model_sha256[:16]}...; audit this model file and try again")
    props: list[dict[str, str]] = []
    if path is not None:
        props.append(_prop("audit:report", path.name))
    props.append(_prop("audit:passed", all(bool(r.get("passed")) for r in mine)))
    for key, name in (("created", "audit:created"),):
        if isinstance(obj.get(key), str):
            props.append(_prop(name, obj[key]))
    tool = obj.get("tool")
    if isinstance(tool, dict) and tool.get("version"):
        props.append(_prop("audit:tool-version", tool["version"]))
    policy = obj.get("policy")
    if isinstance(policy, dict) and policy.get("fail_on"):
        props.append(_prop("audit:fail-on", policy["fail_on"]))
    counts = dict.fromkeys(SEVERITIES, 0)
    metrics: list[dict[str, str]] = []
    data: list[dict[str, Any]] = []
    frameworks: list[str] = []
    several = len(mine) > 1
    for run in mine:
        label = f"{run.get('label', '?')}:" if several else ""
        fw = str(run["model"].get("framework") or "").lower()
        frameworks.extend(AUDIT_FRAMEWORKS.get(fw, ()))
        gate = run.get("gate") if isinstance(run.get("gate"), dict) else {}
        for reason in gate.get("reasons") or ():
            props.append(_prop(f"audit:{label}gate-reason", reason))
        for res in run.get("results") or ():
            if not isinstance(res, dict) or "check" not in res:
                raise FormatError("audit report: a result without a 'check' name")
            check = str(res["check"])
            props.append(_prop(f"audit:{label}check:{check}", res.get("status", "unknown")))
            for f in res.get("findings") or ():
                sev = str(f.get("severity", "")).lower() if isinstance(f, dict) else ""
                if sev not in counts:
                    raise FormatError(f"audit report: finding with unknown severity {sev!r}")
                counts[sev] += 1
            for mname, value in sorted((res.get("metrics") or {}).items()):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue  # only scalar numbers are performance metrics
                metrics.append({"type": f"{check}.{mname}", "value": repr(value)}
                               | ({"slice": run.get("label", "")} if several else {}))
        if isinstance(run.get("data"), dict):
            data.append(run["data"])
    props.extend(_prop(f"audit:severity:{s}", n) for s, n in counts.items())
    ref = None
    if path is not None:
        digests, _ = _hash_file(path)
        ref = {"type": "component-analysis-report", "url": path.name,
               "comment": "modelshield audit report (JSON)", "hashes": _cdx_hashes(digests)}
    return _Audit(properties=props, metrics=metrics, data=data, frameworks=tuple(frameworks), reference=ref)


# -- data sets -------------------------------------------------------------------------------------


def _data_component(path: Path | None, audited: Mapping[str, Any] | None) -> dict[str, Any]:
    name = path.name if path is not None else str(audited.get("name") or audited.get("source") or "data")  # type: ignore[union-attr]
    props: list[dict[str, str]] = []
    comp: dict[str, Any] = {"type": "data", "name": name}
    if path is not None:
        digests, size = _hash_file(path)
        comp["bom-ref"] = f"data:{name}:{digests['SHA-256'][:16]}"
        comp["hashes"] = _cdx_hashes(digests)
        props.append(_prop("data:size", size))
    else:
        comp["bom-ref"] = f"data:{name}:{str(audited.get('sha256', ''))[:16] or 'audit'}"  # type: ignore[union-attr]
        props.append(_prop("data:source", "audit-report (file not given: no file hash)"))
    sensitive: list[str] = []
    if audited is not None:
        for key in ("rows", "features"):
            if isinstance(audited.get(key), int):
                props.append(_prop(f"data:{key}", audited[key]))
        if isinstance(audited.get("sha256"), str):
            props.append(_prop("data:content-sha256", audited["sha256"]))
        sensitive = sorted(str(s) for s in audited.get("sensitive") or ())
    entry: dict[str, Any] = {"type": "dataset", "name": name}
    if path is not None:
        entry["contents"] = {"url": path.name}
    if sensitive:
        entry["sensitiveData"] = sensitive
        entry["classification"] = "sensitive"
    comp["data"] = [entry]
    comp["properties"] = props
    return comp


def _audited_for(path: Path, audited: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The audit's description of the data file ``path`` (matched by file name), if any."""
    for d in audited:
        for key in ("source", "name"):
            if isinstance(d.get(key), str) and Path(d[key]).name == path.name:
                return d
    return None


# -- signature -------------------------------------------------------------------------------------


def _signature(sig: str | Path, model: Path, model_sha256: str, public_key: str | Path | None,
               ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The external reference to ``sig`` and properties saying what it covers; refuses (exit 3) a
    signature that names another file's digest, or one that fails verification under ``public_key``."""
    p = _input_file(sig, "signature")
    digests, _ = _hash_file(p)
    props = [_prop("signature:file", p.name)]
    try:
        bundle = json.loads(p.read_bytes())
        payload = base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True)
        stmt = json.loads(payload)
        predicate = stmt["predicate"]
        resources = predicate["resources"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, binascii.Error):
        raise FormatError(f"signature {p} is not a model-signing (Sigstore bundle, DSSE) signature; "
                          "make one with 'modelshield protect sign'") from None
    props.append(_prop("signature:media-type", bundle.get("mediaType", "")))
    props.append(_prop("signature:predicate-type", stmt.get("predicateType", "")))
    for s in stmt.get("subject") or ():
        if isinstance(s, dict) and isinstance(s.get("digest"), dict) and "sha256" in s["digest"]:
            props.append(_prop("signature:subject-sha256", s["digest"]["sha256"]))
    files = [r for r in resources if isinstance(r, dict) and r.get("algorithm") == "sha256"]
    if len(files) == 1 and isinstance(files[0].get("digest"), str):
        if not hmac.compare_digest(files[0]["digest"].lower(), model_sha256):
            raise IntegrityError(f"signature {p} is for another file (SHA-256 {files[0]['digest'][:16]}...), "
                                 f"not this model ({model_sha256[:16]}...)")
        props.append(_prop("signature:covers-model-sha256", True))
    else:  # shards or several files: only a verification can tell
        props.append(_prop("signature:covers-model-sha256", "unchecked (sharded or multi-file signature)"))
    if public_key is not None:
        # lazy: protect.keys pulls in cryptography; only signed BOMs need it
        from modelshield.protect.keys import load_public_key
        v = verify(model, load_public_key(public_key), signature=p)  # raises IntegrityError when it fails
        props.append(_prop("signature:verified", True))
        props.append(_prop("signature:key-type", v.key_type))
    else:
        props.append(_prop("signature:verified", "no (no public key given)"))
    ref = {"type": "digital-signature", "url": p.name, "comment": "model-signing signature of the model",
           "hashes": _cdx_hashes(digests)}
    return ref, props


# -- the BOM ---------------------------------------------------------------------------------------


def build_bom(
    model_path: str | Path,
    audit_report_json: str | Path | Mapping[str, Any] | None = None,
    signature: str | Path | None = None,
    *,
    data: Iterable[str | Path] = (),
    public_key: str | Path | None = None,
    dependencies: Literal["environment", "none"] = "environment",
    clock: Clock = _utc_now,
    serial: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A CycloneDX 1.6 ML-BOM (a JSON-ready dict) for the model file ``model_path``.

    Parameters
    ----------
    model_path : the model file (any format the loader knows, encrypted containers included).
    audit_report_json : a ``modelshield audit --json`` report (path or parsed dict). Its run for this
        model (matched by SHA-256) gives the pass/fail, per-check statuses, severity counts, numeric
        metrics and the data sets' rows and sensitive columns. A report about another model is refused.
    signature : a model-signing signature of the model: referenced with its hashes; one naming another
        file's digest is refused. With ``public_key`` it is also verified.
    data : data set files: hashed, sized and matched by name to the audit's data.
    dependencies : ``"environment"`` lists every installed distribution; ``"none"`` lists none.
    clock, serial : injectable time and serial number (tests, reproducible BOMs).

    Raises
    ------
    InputNotFoundError, FormatError, UserError (exit 2); IntegrityError (exit 3).
    """
    if dependencies not in ("environment", "none"):
        raise UserError(f"dependencies must be 'environment' or 'none', not {dependencies!r}")
    model = _input_file(model_path, "model")
    data_paths = [_input_file(d, "data set") for d in data]
    digests, size = _hash_file(model)
    with model.open("rb") as fh:  # the loader's format, from the content
        raw = fh.read()
    fmt = ENCRYPTED if is_encrypted_head(raw[:64]) else detect_format_bytes(raw)
    del raw
    sha256 = digests["SHA-256"]
    audit = _audit(audit_report_json, sha256) if audit_report_json is not None else None

    frameworks = [*FRAMEWORKS.get(fmt, ()), *(audit.frameworks if audit else ())]
    installed = (dict(installed_distributions()) if dependencies == "environment"
                 else _versions([*frameworks, "modelshield"]))
    framework_refs: list[str] = []
    props = [_prop("model:format", fmt), _prop("model:size", size), _prop("model:file", model.name)]
    for fw in dict.fromkeys(_normalise(f) for f in frameworks):
        if fw in installed:
            props.append(_prop(f"framework:{fw}", installed[fw]))
            framework_refs.append(_purl(fw, installed[fw]))
    ext_refs: list[dict[str, Any]] = []
    if audit is not None:
        props.extend(audit.properties)
        if audit.reference:
            ext_refs.append(audit.reference)
    if signature is not None:
        ref, sig_props = _signature(signature, model, sha256, public_key)
        ext_refs.append(ref)
        props.extend(sig_props)
    elif public_key is not None:
        raise UserError("a public key verifies a signature: give the signature too")

    audited = list(audit.data) if audit else []
    data_components = []
    for p in data_paths:
        found = _audited_for(p, audited)
        data_components.append(_data_component(p, found))
        if found is not None:
            audited.remove(found)
    data_components.extend(_data_component(None, d) for d in audited)
    if len({c["bom-ref"] for c in data_components}) != len(data_components):
        raise DataError("the same data set is given twice")

    model_ref = f"model:{model.name}:{sha256[:16]}"
    card: dict[str, Any] = {"bom-ref": f"{model_ref}:model-card"}
    if data_components:
        card["modelParameters"] = {"datasets": [{"ref": c["bom-ref"]} for c in data_components]}
    if audit is not None and audit.metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": audit.metrics}
    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": model.name,
        "version": f"sha256:{sha256}",
        "hashes": _cdx_hashes(digests),
        "modelCard": card,
        "properties": props,
    }
    if ext_refs:
        component["externalReferences"] = ext_refs

    libraries = [_library(n, v) for n, v in installed.items()] if dependencies == "environment" else []
    lib_refs = {c["bom-ref"] for c in libraries}
    own = _purl("modelshield", installed.get("modelshield", __version__))
    depends = sorted({r for r in [*framework_refs, own] if r in lib_refs})
    bom: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": (serial or uuid.uuid4()).urn,
        "version": 1,
        "metadata": {
            "timestamp": clock().astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "tools": {"components": [{"type": "application", "name": "modelshield", "version": __version__}]},
            "component": component,
        },
        "components": [*data_components, *libraries],
        "dependencies": [{"ref": model_ref, "dependsOn": depends}] if depends else [{"ref": model_ref}],
    }
    return bom


# -- checking --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HashCheck:
    alg: str
    expected: str
    actual: str
    matches: bool


@dataclass(frozen=True, kw_only=True)
class BomCheck:
    """The outcome of :func:`verify_bom`: ``ok`` only when every hash the BOM gives (of those known
    here) matches, and at least one was checked."""

    model: str
    component: str
    hashes: tuple[HashCheck, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(self.hashes) and all(h.matches for h in self.hashes)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "component": self.component, "ok": self.ok,
                "hashes": [vars(h) for h in self.hashes]}


def load_bom(path: str | Path) -> dict[str, Any]:
    """A BOM file as a dict; not JSON or not CycloneDX is a :class:`FormatError` (exit 2)."""
    p = _input_file(path, "BOM")
    try:
        bom = json.loads(p.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"BOM {p} is not JSON") from None
    _check_cyclonedx(bom, str(p))
    return bom


def _check_cyclonedx(bom: Any, where: str) -> None:
    if not isinstance(bom, dict) or bom.get("bomFormat") != "CycloneDX":
        raise FormatError(f"{where} is not a CycloneDX BOM (no bomFormat 'CycloneDX')")
    if not str(bom.get("specVersion", "")).startswith("1."):
        raise FormatError(f"{where}: unsupported CycloneDX specVersion {bom.get('specVersion')!r}")


def _model_components(bom: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    meta = bom.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("component"), dict):
        found.append(meta["component"])
    found.extend(c for c in bom.get("components") or () if isinstance(c, dict))
    return [c for c in found if c.get("type") == "machine-learning-model"]


def verify_bom(bom: Mapping[str, Any] | str | Path, model_path: str | Path) -> BomCheck:
    """Recompute the model's SHA-256/SHA-512 and compare them, in constant time, with the BOM's
    machine-learning-model component. Returns a :class:`BomCheck` (``ok`` False on any mismatch).

    A BOM with no model component, several of them, or no hash this code knows (SHA-256, SHA-512) is a
    :class:`FormatError`: nothing could be checked, and an unchecked BOM never passes.
    """
    if not isinstance(bom, Mapping):
        bom = load_bom(bom)
    else:
        _check_cyclonedx(bom, "the BOM")
    model = _input_file(model_path, "model")
    models = _model_components(bom)
    if len(models) != 1:
        raise FormatError(f"the BOM has {len(models)} machine-learning-model components; expected exactly one")
    comp = models[0]
    wanted = {}
    for h in comp.get("hashes") or ():
        if isinstance(h, dict) and h.get("alg") in HASH_ALGORITHMS and isinstance(h.get("content"), str):
            if h["alg"] in wanted and wanted[h["alg"]] != h["content"].lower():
                raise FormatError(f"the BOM gives two different {h['alg']} hashes for the model")
            wanted[h["alg"]] = h["content"].lower()
    if not wanted:
        raise FormatError("the BOM's model component has no SHA-256 or SHA-512 hash to check")
    actual, _ = _hash_file(model)
    checks = tuple(HashCheck(alg=alg, expected=exp, actual=actual[alg],
                             matches=hmac.compare_digest(exp.encode(), actual[alg].encode()))
                   for alg, exp in wanted.items())
    return BomCheck(model=str(model), component=str(comp.get("name", "")), hashes=checks)
