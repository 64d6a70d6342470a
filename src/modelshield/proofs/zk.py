"""Setup, prove and verify zero-knowledge proofs of inference for an ONNX model, on ezkl.

A setup folder holds ezkl's circuit settings, the compiled circuit, the SRS, the verifying and proving
keys, and ``manifest.json``, which binds them to the model: the SHA-256 of the ONNX file and of its weights
(every initializer and ``Constant`` node, canonically encoded), and the SHA-256 of every file in the folder.
A proof is a JSON envelope around ezkl's proof that names the model hash, the verifying key's hash and the
public output; :func:`verify` accepts it only when ezkl verifies it with the folder's key *and* every
binding holds (fail closed: anything unexpected is a refusal, :class:`~modelshield.errors.IntegrityError`).

Weights are bound to the proof either way the ``weights`` visibility is set:

* ``fixed`` (default): the weights are constants of the circuit, so the verifying key commits to them
  (halo2 verifying keys carry commitments to the fixed columns); the manifest binds that key's hash to the
  model hash. Cheap: a 64-8-10 MLP needs 2^11 rows.
* ``hashed``: the weights are private witnesses and their Poseidon hash is a public value of every proof;
  :func:`verify` compares it with the hash recorded at setup (ezkl alone would accept *any* weights under
  the same key). About 15x the rows (2^15 for the same MLP), because the circuit hashes every weight.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._io import check_output_path, file_sha256, write_json
from modelshield.data.loaders import load_dataset
from modelshield.errors import (
    DataError,
    FormatError,
    InputNotFoundError,
    IntegrityError,
    MissingExtraError,
    OutputError,
    UserError,
)

__all__ = [
    "INSECURE_SRS",
    "INSECURE_SRS_WARNING",
    "Manifest",
    "ProofResult",
    "SetupResult",
    "Verdict",
    "Visibility",
    "load_manifest",
    "model_hashes",
    "prove",
    "setup",
    "verify",
]

SETUP_FORMAT = "modelshield-zk-setup/1"
PROOF_FORMAT = "modelshield-zk-proof/1"
MANIFEST = "manifest.json"
#: Files of a setup folder (role -> name). The verifier needs settings, vk and srs; the prover all of them.
FILES: dict[str, str] = {"settings": "settings.json", "compiled": "model.compiled", "vk": "vk.key",
                         "pk": "pk.key", "srs": "kzg.srs"}
VERIFY_FILES = ("settings", "vk", "srs")
#: The ``srs`` field of a manifest and a proof when the SRS was generated here (no ``--srs`` given).
INSECURE_SRS = "insecure-test"
SUPPLIED_SRS = "supplied"
INSECURE_SRS_WARNING = (
    "WARNING: insecure test SRS (srs: insecure-test): it was generated on this machine, so whoever ran setup "
    "knows its secret and can forge proofs; use an SRS file from a public ceremony for real use")

INPUT_CHOICES = ("private", "public", "hashed")
OUTPUT_CHOICES = ("public",)  # the proof must carry the output it vouches for
WEIGHT_CHOICES = ("fixed", "hashed")  # "private" weights would bind the proof to no model at all
#: Range checks decomposed in base 128 with 4 legs (ezkl's default is base 2^14, 2 legs): the lookup table
#: then needs 128 rows instead of 16384, which took a 64-8-10 MLP from 2^15 to 2^11 rows (measured here).
DECOMP_BASE = 128
DECOMP_LEGS = 4
#: Fixed-point scales (bits) calibration may choose from; one or two keep calibration under a second.
CALIBRATION_SCALES: tuple[int, ...] = (8,)
CALIBRATION_ROWS = 32
_WEIGHTS_DOMAIN = b"modelshield-onnx-weights/1\0"
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------------------------- data types
@dataclass(frozen=True, kw_only=True)
class Visibility:
    """What a proof reveals: the input (``private``, ``public`` or ``hashed``), the output (``public``) and
    how the weights are bound (``fixed`` in the verifying key or ``hashed`` as a public Poseidon hash)."""

    input: str = "private"
    output: str = "public"
    weights: str = "fixed"

    def validate(self) -> Visibility:
        for what, value, allowed in (("input", self.input, INPUT_CHOICES), ("output", self.output, OUTPUT_CHOICES),
                                     ("weights", self.weights, WEIGHT_CHOICES)):
            if value not in allowed:
                raise UserError(f"{what} visibility {value!r} is not one of: {', '.join(allowed)}",
                                cli_hint=f"fix --{what}-visibility")
        return self


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """``manifest.json`` of a setup folder: what the keys were made from and the hash of every file."""

    model_name: str
    model_sha256: str
    weights_sha256: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    visibility: Visibility
    logrows: int
    srs: str
    files: dict[str, str]
    ezkl_version: str
    weights_commitment: list[str] | None = None
    created: str = ""
    format: str = SETUP_FORMAT

    @property
    def insecure_srs(self) -> bool:
        return self.srs != SUPPLIED_SRS

    @property
    def settings_sha256(self) -> str:
        return self.files["settings"]

    @property
    def vk_sha256(self) -> str:
        return self.files["vk"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"], d["output_shape"] = list(self.input_shape), list(self.output_shape)
        d["settings_sha256"], d["vk_sha256"] = self.settings_sha256, self.vk_sha256
        return {"format": d.pop("format"), **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "manifest") -> Manifest:
        if not isinstance(d, Mapping) or d.get("format") != SETUP_FORMAT:
            raise FormatError(f"{where}: not a modelshield proof setup manifest ({SETUP_FORMAT})")
        try:
            files = {k: str(d["files"][k]) for k in FILES}
            vis = d["visibility"]
            m = cls(model_name=str(d["model_name"]), model_sha256=str(d["model_sha256"]),
                    weights_sha256=str(d["weights_sha256"]), input_shape=tuple(int(v) for v in d["input_shape"]),
                    output_shape=tuple(int(v) for v in d["output_shape"]),
                    visibility=Visibility(input=str(vis["input"]), output=str(vis["output"]),
                                          weights=str(vis["weights"])).validate(),
                    logrows=int(d["logrows"]), srs=str(d["srs"]), files=files, ezkl_version=str(d["ezkl_version"]),
                    weights_commitment=None if d.get("weights_commitment") is None
                    else [str(v) for v in d["weights_commitment"]],
                    created=str(d.get("created", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{where}: incomplete or malformed manifest ({type(exc).__name__}: {exc})") from None
        for name, value in [("model_sha256", m.model_sha256), ("weights_sha256", m.weights_sha256), *files.items()]:
            if not _HEX64.fullmatch(value):
                raise FormatError(f"{where}: {name} is not a SHA-256 hex digest")
        if m.visibility.weights == "hashed" and not m.weights_commitment:
            raise FormatError(f"{where}: hashed weights but no weights_commitment")
        return m


@dataclass(frozen=True, kw_only=True)
class SetupResult:
    """What :func:`setup` wrote: the setup folder, its manifest, seconds per stage and file sizes."""

    path: Path
    manifest: Manifest
    timings: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ProofResult:
    """What :func:`prove` wrote: the proof file, the output it vouches for (and its class), the model it is
    bound to, the SRS kind, seconds per stage and the file's size."""

    path: Path
    output: list[float]
    predicted_class: int
    model_sha256: str
    srs: str
    timings: dict[str, float] = field(default_factory=dict)
    size: int = 0


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A proof that verified (a refused one raises :class:`~modelshield.errors.IntegrityError`)."""

    valid: bool
    output: list[float]
    predicted_class: int
    model_sha256: str
    srs: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------- helpers
def _ezkl() -> Any:
    try:
        import ezkl  # heavy optional extra (a Rust extension): imported only when a proof command runs
    except ImportError:
        raise MissingExtraError("ezkl", "proofs", "zero-knowledge proofs") from None
    return ezkl


@contextlib.contextmanager
def _quiet() -> Iterator[Path]:
    """Silence ezkl's own printing (its Rust code writes tables straight to file descriptors 1 and 2)."""
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            for fd in (1, 2):
                os.dup2(sink.fileno(), fd)
            yield Path(os.devnull)
        finally:
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)


