"""Issue 15 A.2-A.6: classes of scanner bypasses, each as a family of generated cases.

Every malicious file here is written by test code with a harmless payload (``os.system`` of an
``echo``) and never loaded. Each family fails on the scanner before the fix: the payload was not
reached (recognition by first byte, case-sensitive names, skipped members, zip64 end record next to
the locator, joblib dtype strings, TorchScript regex, Keras by ``metadata.json``, static-only Jinja
rules), or a time limit answered "not a pickle" / the prefix search was quadratic.
"""

from __future__ import annotations

import io
import pickle
import struct
import time
import zipfile

import pytest

from modelshield.artifacts import FileStatus, scan, scan_bytes
from modelshield.artifacts._io import Budget, Reader
from modelshield.artifacts.pickle_scan import scan_pickle_stream
from modelshield.findings import Severity

from .corpus import (
    DENSE,
    LAMBDA3,
    PAYLOAD,
    call0,
    call4,
    gguf,
    keras_model,
    s8,
    sglob,
    write_zip,
    zip64_two_views,
)

EVIL0 = call0("os", "system", PAYLOAD)  # protocol 0, no header: starts with the GLOBAL opcode

#: prefixes that leave the unpickler's stack empty, each starting with an opcode ``pickle.load``
#: accepts first but that is outside the scanner's old start set ``(cdl]}NIFSVLi)tKJMGTUXq``
FIRST_OPCODES: dict[str, bytes] = {
    "NEWTRUE": b"\x880",
    "NEWFALSE": b"\x890",
    "EMPTY_SET": b"\x8f0",
    "FRAME": b"\x95" + struct.pack("<Q", len(EVIL0)),
    "LONG1": b"\x8a\x01\x050",
    "LONG4": b"\x8b\x01\x00\x00\x00\x050",
    "SHORT_BINUNICODE": b"\x8c\x01a0",
    "BINUNICODE8": b"\x8d" + struct.pack("<Q", 1) + b"a0",
    "SHORT_BINBYTES": b"C\x01a0",
    "BINBYTES": b"B\x01\x00\x00\x00a0",
    "BINBYTES8": b"\x8e" + struct.pack("<Q", 1) + b"a0",
    "BYTEARRAY8": b"\x96" + struct.pack("<Q", 1) + b"a0",
    "BINFLOAT": b"G" + struct.pack(">d", 1.5) + b"0",
    "BININT2": b"M\x01\x000",
    "PROTO0": b"\x80\x00",
}


class _Recorder(pickle.Unpickler):
    """Runs the real unpickler but resolves every global to a no-op (nothing is imported or run)."""

    seen: list[tuple[str, str]]

    def find_class(self, module: str, name: str):  # type: ignore[override]
        self.seen.append((module, name))
        return lambda *a, **k: None


def reaches_os_system(data: bytes) -> bool:
    rec = _Recorder(io.BytesIO(data))
    rec.seen = []
    rec.load()
    return ("os", "system") in rec.seen


def critical_titles(report) -> list[str]:
    return [f.title for f in report.findings if f.severity is Severity.CRITICAL]


def has_os_system(report) -> bool:
    return any("os.system" in t for t in critical_titles(report))


# ---------------------------------------------------------------- A.2 recognition
@pytest.mark.parametrize("opcode", sorted(FIRST_OPCODES))
def test_headerless_pickle_with_any_first_opcode_is_scanned(opcode):
    data = FIRST_OPCODES[opcode] + EVIL0
    assert reaches_os_system(data)  # the real unpickler accepts it and reaches the global
    for name in ("notes.txt", "weights.dat", "model.pkl"):
        assert has_os_system(scan_bytes(data, name)), (opcode, name)


@pytest.mark.parametrize("opcode", ["NEWTRUE", "SHORT_BINBYTES", "FRAME", "BINFLOAT"])
@pytest.mark.parametrize("loader", [("pickle", "loads"), ("_pickle", "loads"), ("torch.storage", "_load_from_bytes")])
def test_nested_blob_that_does_not_look_like_a_pickle_is_scanned(opcode, loader):
    inner = FIRST_OPCODES[opcode] + EVIL0
    outer = (b"\x80\x04" + sglob(*loader) + b"C" + bytes([len(inner)]) + inner + b"\x85R.")
    titles = [f.title for f in scan_bytes(outer, "outer.pkl").findings]
    assert any("nested in" in t and "os.system" in t for t in titles), titles


