"""Builds the scanner's test corpus: malicious files for every technique (harmless payloads,
written opcode by opcode, never loaded) and benign models from each framework.

Used by the tests, the fuzz test and ``benchmarks/scan``. ``build(dir)`` writes every case and
returns the list of :class:`Case` (path, expectation, technique).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PAYLOAD = "echo modelshield-test"  # harmless; the files are never loaded anyway


@dataclass
class Case:
    name: str
    expect: str  # "malicious" | "benign" | "robust" (must just not crash/hang) | "malformed"
    technique: str
    path: Path | None = None


# ------------------------------------------------------------------ opcode builders
def s8(text: str) -> bytes:
    b = text.encode()
    return b"\x8c" + bytes([len(b)]) + b


def glob0(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sglob(module: str, name: str) -> bytes:
    return s8(module) + s8(name) + b"\x93"


def call4(module: str, name: str, *args: str, pop: bool = False) -> bytes:
    """protocol-4 pickle: module.name(*args) via STACK_GLOBAL + REDUCE."""
    body = sglob(module, name) + b"(" + b"".join(s8(a) for a in args) + b"tR"
    return b"\x80\x04" + body + (b"0N" if pop else b"") + b"."


def call2(module: str, name: str, *args: str) -> bytes:
    return b"\x80\x02" + glob0(module, name) + b"(" + b"".join(b"X" + struct.pack("<I", len(a)) + a.encode() for a in args) + b"tR."


def call0(module: str, name: str, *args: str) -> bytes:
    return glob0(module, name) + b"(" + b"".join(b"V" + a.encode() + b"\n" for a in args) + b"tR."


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def torch_zip(pkl: bytes, *, prefix: str = "archive") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", pkl)
        zf.writestr(f"{prefix}/byteorder", "little")
        zf.writestr(f"{prefix}/version", "3\n")
        zf.writestr(f"{prefix}/data/0", b"\x00" * 16)
    return buf.getvalue()


def _patch_local(data: bytes, member: str, fn: Callable[[bytearray, int], None]) -> bytes:
    b = bytearray(data)
    i = b.find(b"PK\x03\x04" + b"", 0)
    while i >= 0:
        nlen = struct.unpack("<H", b[i + 26:i + 28])[0]
        if b[i + 30:i + 30 + nlen].decode() == member:
            fn(b, i)
            return bytes(b)
        i = b.find(b"PK\x03\x04", i + 4)
    raise ValueError(member)


def _patch_central(data: bytes, member: str, fn: Callable[[bytearray, int], None]) -> bytes:
    b = bytearray(data)
    i = b.find(b"PK\x01\x02")
    while i >= 0:
        nlen = struct.unpack("<H", b[i + 28:i + 30])[0]
        if b[i + 46:i + 46 + nlen].decode() == member:
            fn(b, i)
            return bytes(b)
        i = b.find(b"PK\x01\x02", i + 4)
    raise ValueError(member)


# ------------------------------------------------------------------ protobuf / gguf encoders
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(field: int, value: bytes | int | str) -> bytes:
    if isinstance(value, int):
        return _varint(field << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def savedmodel(ops: list[str], func_ops: list[str] = ()) -> bytes:
    nodes = b"".join(pb(1, pb(1, f"n{i}") + pb(2, op)) for i, op in enumerate(ops))
    lib = b""
    if func_ops:
        fdef = pb(1, pb(1, "f")) + b"".join(pb(3, pb(1, f"fn{i}") + pb(2, op)) for i, op in enumerate(func_ops))
        lib = pb(2, pb(1, fdef))
    return pb(1, 1) + pb(2, pb(2, nodes + lib))


def gguf(kv: dict[str, str | int], version: int = 3) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", version, 0, len(kv))
    for k, v in kv.items():
        kb = k.encode()
        out += struct.pack("<Q", len(kb)) + kb
        if isinstance(v, str):
            vb = v.encode()
            out += struct.pack("<IQ", 8, len(vb)) + vb
        else:
            out += struct.pack("<II", 4, v)
    return out


def safetensors_file(header: dict, data: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def onnx_with_external(location: str) -> bytes:
    from onnx import TensorProto, helper

    t = TensorProto()
    t.name = "W"
    t.data_type = TensorProto.FLOAT
    t.dims.extend([1])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    node = helper.make_node("Identity", ["W"], ["Y"])
    g = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])], [t])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def onnx_custom_domain() -> bytes:
    from onnx import TensorProto, helper

    node = helper.make_node("EvilOp", ["X"], ["Y"], domain="com.attacker")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.attacker", 1)]
                             ).SerializeToString()


def keras_zip(config: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", b"")
    return buf.getvalue()


def keras_h5(path: Path, config: dict) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.create_group("model_weights")


DENSE = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2,
                                                                    "activation": "relu"}, "registered_name": None}


def keras_model(*layers: dict) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": list(layers)},
            "registered_name": None}


LAMBDA3 = {"module": "keras.layers", "class_name": "Lambda", "config": {
    "name": "l", "function": {"class_name": "__lambda__", "config": {
        "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAACXAHwAUwApAU6pAKkB2gF4cwEAAAAgegg8c3RkaW4+",
        "defaults": None, "closure": None}}}, "registered_name": None}
LAMBDA2 = {"class_name": "Lambda", "config": {"name": "l", "function": ["4wEAAAAAAAAA", None, None],
                                              "function_type": "lambda"}}


# ------------------------------------------------------------------ the corpus
def malicious_cases() -> list[tuple[str, str, bytes | Callable[[Path], None]]]:
    """(file name, technique, content or writer)."""
    inner_evil = call4("os", "system", PAYLOAD)
    cases: list[tuple[str, str, bytes | Callable[[Path], None]]] = [
        ("reduce_os_system.pkl", "__reduce__ os.system", pickle.dumps(_Reduce(os.system, (PAYLOAD,)), protocol=4)),
        ("reduce_p2.pkl", "__reduce__ protocol 2", pickle.dumps(_Reduce(os.system, (PAYLOAD,)), protocol=2)),
        ("reduce_p5.pkl", "__reduce__ protocol 5", pickle.dumps(_Reduce(os.system, (PAYLOAD,)), protocol=5)),
        ("subprocess.pkl", "subprocess.Popen", call4("subprocess", "Popen", PAYLOAD)),
        ("builtins_eval.pkl", "eval", call4("builtins", "eval", "1+1")),
        ("builtins_exec.pkl", "exec", call2("__builtin__", "exec", "x=1")),
        ("pip_main.pkl", "pip.main (CVE-2025-1716)", call4("pip", "main", "install")),
        ("ensurepip.pkl", "ensurepip._run_pip (CVE-2025-1716)", call4("ensurepip", "_run_pip", "x")),
        ("venv.pkl", "venv.create (CVE-2025-1716)", call4("venv", "create", "/tmp/x")),
        ("evil.safetensors", "pickle behind .safetensors (CVE-2025-1889)", inner_evil),
        ("evil_model.txt", "pickle behind .txt (CVE-2025-1889)", inner_evil),
        ("proto0.bin", "protocol 0 no header (CVE-2025-10155)", call0("os", "system", PAYLOAD)),
        ("proto1.bin", "protocol 1 no header (CVE-2025-10155)", pickle.dumps(_Reduce(os.system, (PAYLOAD,)), protocol=1)),
        ("inst_p0.bin", "INST opcode", b"(V" + PAYLOAD.encode() + b"\nios\nsystem\n."),
        ("obj_p1.pkl", "OBJ opcode", b"(" + glob0("os", "system") + b"X" + struct.pack("<I", 4) + b"echoo."),
        ("asyncio_sub.pkl", "asyncio submodule (CVE-2025-10157)",
         call4("asyncio.unix_events", "_UnixSubprocessTransport", "x")),
        ("attrgetter.pkl", "operator.attrgetter gadget", call4("operator", "attrgetter", "system")),
        ("itemgetter.pkl", "operator.itemgetter gadget", call4("_operator", "itemgetter", "x")),
        ("methodcaller.pkl", "operator.methodcaller gadget", call4("operator", "methodcaller", "system")),
        ("partial.pkl", "functools.partial gadget", call4("functools", "partial", "x")),
        ("resolve_name.pkl", "pkgutil.resolve_name", call4("pkgutil", "resolve_name", "os:system")),
        ("import_module.pkl", "importlib.import_module", call4("importlib", "import_module", "os")),
        ("marshal.pkl", "marshal.loads", call4("marshal", "loads", "x")),
        ("functiontype.pkl", "types.FunctionType", call4("types", "FunctionType", "x")),
        ("codetype.pkl", "types.CodeType", call4("types", "CodeType", "x")),
        ("profile.pkl", "profile.run", call4("profile", "run", PAYLOAD)),
        ("cprofile.pkl", "cProfile.run", call4("cProfile", "run", PAYLOAD)),
        ("trace.pkl", "trace.Trace", call4("trace", "Trace", "x")),
        ("pdb.pkl", "pdb.run", call4("pdb", "run", PAYLOAD)),
        ("bdb.pkl", "bdb.Bdb", call4("bdb", "Bdb", "x")),
        ("timeit.pkl", "timeit.timeit", call4("timeit", "timeit", PAYLOAD)),
        ("doctest.pkl", "doctest.debug_script", call4("doctest", "debug_script", PAYLOAD)),
        ("code.pkl", "code.InteractiveInterpreter", call4("code", "interact", "x")),
        ("idlelib.pkl", "idlelib.pyshell", call4("idlelib.pyshell", "main", "x")),
        ("lib2to3.pkl", "lib2to3 entry point", call4("lib2to3.main", "main", "x")),
        ("http.pkl", "http.client", call4("http.client", "HTTPConnection", "example.org")),
        ("ssl.pkl", "ssl", call4("ssl", "get_server_certificate", "x")),
        ("socket.pkl", "socket", call4("socket", "create_connection", "x")),
        ("aiohttp.pkl", "aiohttp", call4("aiohttp", "request", "GET")),
        ("requests.pkl", "requests", call4("requests", "get", "http://example.org")),
        ("urllib.pkl", "urllib.request", call4("urllib.request", "urlopen", "http://example.org")),
        ("posixsubprocess.pkl", "_posixsubprocess", call4("_posixsubprocess", "fork_exec", "x")),
        ("site.pkl", "site.main", call4("site", "main")),
        ("atexit.pkl", "atexit.register", call4("atexit", "register", "x")),
        ("pty.pkl", "pty.spawn", call4("pty", "spawn", "/bin/sh")),
        ("webbrowser.pkl", "webbrowser.open", call4("webbrowser", "open", "http://example.org")),
        ("ctypes.pkl", "ctypes.CDLL", call4("ctypes", "CDLL", "libc.so.6")),
        ("collect_env.pkl", "torch.utils.collect_env.run", call4("torch.utils.collect_env", "run", PAYLOAD)),
        ("spawnv.pkl", "multiprocessing.util.spawnv_passfds", call4("multiprocessing.util", "spawnv_passfds", "x")),
        ("torch_load.pkl", "torch.load", call4("torch", "load", "other.pt")),
        ("numpy_load.pkl", "numpy.load", call4("numpy", "load", "other.npy")),
        ("getattr.pkl", "builtins.getattr", call4("builtins", "getattr", "x")),
        ("open.pkl", "builtins.open", call4("builtins", "open", "/etc/passwd")),
        ("shutil.pkl", "shutil.rmtree", call4("shutil", "rmtree", "/tmp/x")),
        ("nested_pickle.pkl", "nested pickle.loads",
         b"\x80\x04" + sglob("pickle", "loads") + b"C" + bytes([len(inner_evil)]) + inner_evil + b"\x85R."),
        ("nested_cpickle.pkl", "nested _pickle.loads",
         b"\x80\x04" + sglob("_pickle", "loads") + b"B" + struct.pack("<I", len(inner_evil)) + inner_evil + b"\x85R."),
        ("nested_p2.pkl", "nested pickle via _codecs.encode (protocol 2)",
         pickle.dumps(_Reduce(pickle.loads, (inner_evil,)), protocol=2)),
        ("memo_indirection.pkl", "memo/BINGET indirection before STACK_GLOBAL",
         b"\x80\x04" + s8("os") + b"q\x01" + b"0" + s8("system") + b"q\x02" + b"0"
         + s8("numpy") + s8("dtype") + b"00" + b"h\x01h\x02\x93" + s8(PAYLOAD) + b"\x85R."),
        ("memoize_indirection.pkl", "MEMOIZE indirection",
         b"\x80\x04" + s8("posix") + b"\x94" + s8("system") + b"\x94" + b"00" + b"h\x00h\x01\x93" + s8("x") + b"\x85R."),
        ("type_confusion.pkl", "non-string STACK_GLOBAL operands",
         b"\x80\x04" + sglob("builtins", "str") + b")R" + s8("system") + b"\x93" + s8("x") + b"\x85R."),
        ("decoy.pkl", "decoy strings that are popped",
         b"\x80\x04" + s8("numpy") + s8("ndarray") + b"00" + s8("o" + "s") + s8("system") + b"\x93" + s8("x") + b"\x85R."),
        ("dunder_chain.pkl", "numpy.__builtins__ getattr chain",
         b"\x80\x04" + sglob("builtins", "getattr") + sglob("numpy", "__builtins__") + s8("eval") + b"\x86R."),
        ("numpy_builtins.pkl", "allowlisted-module dunder attribute", call4("numpy", "__builtins__")),
        ("dotted_chain.pkl", "protocol 4 dotted attribute chain", call4("random", "_os.system", PAYLOAD)),
        ("popped_call.pkl", "call whose result is POPped", call4("os", "system", PAYLOAD, pop=True)),
        ("broken.pkl", "broken pickle: payload before the stream fails (nullifAI)",
         call4("os", "system", PAYLOAD)[:-1] + b"\xff\xfe garbage"),
        ("ext_code.pkl", "EXT opcode global", b"\x80\x02\x82\x01(tR."),
        ("build_global.pkl", "BUILD writing attributes of a module/class",
         b"\x80\x04" + sglob("sklearn.base", "BaseEstimator") + b"N}" + s8("__init__") + s8("x") + b"s\x86b."),
        ("junk_prefix.bin", "junk before the pickle", b"JUNKHEADER\x00\x01" + inner_evil),
        ("multi_pickle.pkl", "malicious second pickle in one file", pickle.dumps([1, 2], protocol=4) + inner_evil),
        ("torch_evil.pt", "PyTorch zip with malicious data.pkl", torch_zip(inner_evil)),
        ("torch_prefix.pt", "PyTorch zip behind an archive prefix", b"#!/bin/sh\nexit 0\n" + torch_zip(inner_evil)),
        ("zip_name_mismatch.pt", "zip local/central name mismatch (CVE-2025-1944)",
         _patch_local(torch_zip(inner_evil), "archive/data.pkl", lambda b, i: b.__setitem__(slice(i + 30, i + 34), b"ARCH"))),
        ("zip_flag_bits.pt", "zip encryption flag bits (CVE-2025-1945)",
         _patch_central(_patch_local(torch_zip(inner_evil), "archive/data.pkl",
                                     lambda b, i: b.__setitem__(slice(i + 6, i + 8), b"\x01\x00")),
                        "archive/data.pkl", lambda b, i: b.__setitem__(slice(i + 8, i + 10), b"\x01\x00"))),
        ("zip_crc.pt", "zip CRC error (CVE-2025-10156)",
         _patch_central(torch_zip(inner_evil), "archive/data.pkl",
                        lambda b, i: b.__setitem__(slice(i + 16, i + 20), b"\x00\x00\x00\x00"))),
        ("nested_zip.zip", "zip inside a zip", _zip({"inner.zip": torch_zip(inner_evil)})),
        ("password_zip.pt", "password-protected (unreadable) zip member",
         _patch_central(_patch_local(torch_zip(os.urandom(64)), "archive/data.pkl",
                                     lambda b, i: b.__setitem__(slice(i + 6, i + 8), b"\x01\x00")),
                        "archive/data.pkl", lambda b, i: b.__setitem__(slice(i + 8, i + 10), b"\x01\x00"))),
        ("sevenzip.pt", "7z-compressed archive (nullifAI)", b"7z\xbc\xaf\x27\x1c\x00\x04" + os.urandom(64)),
        ("legacy_torch.pt", "legacy (non-zip) torch.save with payload", _legacy_torch(inner_evil)),
        ("tar_torch.tar", "legacy tar torch format", _tar({"sys_info": pickle.dumps({}), "pickle": inner_evil})),
        ("joblib_objarray.joblib", "joblib object array with nested payload", _joblib_obj_array(inner_evil)),
        ("joblib_gz.joblib", "gzip-compressed joblib payload", _gz(inner_evil)),
        ("joblib_lzma.joblib", "lzma-compressed joblib payload", _lzma(inner_evil)),
        ("joblib_zlib.joblib", "zlib-compressed joblib payload", zlib.compress(inner_evil)),
        ("npy_object.npy", "npy object array with payload", _npy_object(inner_evil)),
        ("npz_object.npz", "npz with a malicious object array", _zip({"a.npy": _npy_object(inner_evil)})),
        ("tensor_bounds.pt", "weights_only gadget: tensor view outside storage (CVE-2026-24747 class)",
         torch_zip(_tensor_pickle(numel=4, size=(1000,)))),
        ("torchscript.pt", "TorchScript code calling a file op (CVE-2025-32434)", _torchscript()),
        ("keras_lambda.keras", "Keras Lambda bytecode (CVE-2024-3660)", keras_zip(keras_model(DENSE, LAMBDA3))),
        ("keras_module.keras", "Keras config naming an arbitrary module (CVE-2025-1550)",
         keras_zip(keras_model(DENSE, {"module": "os", "class_name": "system", "config": {}, "registered_name": None}))),
        ("keras_getfile.keras", "Keras config using keras.utils.get_file (CVE-2025-8747)",
         keras_zip(keras_model(DENSE, {"module": "keras.utils", "class_name": "get_file", "config": {},
                                       "registered_name": None}))),
        ("keras_unsafe.keras", "Keras config enabling unsafe deserialization (CVE-2025-9906)",
         keras_zip(keras_model(DENSE, {"module": "keras.config", "class_name": "function",
                                       "config": "enable_unsafe_deserialization", "registered_name": None}))),
        ("keras_lambda.h5", "Keras .h5 Lambda layer (CVE-2025-9905)",
         lambda p: keras_h5(p, {"class_name": "Sequential", "config": {"layers": [LAMBDA2]}})),
        ("onnx_traversal.onnx", "ONNX external data path traversal (CVE-2022-25882)", onnx_with_external("../../etc/passwd")),
        ("onnx_absolute.onnx", "ONNX external data absolute path (CVE-2024-27318)", onnx_with_external("/etc/passwd")),
        ("onnx_symlink", "ONNX external data through a symlink", _onnx_symlink),
        ("onnx_custom.onnx", "ONNX custom operator domain", onnx_custom_domain()),
        ("gguf_ssti.gguf", "GGUF chat template SSTI (CVE-2024-34359)",
         gguf({"general.architecture": "llama", "tokenizer.chat_template":
               "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m.content }}{% endfor %}"})),
        ("savedmodel_pyfunc", "SavedModel with PyFunc", _savedmodel_dir(["Placeholder", "PyFunc"])),
        ("savedmodel_readfile", "SavedModel reading files", _savedmodel_dir(["Const"], ["ReadFile", "WriteFile"])),
    ]
    return cases


def hostile_cases() -> list[tuple[str, str, bytes | Callable[[Path], None]]]:
    """Malformed / DoS inputs: the scanner must answer (malformed or findings) within its bounds."""
    big = 1 << 40
    return [
        ("truncated.pkl", "truncated pickle", pickle.dumps(list(range(100)), protocol=4)[:50]),
        ("absurd_len.pkl", "absurd declared length", b"\x80\x04\x8e" + struct.pack("<Q", big) + b"abc"),
        ("stack_bomb.pkl", "stack-depth bomb", b"\x80\x04" + b"(" * 300_000 + b"."),
        ("list_bomb.pkl", "nested list bomb", b"\x80\x04" + b"]" * 300_000 + b"."),
        ("billion_laughs.pkl", "billion-laughs memo expansion",
         b"\x80\x04]\x940" + b"".join(b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86\x940" for i in range(200))
         + b"h\xc8."),
        ("cyclic.pkl", "cyclic structure", b"\x80\x04]\x94h\x00a."),
        ("zip_bomb.pt", "zip bomb (declared size/ratio)", _zip_bomb()),
        ("zip_overlap.zip", "overlapping zip members", _zip_overlap()),
        ("zip_truncated.pt", "truncated zip", torch_zip(call4("collections", "OrderedDict"))[:-40]),
        ("npy_truncated.npy", "truncated npy", _npy(b"<f8", (1000,), b"\x00" * 80)),
        ("npy_header.npy", "absurd npy header length", b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 30) + b"{"),
        ("st_overlap.safetensors", "overlapping safetensors offsets",
         safetensors_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\x00" * 12)),
        ("st_range.safetensors", "out-of-range safetensors offsets",
         safetensors_file({"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, b"\x00" * 8)),
        ("st_header.safetensors", "safetensors header length beyond the file", struct.pack("<Q", big) + b"{}"),
        ("st_json.safetensors", "invalid safetensors JSON", struct.pack("<Q", 5) + b"{abc}"),
        ("gguf_absurd.gguf", "GGUF absurd counts", b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 1 << 60)),
        ("gguf_trunc.gguf", "GGUF truncated string", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40)),
        ("gz_corrupt.joblib", "corrupt gzip stream", b"\x1f\x8b\x08\x00" + os.urandom(100)),
        ("onnx_garbage.onnx", "invalid protobuf", b"\x08\x07\x12\xff\xff\xff\xff\x0f" + b"x" * 20),
    ]


def benign_cases() -> list[tuple[str, str, bytes | Callable[[Path], None]]]:
    import joblib
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    torch.set_num_threads(1)
    X, y = load_breast_cancer(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    hgb = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    pipe = make_pipeline(FunctionTransformer(np.abs), StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    net = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    out: list[tuple[str, str, bytes | Callable[[Path], None]]] = []
    for p in range(6):
        out.append((f"rf_p{p}.pkl", f"scikit-learn RandomForest pickle protocol {p}", pickle.dumps(rf, protocol=p)))
    out.append(("hgb.pkl", "scikit-learn HistGradientBoosting", pickle.dumps(hgb, protocol=5)))
    out.append(("pipe.pkl", "scikit-learn Pipeline", pickle.dumps(pipe, protocol=4)))
    for comp in (None, "zlib", "gzip", "bz2", "lzma", "xz"):
        def w(p: Path, comp=comp, obj=rf) -> None:
            joblib.dump(obj, p, compress=(comp, 3) if comp else 0)
        out.append((f"rf_{comp or 'raw'}.joblib", f"joblib {comp or 'uncompressed'}", w))
    out.append(("pipe.joblib", "joblib pipeline", lambda p: joblib.dump(pipe, p)))
    out.append(("rf_p0.joblib", "joblib protocol 0", lambda p: joblib.dump(rf, p, protocol=0)))
    out.append(("frame.pkl", "pandas DataFrame",
                pickle.dumps(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}), protocol=5)))
    out.append(("objarr.joblib", "joblib with an object array", lambda p: joblib.dump(np.array(["a", 1], dtype=object), p)))

    def tsave(obj, **kw):
        def w(p: Path) -> None:
            torch.save(obj, p, **kw)
        return w
    out.append(("state_dict.pt", "PyTorch state_dict", tsave(net.state_dict())))
    out.append(("full_model.pt", "PyTorch full model", tsave(net)))
    out.append(("legacy_state.pt", "PyTorch legacy format", tsave(net.state_dict(), _use_new_zipfile_serialization=False)))
    out.append(("arr.npy", "NumPy array", lambda p: np.save(p, np.arange(12.0).reshape(3, 4))))
    out.append(("strs.npy", "NumPy object array of strings",
                lambda p: np.save(p, np.array(["a", "b"], dtype=object), allow_pickle=True)))
    out.append(("arrs.npz", "NumPy npz", lambda p: np.savez(p, a=np.arange(3), b=np.ones((2, 2)))))
    out.append(("arrs_c.npz", "NumPy compressed npz", lambda p: np.savez_compressed(p, a=np.arange(300))))
    out.append(("plain_p4.pkl", "NumPy array pickle", pickle.dumps(np.arange(100.0), protocol=4)))
    out.append(("rng.pkl", "NumPy random generator", pickle.dumps(np.random.default_rng(0), protocol=4)))

    def st(p: Path) -> None:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(p))
    out.append(("model.safetensors", "safetensors", st))

    def onnx_model(p: Path) -> None:
        from skl2onnx import to_onnx
        p.write_bytes(to_onnx(LogisticRegression(max_iter=300).fit(X[:, :4], y), X[:1, :4].astype("float32")).SerializeToString())
    out.append(("logreg.onnx", "ONNX from skl2onnx", onnx_model))
    out.append(("keras_ok.keras", "Keras 3 archive", keras_zip(keras_model(DENSE))))
    out.append(("keras_ok.h5", "Keras 2 .h5",
                lambda p: keras_h5(p, {"class_name": "Sequential", "config": {"layers": [
                    {"class_name": "Dense", "config": {"units": 2, "activation": "relu"}}]}})))
    out.append(("ok.gguf", "GGUF with an ordinary chat template",
                gguf({"general.architecture": "llama", "llama.block_count": 2, "tokenizer.chat_template":
                      "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"})))
    out.append(("savedmodel_ok", "SavedModel with ordinary ops", _savedmodel_dir(["Placeholder", "MatMul", "Relu"],
                                                                                ["SaveV2", "RestoreV2"])))
    out.append(("config.json", "JSON config", json.dumps({"hidden_size": 8}).encode()))
    out.append(("README.md", "text", b"# A model card\n\nNothing to see.\n"))
    return out


def build(root: Path, *, benign: bool = True, malicious: bool = True, hostile: bool = True) -> list[Case]:
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    groups = []
    if malicious:
        groups.append(("malicious", malicious_cases()))
    if hostile:
        groups.append(("robust", hostile_cases()))
    if benign:
        groups.append(("benign", benign_cases()))
    for expect, items in groups:
        sub = root / expect
        sub.mkdir(exist_ok=True)
        for name, technique, content in items:
            path = sub / name
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)
            cases.append(Case(name, expect, technique, path))
    return cases


# ------------------------------------------------------------------ helpers for builders
def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return buf.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for k, v in members.items():
            ti = tarfile.TarInfo(k)
            ti.size = len(v)
            tf.addfile(ti, io.BytesIO(v))
    return buf.getvalue()


def _legacy_torch(obj_pickle: bytes) -> bytes:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    return magic + pickle.dumps(1001, protocol=2) + pickle.dumps({"little_endian": True}, protocol=2) + obj_pickle


def _gz(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


def _lzma(data: bytes) -> bytes:
    import lzma

    return lzma.compress(data, format=lzma.FORMAT_ALONE)


def _npy(descr: bytes, shape: tuple[int, ...], data: bytes) -> bytes:
    header = f"{{'descr': '{descr.decode()}', 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def _npy_object(payload: bytes) -> bytes:
    return _npy(b"|O", (1,), payload)


def _joblib_obj_array(payload: bytes) -> bytes:
    """A joblib stream: NumpyArrayWrapper for an object array followed by the nested pickle."""
    state = (b"}" + s8("subclass") + sglob("numpy", "ndarray") + s8("shape") + b"K\x01\x85"
             + s8("order") + s8("C") + s8("dtype") + sglob("numpy", "dtype") + s8("O8") + b"\x89\x88\x87R"
             + s8("allow_mmap") + b"\x89" + b"(" + b"" + b"u")
    state = (b"}(" + s8("subclass") + sglob("numpy", "ndarray") + s8("shape") + b"K\x01\x85"
             + s8("order") + s8("C") + s8("dtype") + sglob("numpy", "dtype") + s8("O8") + b"\x89\x88\x87R"
             + s8("allow_mmap") + b"\x89u")
    head = b"\x80\x04" + sglob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
    return head + payload + b"."


def _tensor_pickle(numel: int, size: tuple[int, ...]) -> bytes:
    pid = b"(" + s8("storage") + sglob("torch", "FloatStorage") + s8("0") + s8("cpu") + b"K" + bytes([numel]) + b"tQ"
    sz = b"(" + b"".join(b"M" + struct.pack("<H", s) for s in size) + b"t"
    st = b"(" + b"K\x01" * len(size) + b"t"
    return (b"\x80\x02" + sglob("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + b"K\x00" + sz + st
            + b"\x89" + sglob("collections", "OrderedDict") + b")RtR.")


def _torchscript() -> bytes:
    return _zip({
        "archive/data.pkl": pickle.dumps({}, protocol=2),
        "archive/constants.pkl": pickle.dumps((), protocol=2),
        "archive/code/__torch__.py": b"def forward(self, x):\n    torch.ops.aten.save(x, '/tmp/owned')\n    return x\n",
        "archive/version": b"3\n",
    })


def _zip_bomb() -> bytes:
    data = torch_zip(call4("collections", "OrderedDict"))
    return _patch_central(data, "archive/data/0", lambda b, i: b.__setitem__(slice(i + 24, i + 28), b"\xff\xff\xff\x7f"))


def _zip_overlap() -> bytes:
    data = _zip({"a.pkl": pickle.dumps(1), "b.pkl": pickle.dumps(2)})
    b = bytearray(data)
    i = b.find(b"PK\x01\x02")
    i2 = b.find(b"PK\x01\x02", i + 4)
    b[i2 + 42: i2 + 46] = b[i + 42: i + 46]
    return bytes(b)


def _onnx_symlink(path: Path) -> None:
    path.mkdir(exist_ok=True)
    (path / "model.onnx").write_bytes(onnx_with_external("weights.bin"))
    target = path.parent / "outside_secret.bin"
    target.write_bytes(b"\x00" * 4)
    link = path / "weights.bin"
    if not link.exists():
        os.symlink(target, link)


def _savedmodel_dir(ops: list[str], func_ops: list[str] = ()) -> Callable[[Path], None]:
    def w(path: Path) -> None:
        path.mkdir(exist_ok=True)
        (path / "saved_model.pb").write_bytes(savedmodel(ops, func_ops))
        (path / "variables").mkdir(exist_ok=True)
    return w


# ------------------------------------------------------------------ hand-written zip archives
def zip_local(name: str, data: bytes) -> bytes:
    nb = name.encode()
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0x800, 0, 0, 0, zlib.crc32(data), len(data), len(data),
                       len(nb), 0) + nb + data


def zip_central(name: str, data: bytes, offset: int) -> bytes:
    nb = name.encode()
    return struct.pack("<4s6H3L5HLL", b"PK\x01\x02", 20, 20, 0x800, 0, 0, 0, zlib.crc32(data), len(data),
                       len(data), len(nb), 0, 0, 0, 0, 0, offset) + nb


def zip64_record(n: int, cd_size: int, cd_off: int) -> bytes:
    return struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size, cd_off)


def write_zip(members: list[tuple[str, bytes]], *, zip64: bool = False, locator_shift: int = 0) -> bytes:
    """A stored zip written byte by byte (duplicate and case-variant names allowed); ``zip64`` adds a
    zip64 end record and locator (``locator_shift`` moves the locator's pointer off the record)."""
    out = bytearray()
    cd = bytearray()
    for name, data in members:
        cd += zip_central(name, data, len(out))
        out += zip_local(name, data)
    cd_off = len(out)
    out += cd
    n = len(members)
    if zip64:
        rec = len(out)
        out += zip64_record(n, len(cd), cd_off)
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, rec + locator_shift, 1)
        out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(cd), cd_off, 0)
    return bytes(out)


def zip64_two_views(next_to_locator: list[tuple[str, bytes]], pointed_to: list[tuple[str, bytes]]) -> bytes:
    """One file, two archives: zipfile reads the zip64 end record next to the locator (the first
    member list), miniz/PyTorch the record the locator points to (the second)."""
    out = bytearray()
    offs = []
    for name, data in next_to_locator + pointed_to:
        offs.append(len(out))
        out += zip_local(name, data)
    k = len(next_to_locator)
    cd_b = b"".join(zip_central(n, d, offs[k + i]) for i, (n, d) in enumerate(pointed_to))
    pos_b = len(out)
    out += cd_b
    rec_b = len(out)
    out += zip64_record(len(pointed_to), len(cd_b), pos_b)
    cd_a = b"".join(zip_central(n, d, offs[i]) for i, (n, d) in enumerate(next_to_locator))
    pos_a = len(out)
    out += cd_a
    out += zip64_record(len(next_to_locator), len(cd_a), pos_a)
    out += struct.pack("<4sLQL", b"PK\x06\x07", 0, rec_b, 1)
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)