def _call(error: Callable[[str], Exception], what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one ezkl step; any failure (ezkl raises RuntimeError, a Rust panic raises a BaseException
    subclass) becomes ``error`` with ``what`` and ezkl's first line."""
    try:
        with _quiet():
            return fn(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # pyo3 raises a Rust panic as PanicException, not an Exception
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        op = re.search(r"Unimplemented\((\w+)\)", text)
        if op:
            raise error(f"{what}: unsupported operator {op.group(1)} (ezkl cannot put it in a circuit)") from None
        raise error(f"{what}: {text[:300]}") from None


def _read_onnx(path: Path) -> Any:
    if not path.is_file():
        raise InputNotFoundError(f"model not found: {path}")
    import onnx  # lazy: parsing a protobuf runs no code

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise FormatError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    if not m.graph.node:
        raise FormatError(f"{path}: not an ONNX model (no graph nodes)")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer):
        raise FormatError(f"{path}: weights stored in external data files are not supported; save the model "
                          "as one file")
    return m


def _shape(value_info: Any, what: str, path: Path) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    out: list[int] = []
    for i, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        elif i == 0:
            out.append(1)  # a symbolic batch dimension: one example per proof
        else:
            raise FormatError(f"{path}: {what} {value_info.name!r} has a symbolic dimension {i}; export the "
                              "model with a fixed shape")
    if not out:
        raise FormatError(f"{path}: {what} {value_info.name!r} has no shape")
    return tuple(out)


def _io_shapes(m: Any, path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    inits = {t.name for t in m.graph.initializer}
    inputs = [v for v in m.graph.input if v.name not in inits]
    if len(inputs) != 1 or len(m.graph.output) != 1:
        raise FormatError(f"{path}: proofs need a model with one input and one output "
                          f"(it has {len(inputs)} and {len(m.graph.output)})")
    return _shape(inputs[0], "input", path), _shape(m.graph.output[0], "output", path)


def _weights_sha256(m: Any) -> str:
    """SHA-256 over every initializer (name, dtype, shape, little-endian bytes, sorted by name) and every
    ``Constant`` node's attributes: equal for two files that carry the same weights in another layout."""
    from onnx import AttributeProto, numpy_helper  # lazy, as in _read_onnx

    h = hashlib.sha256(_WEIGHTS_DOMAIN)

    def put(*parts: bytes) -> None:
        for part in parts:
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)

    for t in sorted(m.graph.initializer, key=lambda t: t.name):
        arr = np.ascontiguousarray(numpy_helper.to_array(t))
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        put(b"init", t.name.encode(), arr.dtype.str.encode(), repr(arr.shape).encode(), arr.tobytes())
    for node in sorted((n for n in m.graph.node if n.op_type == "Constant"), key=lambda n: tuple(n.output)):
        for a in sorted(node.attribute, key=lambda a: a.name):
            if a.type == AttributeProto.TENSOR:
                arr = np.ascontiguousarray(numpy_helper.to_array(a.t))
                payload = arr.dtype.str.encode() + repr(arr.shape).encode() + arr.tobytes()
            else:
                payload = a.SerializeToString(deterministic=True)
            put(b"const", ",".join(node.output).encode(), a.name.encode(), payload)
    return h.hexdigest()


def model_hashes(model: str | Path) -> dict[str, str]:
    """``{"model_sha256": ..., "weights_sha256": ...}`` of an ONNX file (the hashes a setup binds)."""
    p = Path(model)
    m = _read_onnx(p)
    return {"model_sha256": file_sha256(p), "weights_sha256": _weights_sha256(m)}


def _check_rows(X: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    width = math.prod(shape)
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.number) or X.dtype == np.complex128:
        raise DataError(f"{where}: values must be numbers (dtype {X.dtype})")
    if X.ndim < 1 or len(X) == 0:
        raise DataError(f"{where}: no rows")
    rows = X.reshape(len(X), -1)
    if rows.shape[1] != width:
        raise DataError(f"{where}: rows of {rows.shape[1]} values; the model takes input of shape {shape} "
                        f"({width} values)")
    if not np.isfinite(rows).all():
        raise DataError(f"{where}: missing or non-finite values")
    return rows.astype(np.float64)


def _input_json(rows: np.ndarray, path: Path) -> None:
    path.write_text(json.dumps({"input_data": [[float(v) for v in rows.reshape(-1)]]}))


def _canonical_settings(path: Path) -> None:
    """Make ezkl's settings a function of the model, data and options alone: ezkl stamps them with the time
    and writes its set-like lists in hash-map order, and the verifying key depends on the file, so without
    this the same inputs give another verifying key on every run (a verifier could not rebuild it)."""
    s = json.loads(path.read_text())
    s["timestamp"] = 0
    for key in ("required_range_checks", "required_lookups"):
        if isinstance(s.get(key), list):
            s[key] = sorted(s[key], key=lambda v: json.dumps(v, sort_keys=True))
    path.write_text(json.dumps(s, sort_keys=True))


def _files_sha256(folder: Path, roles: tuple[str, ...] = tuple(FILES)) -> dict[str, str]:
    return {r: file_sha256(folder / FILES[r]) for r in roles}


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(str(a).encode(), str(b).encode())


def _read_json(path: Path, missing: str, malformed: str) -> Any:
    """The JSON document at ``path``: :class:`InputNotFoundError` (``missing``) when it is not a file,
    :class:`FormatError` (``malformed``, formatted with ``path`` and ``exc``) when it does not parse."""
    if not path.is_file():
        raise InputNotFoundError(missing)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(malformed.format(path=path, exc=exc)) from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -------------------------------------------------------------------------------------------------- setup
def _prepare_out(out: Path, force: bool, inputs: list[Path]) -> None:
    if out.exists() or out.is_symlink():
        if not force:
            raise OutputError.exists(out, what="output folder", hint="pass --force to replace it")
        if not out.is_dir() or out.is_symlink():
            raise OutputError(f"output {out} is not a folder")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise OutputError(f"only a proof setup folder (one with {MANIFEST}) is replaced; {out} holds other files",
                              cli_hint="choose another --out")
        for p in inputs:
            if p.resolve().is_relative_to(out.resolve()):
                raise UserError(f"{p} is inside the output folder {out}, which replacing it would delete")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {out}: folder {parent} is not writable")


def _install(work: Path, out: Path) -> None:
    """Move the finished folder into place; an old one (``force``) is replaced only now."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out, old)
        os.rename(work, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(work, out)


def setup(model: str | Path, data: str | Path | np.ndarray, out: str | Path, *, srs: str | Path | None = None,
          visibility: Visibility | None = None, force: bool = False,
          calibration_rows: int = CALIBRATION_ROWS) -> SetupResult:
    """Build the circuit and keys of ``model`` (ONNX) in the folder ``out``.

    ``data``: calibration rows (an NPZ/CSV/Parquet file read by :func:`~modelshield.data.loaders.load_dataset`,
    or an array) that set ezkl's fixed-point scales. ``srs``: a structured reference string from a public
    ceremony (KZG, at least 2^logrows points); without one an SRS is generated here and the manifest says
    ``srs: insecure-test``. ``force``: replace an existing setup folder. Written all or nothing.
    """
    vis = (visibility or Visibility()).validate()
    model_p, out_p = Path(model), Path(out)
    srs_p = Path(srs) if srs is not None else None
    if calibration_rows < 1:
        raise UserError("calibration_rows must be at least 1")
    onnx_model = _read_onnx(model_p)
    input_shape, output_shape = _io_shapes(onnx_model, model_p)
    if srs_p is not None and not srs_p.is_file():
        raise InputNotFoundError(f"SRS file not found: {srs_p}")
    if isinstance(data, np.ndarray):
        X, where = data, "calibration data"
    else:
        X, where = load_dataset(data).X, str(data)
    rows = _check_rows(X, input_shape, where)[:calibration_rows]
    _prepare_out(out_p, force, [model_p, *([Path(data)] if not isinstance(data, np.ndarray) else []),
                                *([srs_p] if srs_p else [])])
    ezkl = _ezkl()
    hashes = {"model_sha256": file_sha256(model_p), "weights_sha256": _weights_sha256(onnx_model)}
    timings: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix=f".{out_p.name}.", dir=out_p.parent if str(out_p.parent) else "."))
    try:
        f = {role: str(work / name) for role, name in FILES.items()}
        what = f"ezkl cannot compile {model_p.name}"
        t = time.perf_counter()
        ra = ezkl.PyRunArgs()
        ra.input_visibility, ra.output_visibility, ra.param_visibility = vis.input, vis.output, vis.weights
        ra.decomp_base, ra.decomp_legs = DECOMP_BASE, DECOMP_LEGS
        _call(FormatError, what, ezkl.gen_settings, str(model_p), f["settings"], py_run_args=ra)
        timings["settings_s"] = time.perf_counter() - t
        cal = work / "calibration.json"
        _input_json(rows, cal)
        t = time.perf_counter()
        _call(FormatError, f"calibration of {model_p.name} failed", ezkl.calibrate_settings, str(cal),
              str(model_p), f["settings"], "resources", scales=list(CALIBRATION_SCALES))
        timings["calibrate_s"] = time.perf_counter() - t
        _canonical_settings(Path(f["settings"]))
        t = time.perf_counter()
        _call(FormatError, what, ezkl.compile_circuit, str(model_p), f["compiled"], f["settings"])
        timings["compile_s"] = time.perf_counter() - t
        logrows = int(json.loads(Path(f["settings"]).read_text())["run_args"]["logrows"])
        t = time.perf_counter()
        if srs_p is None:
            _call(OutputError, "cannot generate the test SRS", ezkl.gen_srs, f["srs"], logrows)
        else:
            shutil.copyfile(srs_p, f["srs"])
        timings["srs_s"] = time.perf_counter() - t
        t = time.perf_counter()
        _call(UserError if srs_p is not None else FormatError,
              f"key generation failed (the circuit needs an SRS of at least 2^{logrows} points)",
              ezkl.setup, f["compiled"], f["vk"], f["pk"], srs_path=f["srs"])
        timings["setup_s"] = time.perf_counter() - t
        # one witness on a calibration row: the circuit runs, and for hashed weights it gives their hash
        wit = work / "witness.json"
        _input_json(rows[:1], cal)
        _call(FormatError, what, ezkl.gen_witness, str(cal), f["compiled"], str(wit), vk_path=f["vk"],
              srs_path=f["srs"])
        commitment = None
        if vis.weights == "hashed":
            commitment = [str(v) for v in json.loads(wit.read_text())["processed_params"]["poseidon_hash"]]
        cal.unlink()
        wit.unlink()
        manifest = Manifest(model_name=model_p.name, **hashes, input_shape=input_shape, output_shape=output_shape,
                            visibility=vis, logrows=logrows, srs=INSECURE_SRS if srs_p is None else SUPPLIED_SRS,
                            files=_files_sha256(work), ezkl_version=str(getattr(ezkl, "__version__", "unknown")),
                            weights_commitment=commitment, created=_now())
        write_json(work / MANIFEST, manifest.to_dict())
        sizes = {name: (work / name).stat().st_size for name in FILES.values()}
        _install(work, out_p)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return SetupResult(path=out_p, manifest=manifest, timings=timings, sizes=sizes)


def load_manifest(folder: str | Path, roles: tuple[str, ...] = VERIFY_FILES) -> Manifest:
    """Read ``folder/manifest.json`` and check that the files ``roles`` need are the ones it names
    (a changed file is refused: :class:`~modelshield.errors.IntegrityError`)."""
    d = Path(folder)
    if not d.is_dir():
        raise InputNotFoundError(f"setup folder not found: {d}")
    mpath = d / MANIFEST
    raw = _read_json(mpath, f"{d} is not a proof setup folder: no {MANIFEST}", "{path}: not JSON ({exc})")
    m = Manifest.from_dict(raw, str(mpath))
    for role in roles:
        p = d / FILES[role]
        if not p.is_file():
            raise InputNotFoundError(f"setup folder {d} lacks {FILES[role]}")
        if not _same(file_sha256(p), m.files[role]):
            raise IntegrityError(f"{p} is not the file the manifest names (SHA-256 differs): refused")
    return m


# ---------------------------------------------------------------------------------------- public values
def _decode(manifest: Manifest, settings: Mapping[str, Any], instances: Any) -> tuple[list[float], list[str]]:
    """The output values and the weights' hash from a proof's public values, laid out by ezkl as
    [input part] [weights part] [output part]; any other layout is refused."""
    ezkl = _ezkl()
    if not isinstance(instances, list) or not all(isinstance(c, list) for c in instances):
        raise IntegrityError("the proof's public values are malformed: refused")
    flat = [v for col in instances for v in col]
    if not all(isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in flat):
        raise IntegrityError("the proof's public values are malformed: refused")
    vis = manifest.visibility
    n_in = {"private": 0, "public": math.prod(manifest.input_shape), "hashed": 1}[vis.input]
    n_w = 1 if vis.weights == "hashed" else 0
    n_out = math.prod(manifest.output_shape)
    if len(flat) != n_in + n_w + n_out:
        raise IntegrityError(f"the proof has {len(flat)} public values; this setup's proofs have "
                             f"{n_in + n_w + n_out}: refused")
    try:
        scale = int(settings["model_output_scales"][0])
    except (KeyError, IndexError, TypeError, ValueError):
        raise FormatError("settings.json has no output scale") from None
    outputs = [float(ezkl.felt_to_float(v, scale)) for v in flat[n_in + n_w:]]
    return outputs, flat[n_in:n_in + n_w]


def _argmax(values: list[float]) -> int:
    return int(np.argmax(np.asarray(values, dtype=np.float64)))


# -------------------------------------------------------------------------------------------------- prove
def _read_input(x: str | Path | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(x, np.ndarray):
        arr, where = x, "input"
    else:
        p = Path(x)
        if not p.is_file():
            raise InputNotFoundError(f"input not found: {p}")
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise FormatError(f"{p}: not a .npy array ({type(exc).__name__})") from None
        if not isinstance(arr, np.ndarray):
            raise FormatError(f"{p}: holds several arrays; give one example as a .npy file")
        where = str(p)
    if tuple(arr.shape) not in (shape, shape[1:]):
        raise DataError(f"{where}: shape {tuple(arr.shape)}; the model takes one example of shape {shape[1:]} "
                        f"(or {shape})")
    return _check_rows(arr.reshape((1, *shape[1:])), shape, where)


def prove(setup_dir: str | Path, x: str | Path | np.ndarray, out: str | Path, *, force: bool = False) -> ProofResult:
    """Prove that the setup's model maps the (private) input ``x`` to its output; write the proof to ``out``."""
    out_p = check_output_path(out, force)
    d = Path(setup_dir)
    manifest = load_manifest(d, tuple(FILES))
    rows = _read_input(x, manifest.input_shape)
    ezkl = _ezkl()
    f = {role: str(d / name) for role, name in FILES.items()}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="modelshield-prove-") as tmp:
        inp, wit, raw = Path(tmp, "input.json"), Path(tmp, "witness.json"), Path(tmp, "proof.json")
        _input_json(rows, inp)
        t = time.perf_counter()
        _call(DataError, "the circuit cannot run on this input", ezkl.gen_witness, str(inp), f["compiled"], str(wit),
              vk_path=f["vk"], srs_path=f["srs"])
        timings["witness_s"] = time.perf_counter() - t
        t = time.perf_counter()
        _call(DataError, "proving failed", ezkl.prove, str(wit), f["compiled"], f["pk"], str(raw), srs_path=f["srs"])
        timings["prove_s"] = time.perf_counter() - t
        proof = json.loads(raw.read_text())
    # keep only what ezkl verifies: its hex copy and pretty-printed values are not checked, so a reader
    # could be shown an altered copy of them
    for k in ("hex_proof", "pretty_public_inputs"):
        proof.pop(k, None)
    settings = json.loads(Path(f["settings"]).read_text())
    output, _ = _decode(manifest, settings, proof.get("instances"))
    cls = _argmax(output)
    env = {"format": PROOF_FORMAT, "srs": manifest.srs, "model_name": manifest.model_name,
           "model_sha256": manifest.model_sha256, "weights_sha256": manifest.weights_sha256,
           "vk_sha256": manifest.vk_sha256, "settings_sha256": manifest.settings_sha256,
           "visibility": asdict(manifest.visibility), "output": output, "predicted_class": cls,
           "created": _now(), "ezkl": proof}
    write_json(out_p, env, force)
    return ProofResult(path=out_p, output=output, predicted_class=cls, model_sha256=manifest.model_sha256,
                       srs=manifest.srs, timings=timings, size=out_p.stat().st_size)