def _torch_members(data_pkl: bytes, name: str = "archive/data.pkl") -> list[tuple[str, bytes]]:
    return [(name, data_pkl), ("archive/version", b"3\n"), ("archive/byteorder", b"little"),
            ("archive/data/0", b"\x00" * 16)]


@pytest.mark.parametrize("name", ["archive/DATA.PKL", "archive/Data.pkl", "ARCHIVE/data.PKL", "archive/data.Pkl"])
def test_torch_finds_members_case_insensitively_and_so_does_the_scanner(name):
    data = write_zip(_torch_members(FIRST_OPCODES["NEWTRUE"] + EVIL0, name))
    rep = scan_bytes(data, "model.pt")
    assert has_os_system(rep), [f.title for f in rep.findings]


@pytest.mark.parametrize("member", ["archive/version", "archive/byteorder", "archive/data/0",
                                    "archive/.data/serialization_id", "archive/extra.bin"])
@pytest.mark.parametrize("zip64", [False, True])
def test_no_member_of_a_torch_archive_is_skipped(member, zip64):
    members = [m for m in _torch_members(pickle.dumps({}, protocol=2)) if m[0] != member]
    members.append((member, FIRST_OPCODES["BINFLOAT"] + EVIL0))
    rep = scan_bytes(write_zip(members, zip64=zip64), "model.pt")
    assert has_os_system(rep), [f.title for f in rep.findings]


@pytest.mark.parametrize("names", [
    ["archive/data.pkl", "archive/data.pkl"],
    ["archive/data.pkl", "archive/DATA.pkl"],
    ["archive/data.pkl", "Archive/Data.PKL", "archive/data.pkl"],
    ["config.json", "CONFIG.JSON"],
])
def test_colliding_member_names_are_flagged(names):
    members = [(n, pickle.dumps({"i": i}, protocol=2)) for i, n in enumerate(names)]
    rep = scan_bytes(write_zip(members), "model.pt")
    hits = [f for f in rep.findings if f.rule_id == "artifact.zip.name-collision"]
    assert hits and hits[0].severity >= Severity.HIGH
    assert rep.files[0].status is not FileStatus.CLEAN


@pytest.mark.parametrize("pointed_evil", [True, False])
@pytest.mark.parametrize("member", ["archive/data.pkl", "archive/DATA.PKL"])
def test_zip64_is_read_through_the_locator_and_next_to_it(pointed_evil, member):
    benign = _torch_members(pickle.dumps({"w": 1}, protocol=2))
    evil = _torch_members(EVIL0, member)
    views = (benign, evil) if pointed_evil else (evil, benign)
    data = zip64_two_views(*views)
    rep = scan_bytes(data, "model.pt")
    assert has_os_system(rep), [f.title for f in rep.findings]
    assert any(f.rule_id == "artifact.zip.zip64-mismatch" and f.severity >= Severity.HIGH for f in rep.findings)


@pytest.mark.parametrize("shift", [-7, 13, 1 << 20])
def test_zip64_locator_pointing_at_no_record_is_flagged(shift):
    data = write_zip(_torch_members(pickle.dumps({}, protocol=2)), zip64=True, locator_shift=shift)
    rep = scan_bytes(data, "model.pt")
    assert rep.files[0].status is not FileStatus.CLEAN
    assert any(f.rule_id in ("artifact.zip.zip64-mismatch", "artifact.malformed") for f in rep.findings)


def test_ordinary_zip64_archive_stays_clean():
    rep = scan_bytes(write_zip(_torch_members(pickle.dumps({"w": 1}, protocol=2)), zip64=True), "model.pt")
    assert not [f.title for f in rep.findings if f.severity > Severity.LOW]


def _legacy_tar(storages: bytes, tensors: bytes, pkl: bytes) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("sys_info", pickle.dumps({"little_endian": True}, protocol=2)),
                           ("storages", storages), ("tensors", tensors), ("pickle", pkl)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _storage_args(key: str) -> bytes:
    return b"\x80\x02(" + s8(key) + s8("cpu") + sglob("torch", "FloatStorage") + b"t."


def _storage(key: str, numel: int = 2) -> bytes:
    return _storage_args(key) + struct.pack("<q", numel) + b"\xff\xfe" * (2 * numel)


def _tensor(key: str, storage: str) -> bytes:
    args = b"\x80\x02(" + s8(key) + s8(storage) + sglob("torch", "FloatTensor") + b"t."
    return args + struct.pack("<iI", 1, 0) + struct.pack("<qqq", 2, 1, 0)


@pytest.mark.parametrize("where", ["second storage", "storage views", "second tensor"])
def test_every_pickle_of_a_legacy_tar_checkpoint_is_scanned(where):
    count2 = pickle.dumps(2, protocol=2)
    evil = call4("os", "system", PAYLOAD)
    if where == "second storage":  # the payload sits behind the first storage's raw bytes
        storages = count2 + _storage("0") + evil
    else:
        storages = count2 + _storage("0") + _storage("1") + (evil if where == "storage views"
                                                              else pickle.dumps([], protocol=2))
    tensors = count2 + _tensor("t0", "0") + (evil if where == "second tensor" else _tensor("t1", "1"))
    rep = scan_bytes(_legacy_tar(storages, tensors, pickle.dumps({}, protocol=2)), "old.tar")
    assert has_os_system(rep), (where, [f.title for f in rep.findings])


# ---------------------------------------------------------------- A.3 joblib / npy dtypes
def _dtype(code: str, state: bytes | None = None) -> bytes:
    return sglob("numpy", "dtype") + s8(code) + b"\x89\x88\x87R" + (state + b"b" if state else b"")