# ------------------------------------------------------------------------------------------------- verify
def _norm_hash(h: str) -> str:
    v = h.strip().lower().removeprefix("sha256:")
    if not _HEX64.fullmatch(v):
        raise UserError(f"expected model hash {h!r} is not a SHA-256 hex digest (64 hex digits)",
                        cli_hint="fix --model-hash")
    return v


def verify(proof: str | Path, setup_dir: str | Path, *, model_hash: str | None = None) -> Verdict:
    """Verify ``proof`` against the setup folder; returns the verified output, or raises
    :class:`~modelshield.errors.IntegrityError` (exit 3) when the proof is invalid, altered, or bound to
    another model than the setup's (or than ``model_hash``, the SHA-256 of the ONNX file you expect)."""
    t0 = time.perf_counter()
    expected = _norm_hash(model_hash) if model_hash is not None else None
    p = Path(proof)
    env = _read_json(p, f"proof not found: {p}", "{path}: not a proof (not JSON: {exc})")
    if not isinstance(env, dict) or env.get("format") != PROOF_FORMAT:
        raise FormatError(f"{p}: not a modelshield proof ({PROOF_FORMAT})")
    d = Path(setup_dir)
    manifest = load_manifest(d)
    if expected is not None and not _same(manifest.model_sha256, expected):
        raise IntegrityError(f"the setup in {d} is for model {manifest.model_sha256[:16]}..., not the expected "
                             f"{expected[:16]}...: refused")
    for key, want in (("model_sha256", manifest.model_sha256), ("weights_sha256", manifest.weights_sha256),
                      ("vk_sha256", manifest.vk_sha256), ("settings_sha256", manifest.settings_sha256)):
        if not _same(str(env.get(key, "")), want):
            raise IntegrityError(f"the proof's {key} is not the setup's: it is bound to another model or key: "
                                 "refused")
    inner = env.get("ezkl")
    if not isinstance(inner, dict):
        raise IntegrityError("the proof has no ezkl proof: refused")
    settings = json.loads((d / FILES["settings"]).read_text())
    output, weights_part = _decode(manifest, settings, inner.get("instances"))
    if manifest.visibility.weights == "hashed":
        commit = manifest.weights_commitment or []
        if len(weights_part) != len(commit) or not all(_same(a, b) for a, b in zip(weights_part, commit)):
            raise IntegrityError("the proof was made with other weights than the setup's (weights hash differs): "
                                 "refused")
    claimed = env.get("output")
    if (not isinstance(claimed, list) or len(claimed) != len(output)
            or not all(isinstance(c, (int, float)) and float(c) == o for c, o in zip(claimed, output))):
        raise IntegrityError("the proof's stated output is not the output it proves: refused")
    cls = env.get("predicted_class")
    if not isinstance(cls, int) or isinstance(cls, bool) or cls != _argmax(output):
        raise IntegrityError("the proof's predicted_class is not the argmax of its output: refused")
    ezkl = _ezkl()
    with tempfile.TemporaryDirectory(prefix="modelshield-verify-") as tmp:
        raw = Path(tmp, "proof.json")
        raw.write_text(json.dumps(inner))
        ok = _call(IntegrityError, "the proof does not verify (refused)", ezkl.verify, str(raw),
                   str(d / FILES["settings"]), str(d / FILES["vk"]), srs_path=str(d / FILES["srs"]))
    if ok is not True:
        raise IntegrityError("the proof does not verify: refused")
    return Verdict(valid=True, output=output, predicted_class=cls, model_sha256=manifest.model_sha256,
                   srs=manifest.srs, seconds=time.perf_counter() - t0)