def _state(elsize: int, flags: int, fields: bytes = b"N", names: bytes = b"N") -> bytes:
    return (b"(K\x03" + s8("|") + b"N" + names + fields + b"J" + struct.pack("<i", elsize)
            + b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", flags) + b"t")


def _joblib(dtype: bytes, payload: bytes) -> bytes:
    state = (b"}(" + s8("subclass") + sglob("numpy", "ndarray") + s8("shape") + b"K\x01\x85"
             + s8("order") + s8("C") + s8("dtype") + dtype + s8("allow_mmap") + b"\x89u")
    return (b"\x80\x04" + sglob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
            + payload + b".")


JOBLIB_DTYPES = {
    "object spelled out": _dtype("object", _state(8, 0)),
    "f8 with object flags": _dtype("f8", _state(-1, 63)),
    "structured, object field": _dtype("V16", _state(16, 27, names=b"(" + s8("a") + s8("b") + b"t",
                                                      fields=b"}(" + s8("a") + _dtype("O8") + b"K\x00\x86"
                                                      + s8("b") + _dtype("f8") + b"K\x08\x86u")),
    "sub-array of objects": _dtype("V16", b"(K\x03" + s8("|") + _dtype("O8") + b"K\x02\x85\x86"
                                   + b"NNJ" + struct.pack("<i", 16) + b"J\xff\xff\xff\xffJ\x00\x00\x00\x00t"),
    "unknown code": _dtype("x17"),
}


@pytest.mark.parametrize("case", sorted(JOBLIB_DTYPES))
def test_joblib_dtype_is_judged_as_numpy_does(case):
    data = _joblib(JOBLIB_DTYPES[case], call4("os", "system", PAYLOAD))
    rep = scan_bytes(data, "model.joblib")
    assert has_os_system(rep), (case, [f.title for f in rep.findings])


def test_numpy_agrees_with_the_scanner_on_object_flags():
    np = pytest.importorskip("numpy")
    d = np.dtype("f8", False, True)
    d.__setstate__((3, "<", None, None, None, -1, -1, 63))
    assert d.hasobject  # the premise of "f8 with object flags": joblib then unpickles what follows


@pytest.mark.parametrize("content", [[(1, "x")], [(None, "y"), (2.5, "z")], [({"k": 1}, "w")]])
def test_genuine_joblib_structured_object_array_is_scanned_not_malformed(tmp_path, content):
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    arr = np.array(content, dtype=[("a", "O"), ("b", "U4")])
    path = tmp_path / "s.joblib"
    joblib.dump({"arr": arr}, path)
    rep = scan(path)
    assert not [f.title for f in rep.findings if f.severity > Severity.LOW]
    evil = np.array([(print, "x"), *content], dtype=[("a", "O"), ("b", "U4")])
    joblib.dump({"arr": evil}, path)  # a builtin in the object field: judged on the contents
    rep = scan(path)
    assert any("print" in f.title for f in rep.findings if f.severity >= Severity.HIGH), rep.findings


@pytest.mark.parametrize("descr", ["'object'", "[('a', 'object')]", "[('a', '<f8'), ('b', [('c', 'object')])]"])
def test_npy_dtype_is_judged_as_numpy_does(descr):
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + EVIL0
    assert has_os_system(scan_bytes(data, "a.npy"))


@pytest.mark.parametrize("code", ["b1", "?", "i1", "<i2", ">u4", "=i8", "f2", "<f4", "f8", "f16", "c8", "<c16",
                                  "S1", "S17", "<U3", "V16", "M8", "<M8[ns]", "m8[D]", "<m8[10s]"])
def test_plain_dtype_grammar_agrees_with_numpy(code):
    np = pytest.importorskip("numpy")
    from modelshield.artifacts.numpy_scan import plain_code_itemsize

    size = plain_code_itemsize(code)
    dt = np.dtype(code)
    assert size == dt.itemsize and not dt.hasobject


# ---------------------------------------------------------------- A.4 TorchScript
TS_SOURCES = {
    "implicit concatenation": 'def forward(self, x):\n    f = getattr(torch, "sa" "ve")\n    return x\n',
    "binary concatenation": 'def forward(self, x):\n    f = getattr(torch, "sa" + "ve")\n    return x\n',
    "format": 'def forward(self, x):\n    f = getattr(ops.aten, "{}ve".format("sa"))\n    return x\n',
    "getattr on a module": 'def forward(self, x):\n    f = getattr(torch.ops.aten, "add")\n    return x\n',
    "upper case op": 'def forward(self, x):\n    torch.SAVE(x, "/tmp/x")\n    return x\n',
    "python internals": 'def forward(self, x):\n    y = x.__class__.__base__\n    return x\n',
    "unparseable": 'def forward(self x):\n    torch.save(x, "/tmp/x")\n',
    "not utf-8": 'def forward(self, x):\n    return x\n# \xff\n',
}


@pytest.mark.parametrize("case", sorted(TS_SOURCES))
@pytest.mark.parametrize("member", ["archive/code/__torch__.py", "archive/code/__torch__/m.PY", "archive/CODE/x.Py"])
def test_torchscript_source_is_parsed_not_grepped(case, member):
    src = TS_SOURCES[case].encode("utf-8") if case != "not utf-8" else TS_SOURCES[case].encode("latin-1")
    data = write_zip([("archive/data.pkl", pickle.dumps({}, protocol=2)),
                      ("archive/constants.pkl", pickle.dumps((), protocol=2)), (member, src),
                      ("archive/version", b"3\n")])
    rep = scan_bytes(data, "ts.pt")
    hits = [f for f in rep.findings if f.rule_id.startswith("artifact.torch.torchscript-")
            and f.severity >= Severity.HIGH]
    assert hits, (case, member, [f.title for f in rep.findings])


def test_serialized_sequential_children_are_not_flagged():
    src = (b'class Sequential(Module):\n  __parameters__ = []\n  __annotations__["0"] = __torch__.L\n'
           b'  def forward(self: __torch__.S,\n    input: Tensor) -> Tensor:\n    _0 = getattr(self, "0")\n'
           b'    if torch.__is__(input, None):\n      pass\n    return (_0).forward(input, )\n')
    data = write_zip([("archive/data.pkl", pickle.dumps({}, protocol=2)), ("archive/code/__torch__.py", src)])
    assert not [f.title for f in scan_bytes(data, "ts.pt").findings if f.severity > Severity.LOW]


# ---------------------------------------------------------------- A.5 Keras by content, GGUF render oracle
@pytest.mark.parametrize("others", [
    [("model.weights.npz", b"PK\x05\x06" + b"\x00" * 18)],
    [],
    [("weights/variables.bin", b"\x00" * 32), ("assets/vocab.txt", b"a\nb\n")],
])
def test_keras_archive_is_recognised_by_its_config(others):
    import json

    members = [("config.json", json.dumps(keras_model(DENSE, LAMBDA3)).encode()), *others]
    rep = scan_bytes(write_zip(members), "m.keras")
    assert any(f.rule_id == "artifact.keras.lambda" for f in rep.findings), [f.title for f in rep.findings]


@pytest.mark.parametrize("prefix", [b"\x80\x02N.", b"N.", b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00N.",
                                    b"\x93NUMPY-not-really"])
def test_zip_behind_a_short_prefix_is_scanned(prefix):
    import json

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        zf.writestr("config.json", json.dumps(keras_model(DENSE, LAMBDA3)))
    data = prefix + buf.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(data))  # what Keras' loader checks
    rep = scan_bytes(data, "m.keras")
    assert any(f.rule_id == "artifact.keras.lambda" for f in rep.findings), [f.title for f in rep.findings]


GGUF_EVIL = [
    "{{ ''['__cla' ~ 'ss__'] }}",
    "{% set a = '__cl' %}{% set b = a ~ 'ass__' %}{{ messages[0][b] }}",
    "{% for m in messages %}{{ m['_' ~ '_class_' ~ '_'] }}{% endfor %}",
    "{% set n = ['__', 'glo', 'bals__'] | join %}{{ raise_exception[n] }}",
]


@pytest.mark.parametrize("template", GGUF_EVIL)
def test_gguf_template_building_dunder_names_is_caught_by_the_render_oracle(template):
    rep = scan_bytes(gguf({"general.architecture": "llama", "tokenizer.chat_template": template}), "m.gguf")
    assert any(f.rule_id == "artifact.gguf.template-injection" and f.severity is Severity.CRITICAL
               for f in rep.findings), [f.title for f in rep.findings]


def test_ordinary_chat_template_passes_the_render_oracle():
    template = ("{% for m in messages %}{% if m['role'] == 'system' %}<<SYS>>{{ m['content'] }}<</SYS>>"
                "{% elif m['role'] == 'user' %}[INST] {{ m['content'] | trim }} [/INST]{% else %}"
                "{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
                "{% if add_generation_prompt %}{{ bos_token }}{% endif %}")
    rep = scan_bytes(gguf({"tokenizer.chat_template": template}), "m.gguf")
    assert not [f.title for f in rep.findings if f.severity > Severity.LOW]


# ---------------------------------------------------------------- A.6 time limits
@pytest.mark.parametrize("filler", [b"N0", b"\x880", b"(N1", b"]0"])
def test_a_probe_that_runs_out_of_time_is_inconclusive_not_not_a_pickle(filler):
    data = filler * 3000 + EVIL0  # > 4096 opcodes before the global: the deadline check fires first
    r = Reader(io.BytesIO(data), Budget(0.0), size=len(data))
    res = scan_pickle_stream(r, Budget(-1.0), probe=True)
    assert res.is_pickle and any(f.rule == "artifact.limit-exceeded" for f in res.findings)
    rep = scan_bytes(data, "notes.txt", timeout=0)
    assert rep.files[0].status is not FileStatus.CLEAN
    assert any(f.rule_id == "artifact.limit-exceeded" and f.severity >= Severity.HIGH for f in rep.findings)


@pytest.mark.parametrize("unit", [b"\x80\x02]", b"\x80\x02(", b"\x80\x03}", b"\x80\x04)"])
def test_search_behind_a_junk_prefix_is_bounded(unit):
    data = b"JUNK!" + unit * 22_000  # ~66 KiB: the old search re-parsed it from every candidate
    t0 = time.perf_counter()
    rep = scan_bytes(data, "blob.bin", timeout=1)
    assert time.perf_counter() - t0 < 10
    fr = rep.files[0]
    assert fr.status is not FileStatus.CLEAN
    assert any(f.rule_id == "artifact.limit-exceeded" for f in fr.findings), [f.title for f in fr.findings]


def test_search_bound_is_linear_with_a_generous_deadline():
    data = b"JUNK!" + b"\x80\x02]" * 22_000
    t0 = time.perf_counter()
    rep = scan_bytes(data, "blob.bin", timeout=120)
    assert time.perf_counter() - t0 < 20  # the candidate/opcode bound stops it, not the deadline
    assert any("search for a pickle behind a prefix" in f.title for f in rep.findings)


# ---------------------------------------------------------------- A.2/A.6 long opcode arguments
LONG_LINES = {
    "UNICODE": b"V" + b"A" * 70_000 + b"\n0",
    "STRING": b"S'" + b"A" * 70_000 + b"'\n0",
    "PERSID": b"P" + b"A" * 5_000 + b"\n0",
    "FLOAT": b"F" + b"1" * 5_000 + b"\n0",
    "INT": b"I" + b"0" * 4_200 + b"1\n0",
}


@pytest.mark.parametrize("case", sorted(LONG_LINES))
def test_a_long_opcode_line_does_not_end_the_probe(case):
    # the unpickler reads a line of any length; a scanner that gives up there calls the file text
    rep = scan_bytes(LONG_LINES[case] + EVIL0, "notes.txt")
    assert has_os_system(rep), (case, [f.title for f in rep.findings])


@pytest.mark.parametrize("repeat", [30, 60, 200])
def test_a_long_dotted_global_is_unresolvable_not_malformed(repeat):
    # protocol 4 (set mid-stream) resolves dotted names: a long chain is valid for the loader
    data = b"\x880\x80\x04cos\nsystem" + b".__call__" * repeat + b"\n(Vecho\ntR."
    rep = scan_bytes(data, "notes.txt")
    assert any(f.severity is Severity.CRITICAL for f in rep.findings), [f.title for f in rep.findings]


@pytest.mark.parametrize("first", [bytes([b]) for b in b"PcigpVSIFL(]}\x88\x8c\x95"]
                         + [b"\x80\x02", b"\x80\x05", b"\x1f\x8b", b"\x5d\x00\x00", b"\x78\x9c", b"BZh", b"GGUF",
                            b"\x82\x05.", b"\x83\x01\x02", b"\x84\x01\x02\x03\x04", b"N)R", b"P\n}b"])
@pytest.mark.parametrize("body", ["zeros", "random"])
def test_probing_raw_storages_gives_no_false_positive(first, body):
    # float data starts with any bytes, short magics included: none of it may count as a format
    import random

    rnd = random.Random(first)
    rest = bytes(70_000) if body == "zeros" else bytes(rnd.getrandbits(8) for _ in range(8192))
    members = [("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2)), ("archive/version", b"3\n"),
               ("archive/data/0", first + rest), ("archive/data/1", first + rest[::-1])]
    rep = scan_bytes(write_zip(members), "model.pt")
    assert not [f.title for f in rep.findings if f.severity > Severity.LOW]


def test_large_compressed_member_holding_an_archive_is_not_skipped():
    inner = write_zip([("pad.bin", bytes(17 << 20)), ("evil.pkl", EVIL0)])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.zip", inner)
    rep = scan_bytes(buf.getvalue(), "bundle.zip")
    assert rep.files[0].status is not FileStatus.CLEAN
    assert any(f.severity >= Severity.HIGH for f in rep.findings), [f.title for f in rep.findings]


@pytest.mark.parametrize("seed", range(4))
def test_many_random_storages_give_no_false_positive(seed):
    import random

    rnd = random.Random(seed)
    members = [("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2)), ("archive/version", b"3\n")]
    members += [(f"archive/data/{i}", rnd.randbytes(rnd.choice([2, 64, 256, 1024]))) for i in range(600)]
    rep = scan_bytes(write_zip(members), "model.pt")
    assert not [f.title for f in rep.findings if f.severity > Severity.LOW][:5]


def _many_member_zip() -> bytes:
    return write_zip([(f"m{i}.bin", b"\x00" * 8) for i in range(300)])


def _many_kv_gguf() -> bytes:
    return gguf({f"k{i}": i for i in range(3000)})


def _long_pickle() -> bytes:
    return b"\x80\x04" + b"N0" * 20_000 + call4("os", "system", PAYLOAD)[2:]


@pytest.mark.parametrize("make", [_many_member_zip, _many_kv_gguf, _long_pickle,
                                  lambda: FIRST_OPCODES["NEWTRUE"] + b"N0" * 20_000 + EVIL0],
                         ids=["zip", "gguf", "pickle", "headerless"])
def test_a_scan_past_its_deadline_is_inconclusive_in_every_format(make):
    rep = scan_bytes(make(), "model.bin", timeout=0)
    fr = rep.files[0]
    assert fr.status is not FileStatus.CLEAN
    assert any(f.rule_id == "artifact.limit-exceeded" and f.severity >= Severity.HIGH for f in fr.findings), \
        [f.title for f in fr.findings]
