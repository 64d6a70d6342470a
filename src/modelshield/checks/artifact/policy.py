"""The scanner's policy tables: which pickle globals are safe, which are dangerous, and why.

Every entry carries a one-line reason. Lookup is by the *full dotted path* of a global
(``module + "." + name``), so a submodule (``asyncio.unix_events._UnixSubprocessTransport``) or an
attribute chain (``random._os.system``, protocol-4 dotted names) cannot slip past an entry written
for its parent.

Verdicts
--------
``allow``   on the allowlist: ordinary model content (scikit-learn, NumPy, PyTorch tensors, ...).
``deny``    on the denylist: runs code, touches files/network, or is an indirection gadget -> critical.
``unknown`` neither: anything off the allowlist is at least *suspicious* (medium) and shown with its
            module path, because loading it imports and runs code we have not reviewed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALLOW_EXACT",
    "ALLOW_PATTERNS",  # noqa: F822 - provided by the module __getattr__ (compiled on demand)
    "DENY_PREFIXES",
    "NESTED_LOADERS",
    "Verdict",
    "classify_global",
]


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one global: ``kind`` is allow/deny/unknown; ``reason`` says why."""

    kind: str
    reason: str
    rule: str = ""


# --------------------------------------------------------------------------------------------
# Denylist: full-dotted-path prefixes. A prefix matches itself and everything below it.
# --------------------------------------------------------------------------------------------
DENY_PREFIXES: dict[str, str] = {
    # process execution
    "os": "process execution and file-system access (os.system, os.popen, os.exec*)",
    "posix": "the C half of os: system, execv, fork",
    "nt": "the Windows half of os: system, startfile",
    "subprocess": "runs arbitrary commands",
    "_posixsubprocess": "fork_exec runs arbitrary commands below subprocess",
    "pty": "pty.spawn runs a command on a pseudo-terminal",
    "platform": "platform helpers call os.popen",
    "commands": "Python 2 shell command runner",
    "popen2": "Python 2 shell command runner",
    "multiprocessing": "spawns processes (multiprocessing.util.spawnv_passfds, Process)",
    "concurrent": "executors run arbitrary callables",
    "asyncio": "event loops spawn subprocesses (asyncio.unix_events._UnixSubprocessTransport, CVE-2025-10157)",
    "threading": "starts threads running arbitrary callables",
    "_thread": "start_new_thread runs arbitrary callables",
    "signal": "installs handlers / sends signals",
    "_winapi": "Windows process creation",
    "msvcrt": "Windows console/process primitives",
    "winreg": "Windows registry access",
    # code execution / import machinery
    "builtins.eval": "evaluates arbitrary code",
    "builtins.exec": "executes arbitrary code",
    "builtins.compile": "compiles arbitrary code",
    "builtins.__import__": "imports any module",
    "builtins.open": "opens any file",
    "builtins.getattr": "getattr indirection reaches any attribute (numpy.__builtins__-style chains)",
    "builtins.setattr": "overwrites attributes of modules/classes",
    "builtins.delattr": "deletes attributes of modules/classes",
    "builtins.globals": "exposes the module namespace",
    "builtins.locals": "exposes the frame namespace",
    "builtins.vars": "exposes object namespaces",
    "builtins.breakpoint": "enters the debugger",
    "builtins.input": "reads from the terminal",
    "builtins.help": "starts the interactive help (pager subprocess)",
    "builtins.exit": "terminates the interpreter",
    "builtins.quit": "terminates the interpreter",
    "builtins.type": "type(name, bases, dict) creates classes at load time",
    "builtins.map": "lazy call gadget: map(func, args) calls func",
    "builtins.filter": "lazy call gadget: filter(func, args) calls func",
    "builtins.memoryview": "raw memory views",
    "builtins.super": "attribute lookup gadget",
    "builtins.classmethod": "descriptor gadget",
    "builtins.staticmethod": "descriptor gadget",
    "builtins.property": "descriptor gadget",
    "builtins.__build_class__": "creates classes from code objects",
    "importlib": "import machinery: importlib.import_module loads any module",
    "imp": "legacy import machinery",
    "zipimport": "imports code from zip files",
    "pkgutil": "pkgutil.resolve_name resolves any 'module:attr' string (universal denylist bypass)",
    "pkg_resources": "entry points load arbitrary code",
    "runpy": "runs modules and scripts",
    "marshal": "marshal.loads builds code objects",
    "types": "types.FunctionType/CodeType build functions from bytecode",
    "code": "interactive interpreter (code.interact, InteractiveInterpreter.runsource)",
    "codeop": "compiles source",
    "ast": "ast.literal_eval aside, compiles/parses code",
    "inspect": "introspection reaches frames and globals",
    "gc": "gc.get_objects/get_referrers reach every live object",
    "ctypes": "calls C functions, writes memory",
    "_ctypes": "calls C functions, writes memory",
    "cffi": "calls C functions",
    "sys": "sys.modules / sys.settrace / interpreter state",
    "site": "site.main/addsitedir executes .pth files",
    "sitecustomize": "runs at start-up",
    "atexit": "registers code to run at exit",
    "builtins.__loader__": "module loader object",
    # debugger / profiler / REPL entry points that run code strings
    "pdb": "debugger: pdb.run executes code strings",
    "bdb": "debugger base: Bdb.run executes code strings",
    "profile": "profile.run executes code strings",
    "cProfile": "cProfile.run executes code strings",
    "_lsprof": "profiler core",
    "pstats": "reads/writes profile files",
    "trace": "trace.Trace.run executes code strings",
    "timeit": "timeit.timeit compiles and runs code strings",
    "doctest": "doctest.debug_script / run_docstring_examples execute code",
    "idlelib": "IDLE runs code (idlelib.pyshell, run, debugger)",
    "lib2to3": "lib2to3 refactoring tools execute fixers / write files",
    "pydoc": "pydoc pipes output through a pager subprocess and imports modules",
    "rlcompleter": "evaluates expressions for completion",
    "readline": "terminal state",
    "tkinter": "GUI event loop / Tcl eval",
    "_tkinter": "Tcl eval",
    "turtle": "GUI / Tcl eval",
    # package installation and browsers
    "pip": "pip.main installs and runs arbitrary packages (CVE-2025-1716)",
    "ensurepip": "ensurepip._run_pip runs pip (CVE-2025-1716)",
    "venv": "creates environments and runs pip",
    "distutils": "build tooling: spawns compilers",
    "setuptools": "build tooling: runs setup code",
    "webbrowser": "opens URLs / runs browser commands",
    "antigravity": "opens a web browser",
    "mailcap": "runs mailcap commands",
    # network
    "socket": "network access",
    "_socket": "network access",
    "ssl": "network access",
    "http": "network access (http.client, http.server)",
    "urllib": "network access",
    "urllib2": "network access",
    "urllib3": "network access",
    "requests": "network access",
    "aiohttp": "network access",
    "httpx": "network access",
    "ftplib": "network access",
    "smtplib": "network access",
    "telnetlib": "network access",
    "poplib": "network access",
    "imaplib": "network access",
    "nntplib": "network access",
    "xmlrpc": "network access / remote calls",
    "socketserver": "network servers",
    "asynchat": "network access",
    "asyncore": "network access",
    "selectors": "network polling",
    "select": "network polling",
    "wsgiref": "HTTP servers",
    "logging.config": "logging.config.listen opens a socket; fileConfig evaluates expressions",
    "logging.handlers": "handlers open sockets, files and SMTP connections",
    # file-system I/O
    "io": "io.open / FileIO open any file",
    "_io": "io.open / FileIO open any file",
    "codecs": "codecs.open opens any file",
    "shutil": "copies/removes files and trees",
    "tempfile": "creates files",
    "glob": "lists the file system",
    "fileinput": "reads files",
    "linecache": "reads files",
    "pathlib": "Path.write_text/read_bytes/unlink touch the file system",
    "tarfile": "extracts archives (path traversal)",
    "zipfile": "extracts archives (path traversal)",
    "shelve": "opens databases that unpickle",
    "dbm": "opens database files",
    "sqlite3": "opens database files",
    "gzip.open": "opens any file",
    "bz2.open": "opens any file",
    "lzma.open": "opens any file",
    "uuid._get_command_stdout": "runs a command",
    "ctypes.util": "runs ldconfig/gcc",
    # nested deserialisation
    "pickle": "pickle.loads runs a nested pickle; Unpickler/Pickler reach load/dump",
    "_pickle": "C pickle: loads runs a nested pickle",
    "cPickle": "Python 2 pickle",
    "pickletools": "reads pickles",
    "copyreg._reconstructor_": "guard against look-alike names",
    "dill": "dill.loads runs a nested pickle with code objects",
    "cloudpickle": "cloudpickle.loads runs a nested pickle with code objects",
    "joblib.load": "loads a nested joblib file (pickle)",
    "joblib.dump": "writes files",
    "joblib.parallel": "runs callables in worker processes",
    "joblib.Parallel": "runs callables in worker processes",
    "joblib.numpy_pickle.load": "loads a nested joblib file (pickle)",
    "joblib.numpy_pickle_compat": "NDArrayWrapper reads arbitrary file names next to the model",
    "yaml": "yaml.load / unsafe_load construct arbitrary objects",
    "jsonpickle": "decodes arbitrary objects",
    # call / attribute gadgets
    "operator": "attrgetter/itemgetter/methodcaller gadgets reach any attribute or method",
    "_operator": "attrgetter/itemgetter/methodcaller gadgets reach any attribute or method",
    "functools": "functools.partial / reduce gadgets call arbitrary callables",
    "_functools": "functools.partial / reduce gadgets call arbitrary callables",
    "itertools": "starmap and friends call arbitrary callables lazily",
    "copy": "copy.deepcopy calls __reduce_ex__ of arbitrary objects",
    "weakref": "finalizers run callables",
    "contextlib": "context managers call arbitrary callables",
    "collections.namedtuple": "builds classes from strings",
    "string.Formatter": "format strings reach attributes",
    "numpy.load": "numpy.load(allow_pickle=True) unpickles another file",
    "numpy.loads": "unpickles bytes (old NumPy)",
    "numpy.save": "writes files",
    "numpy.savez": "writes files",
    "numpy.savez_compressed": "writes files",
    "numpy.savetxt": "writes files",
    "numpy.loadtxt": "reads files",
    "numpy.genfromtxt": "reads files and URLs",
    "numpy.fromfile": "reads files",
    "numpy.tofile": "writes files",
    "numpy.fromregex": "reads files",
    "numpy.memmap": "maps any file into memory",
    "numpy.DataSource": "downloads URLs",
    "numpy.lib.npyio": "file I/O (load/save/loadtxt)",
    "numpy.lib._npyio_impl": "file I/O (load/save/loadtxt)",
    "numpy.lib._datasource": "downloads URLs",
    "numpy.lib.format.open_memmap": "maps any file into memory",
    "numpy.lib.format.read_array": "reads (and unpickles) array files",
    "numpy.ctypeslib": "loads shared libraries",
    "numpy.testing": "test helpers run subprocesses",
    "numpy.f2py": "compiles and imports Fortran/C code",
    "numpy.distutils": "build tooling: spawns compilers",
    "numpy.__config__": "build configuration",
    "numpy.core._internal": "ctypes helpers",
    "numpy._core._internal": "ctypes helpers",
    "torch.load": "loads a nested (possibly pickle) checkpoint",
    "torch.save": "writes files",
    "torch.hub": "downloads and runs repositories",
    "torch.utils.collect_env": "collect_env.run runs shell commands",
    "torch.utils.cpp_extension": "compiles and loads C++ code",
    "torch.utils.data": "data loaders spawn workers and run callables",
    "torch.utils.benchmark": "compiles and times code strings",
    "torch.serialization": "torch.load/save and unrestricted unpicklers",
    "torch.jit": "TorchScript compilation/loading runs code",
    "torch.package": "torch.package importers run packaged code",
    "torch.distributed": "network and remote calls (rpc)",
    "torch.multiprocessing": "spawns processes",
    "torch.ops": "calls any registered operator (including file I/O ops)",
    "torch.classes": "calls any registered TorchScript class",
    "torch._dynamo": "compiles and runs Python code",
    "torch._inductor": "compiles and runs generated code",
    "torch.compile": "compiles and runs Python code",
    "torch.cuda": "device/runtime control",
    "torch.backends": "runtime configuration",
    "torch._C": "raw C++ bindings",
    "torch.fx": "fx graphs compile Python code",
    "torch.library": "registers operators",
    "torch.overrides": "dispatch override gadgets",
    "torch.autograd.profiler": "profiler writes files",
    "torch.profiler": "profiler writes files",
    "sklearn.datasets": "fetch_* download data; load_* read files",
    "sklearn.utils._testing": "test helpers run subprocesses",
    "sklearn.utils._show_versions": "imports modules",
    "sklearn.utils.parallel": "runs callables in worker processes",
    "sklearn.externals": "vendored code",
    "sklearn.__check_build": "build helpers",
    "sklearn._build_utils": "build helpers",
    "pandas.io": "read_*/to_* touch files, URLs and databases",
    "pandas.read_pickle": "unpickles another file",
    "scipy.io": "reads/writes files",
    "scipy.datasets": "downloads data",
    "scipy.weave": "compiles and runs C code",
    "keras": "keras objects in a pickle rebuild models from configs (Lambda layers run bytecode)",
    "tensorflow": "TensorFlow objects in a pickle can run graphs with file/network ops",
    "IPython": "REPL that executes code",
    "jupyter_client": "kernels execute code",
}

# Names that unpickle bytes they receive as their first argument: the scanner scans that argument
# as a nested pickle (in addition to reporting the call).
NESTED_LOADERS: frozenset[str] = frozenset(
    {
        "pickle.loads",
        "pickle._loads",
        "_pickle.loads",
        "cPickle.loads",
        "dill.loads",
        "dill._dill.loads",
        "cloudpickle.loads",
        "numpy.loads",
        "torch.storage._load_from_bytes",
        "torch.load",
        "joblib.load",
    }
)

# --------------------------------------------------------------------------------------------
# Allowlist: exact full paths, then (regex over the full path, reason) patterns.
# --------------------------------------------------------------------------------------------
_BUILTIN_SAFE = (
    "set", "frozenset", "bytes", "bytearray", "dict", "list", "tuple", "int", "float", "complex",
    "bool", "str", "slice", "range", "object", "NoneType", "Ellipsis", "NotImplemented",
)

ALLOW_EXACT: dict[str, str] = {
    **{f"builtins.{n}": "plain builtin container/scalar constructor" for n in _BUILTIN_SAFE},
    **{f"__builtin__.{n}": "protocol-2 spelling of a builtin constructor" for n in _BUILTIN_SAFE},
    "copyreg._reconstructor": "protocol 0/1 object reconstruction (class and base are checked separately)",
    "copy_reg._reconstructor": "Python 2 spelling of copyreg._reconstructor",
    "copyreg.__newobj__": "cls.__new__(cls, *args) for protocol 2 objects",
    "copyreg.__newobj_ex__": "cls.__new__(cls, *args, **kwargs)",
    "_codecs.encode": "protocol 2 encodes bytes as _codecs.encode(str, 'latin1')",
    "collections.OrderedDict": "ordered mapping (PyTorch state_dicts)",
    "collections.Counter": "counting mapping",
    "collections.defaultdict": "mapping; its default factory is a separate, checked global",
    "collections.deque": "sequence container",
    "datetime.date": "value type",
    "datetime.time": "value type",
    "datetime.datetime": "value type",
    "datetime.timedelta": "value type",
    "datetime.timezone": "value type",
    "decimal.Decimal": "value type",
    "fractions.Fraction": "value type",
    "uuid.UUID": "value type",
    "enum.Enum": "value type",
    "re._compile": "compiled regular expressions (no code execution)",
    "_sre.compile": "compiled regular expressions",
    "re.Pattern": "compiled regular expressions",
    "numpy.ndarray": "NumPy array",
    "numpy.dtype": "NumPy dtype",
    "numpy.matrix": "NumPy matrix",
    "numpy.core.multiarray._reconstruct": "ndarray reconstruction (NumPy 1.x)",
    "numpy._core.multiarray._reconstruct": "ndarray reconstruction (NumPy 2.x)",
    "numpy.core.multiarray.scalar": "NumPy scalar reconstruction (NumPy 1.x)",
    "numpy._core.multiarray.scalar": "NumPy scalar reconstruction (NumPy 2.x)",
    "numpy.core.numeric._frombuffer": "protocol-5 ndarray reconstruction (NumPy 1.x)",
    "numpy._core.numeric._frombuffer": "protocol-5 ndarray reconstruction (NumPy 2.x)",
    "numpy.ma.core._mareconstruct": "masked array reconstruction",
    "numpy.ma.core.MaskedArray": "masked array",
    "numpy.random._pickle.__generator_ctor": "Generator reconstruction",
    "numpy.random._pickle.__bit_generator_ctor": "BitGenerator reconstruction",
    "numpy.random._pickle.__randomstate_ctor": "RandomState reconstruction",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": "SeedSequence reconstruction",
    "joblib.numpy_pickle.NumpyArrayWrapper": "joblib array placeholder; its data follows in the stream",
    "torch._utils._rebuild_tensor": "tensor reconstruction from a storage",
    "torch._utils._rebuild_tensor_v2": "tensor reconstruction from a storage",
    "torch._utils._rebuild_tensor_v3": "tensor reconstruction from a storage",
    "torch._utils._rebuild_parameter": "nn.Parameter reconstruction",
    "torch._utils._rebuild_parameter_with_state": "nn.Parameter reconstruction",
    "torch._utils._rebuild_qtensor": "quantized tensor reconstruction",
    "torch._utils._rebuild_sparse_tensor": "sparse tensor reconstruction",
    "torch._utils._rebuild_meta_tensor_no_storage": "meta tensor reconstruction",
    "torch._utils._rebuild_device_tensor_from_numpy": "tensor from NumPy",
    "torch._utils._rebuild_wrapper_subclass": "tensor subclass wrapper",
    "torch._utils._rebuild_nested_tensor": "nested tensor reconstruction",
    "torch._tensor._rebuild_from_type_v2": "tensor subclass reconstruction",
    "torch._tensor._rebuild_from_type": "tensor subclass reconstruction",
    "torch.storage._load_from_bytes": "a torch.save blob inside a plain pickle (scanned as a nested file)",
    "torch.Tensor": "tensor type",
    "torch.Size": "shape type",
    "torch.device": "device descriptor",
    "torch.nn.parameter.Parameter": "model parameter",
    "torch.nn.parameter.Buffer": "model buffer",
    "torch.serialization._get_layout": "layout descriptor",
    "torch.storage.TypedStorage": "tensor storage",
    "torch.storage.UntypedStorage": "tensor storage",
    "torch.UntypedStorage": "tensor storage",
    "torch.TypedStorage": "tensor storage",
    "sklearn.utils._bunch.Bunch": "attribute dict",
    "pyarrow.lib._restore_array": "Arrow-backed pandas columns (pandas >= 3 strings)",
    "pyarrow.lib.type_for_alias": "Arrow data type by name",
    "pyarrow.lib.py_buffer": "Arrow buffer over pickled bytes",
    # modelshield's own hardened models (``modelshield harden dp|fairness`` outputs): plain estimators
    # whose state is restored by BUILD into __dict__ (no __setstate__/__reduce__ of their own)
    "modelshield.harden.dp.DPLogisticRegression": "modelshield's DP-SGD logistic regression (harden dp)",
    "modelshield.harden.dp.DPReport": "privacy-accounting record kept on a DP model (dataclass of numbers)",
    "modelshield.harden.fairness.MitigatedClassifier": "modelshield's fairness-mitigated classifier "
                                                       "(harden fairness)",
    "modelshield.harden.fairness._PositiveScore": "0/1 view of a wrapped classifier inside a mitigated model",
    # the fairlearn classes those hardened models contain (estimators/moments; no I/O)
    "fairlearn.reductions._exponentiated_gradient.exponentiated_gradient.ExponentiatedGradient":
        "fairlearn reductions mitigator (harden fairness -m exponentiated_gradient)",
    "fairlearn.reductions._exponentiated_gradient._lagrangian._PredictorAsCallable":
        "fairlearn wrapper calling a stored classifier's predict",
    "fairlearn.reductions._moments.utility_parity.DemographicParity": "fairlearn fairness constraint (moment)",
    "fairlearn.reductions._moments.utility_parity.EqualizedOdds": "fairlearn fairness constraint (moment)",
    "fairlearn.reductions._moments.error_rate.ErrorRate": "fairlearn objective (moment)",
    "fairlearn.postprocessing._threshold_optimizer.ThresholdOptimizer":
        "fairlearn post-processing mitigator (harden fairness -m threshold_optimizer)",
    "fairlearn.postprocessing._interpolated_thresholder.InterpolatedThresholder":
        "fitted per-group thresholds of a ThresholdOptimizer",
    "fairlearn.postprocessing._threshold_operation.ThresholdOperation": "one threshold comparison (> or <)",
}

_TORCH_DTYPES = (
    "float32 float float64 double float16 half bfloat16 complex64 cfloat complex128 cdouble "
    "uint8 int8 int16 short int32 int int64 long bool uint16 uint32 uint64 qint8 quint8 qint32 "
    "float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz complex32 chalf "
    "strided sparse_coo sparse_csr contiguous_format channels_last preserve_format"
).split()
for _d in _TORCH_DTYPES:
    ALLOW_EXACT[f"torch.{_d}"] = "dtype / layout / memory-format constant"

_CLASS = r"_*[A-Z][A-Za-z0-9_]*"
_PYX = r"__pyx_unpickle_[A-Za-z0-9_]+"
_MOD = r"(?:\.[a-z_][a-z0-9_]*)*"

#: (regular expression, reason) pairs, tried in order with ``fullmatch``. Each is compiled on first use
#: (a one-file scan rarely needs them all; compiling them at import cost several ms of start-up);
#: ``ALLOW_PATTERNS`` gives them compiled.
_ALLOW_SOURCES: tuple[tuple[str, str], ...] = (
    (rf"sklearn{_MOD}\.(?:{_CLASS}|{_PYX})", "scikit-learn estimator / transformer / Cython class"),
    (rf"sklearn\._loss{_MOD}\.[A-Za-z_][A-Za-z0-9_]*", "scikit-learn loss objects"),
    (rf"numpy\.random{_MOD}\.{_CLASS}", "NumPy random generators"),
    (r"numpy\.(?:core|_core)\.(?:multiarray|numeric|_multiarray_umath)\.(?:_reconstruct|scalar|"
     r"_frombuffer|frombuffer|_ufunc_reconstruct|ndarray|dtype)",
     "NumPy array/scalar reconstruction helpers"),
    (r"numpy\.(?:u?int(?:8|16|32|64)|float(?:16|32|64|128)|complex(?:64|128|256)|bool_?|"
     r"str_|bytes_|object_|void|datetime64|timedelta64|longdouble|clongdouble|intp|uintp|"
     r"generic|number|integer|floating)",
     "NumPy scalar types"),
    (r"numpy\.dtypes\.[A-Za-z0-9]+DType", "NumPy dtype classes"),
    (r"numpy\.(?:abs|absolute|log|log1p|log2|log10|exp|expm1|sqrt|square|sign|negative|"
     r"reciprocal|sin|cos|tan|tanh|arctan|sinh|cosh|floor|ceil|rint|clip|maximum|minimum|"
     r"add|subtract|multiply|divide|true_divide|power|mean|median|sum|nanmean|nanmedian|"
     r"identity|isnan|isfinite|argmax|argmin|max|min|std|var)",
     "NumPy ufunc / reduction used as a transformer function"),
    (rf"scipy\.sparse{_MOD}\.(?:{_CLASS}|_[a-z_]+_matrix|{_PYX})", "SciPy sparse matrices"),
    (r"scipy\.stats\._(?:continuous|discrete)_distns\.[a-z_]+(?:_gen)?", "SciPy distributions"),
    (rf"scipy\.stats\._distn_infrastructure\.(?:{_CLASS}|rv_[a-z_]+)", "SciPy frozen distributions"),
    (rf"pandas\.(?:core|_libs){_MOD}\.(?:{_CLASS}|_new_[A-Za-z]+|_unpickle[a-z_]*|"
     rf"new_block[a-z_]*|{_PYX}|_[a-z]+_unpickle|[A-Z]\w*)",
     "pandas containers and their reconstruction helpers"),
    (r"pandas\.(?:arrays\.)?[A-Z][A-Za-z0-9]*", "pandas containers, indexes, dtypes and arrays"),
    (rf"torch\.nn\.modules{_MOD}\.{_CLASS}", "PyTorch layer classes"),
    (r"torch\.nn\.functional\.[a-z][a-z0-9_]*", "PyTorch activation functions"),
    (rf"torch\.optim{_MOD}\.{_CLASS}", "PyTorch optimizer / scheduler classes"),
    (r"torch\.(?:[A-Z][A-Za-z0-9]*)Storage", "legacy typed storages"),
    (rf"torch\.nn\.utils\.parametrize\.{_CLASS}", "parametrized modules"),
    (rf"(?:xgboost|lightgbm|catboost){_MOD}\.{_CLASS}", "gradient-boosting model classes"),
    (rf"imblearn{_MOD}\.{_CLASS}", "imbalanced-learn estimators"),
)
_ALLOW_COMPILED: list[re.Pattern[str] | None] = [None] * len(_ALLOW_SOURCES)


def _leading_modules(source: str) -> frozenset[str] | None:
    """The top-level module names a pattern can match (``sklearn...`` -> {sklearn},
    ``(?:xgboost|lightgbm)...`` -> {xgboost, lightgbm}); ``None`` if not a literal prefix."""
    m = re.match(r"\(\?:([a-z_|]+)\)|([a-z_]+)", source)
    if m is None:
        return None
    rest = source[m.end():]
    if not (rest.startswith("\\.") or rest.startswith(_MOD)):  # the name must end there
        return None
    return frozenset((m.group(1) or m.group(2)).split("|"))


#: Per pattern, the top-level modules it can match: a cheap filter so that only the patterns a
#: global could match are compiled and tried (same first match as trying every pattern in order).
_ALLOW_HEADS: tuple[frozenset[str] | None, ...] = tuple(_leading_modules(src) for src, _ in _ALLOW_SOURCES)


def _allow_match(full: str) -> tuple[str, str] | None:
    """The first allow pattern (source, reason) that ``full`` matches entirely, compiling lazily."""
    head = full.split(".", 1)[0]
    for i, (source, why) in enumerate(_ALLOW_SOURCES):
        heads = _ALLOW_HEADS[i]
        if heads is not None and head not in heads:
            continue
        pattern = _ALLOW_COMPILED[i]
        if pattern is None:
            pattern = _ALLOW_COMPILED[i] = re.compile(source)
        if pattern.fullmatch(full):
            return source, why
    return None


def __getattr__(name: str) -> Any:
    if name == "ALLOW_PATTERNS":  # public, compiled on demand
        return tuple((re.compile(source), why) for source, why in _ALLOW_SOURCES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_DUNDER = re.compile(r"(^|\.)__[A-Za-z0-9_]+__($|\.)")
_DANGEROUS_LEAVES = frozenset(
    {"system", "popen", "spawn", "execv", "execve", "execl", "execvp", "fork", "eval", "exec",
     "compile", "__import__", "import_module", "loads", "load", "open", "run", "call",
     "check_output", "Popen", "getattr", "setattr", "resolve_name", "remove", "unlink", "rmtree"}
)


def _deny_lookup(path: str) -> tuple[str, str] | None:
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in DENY_PREFIXES:
            return key, DENY_PREFIXES[key]
    return None


#: The helpers TorchScript's C++ unpickler resolves itself (torch/csrc/jit/serialization/unpickler.cpp):
#: they only rebuild lists/tensors and never reach Python. Allowed only inside TorchScript archives.
TORCHSCRIPT_ALLOW: dict[str, str] = {
    "torch.jit._pickle.build_intlist": "rebuilds a list of ints",
    "torch.jit._pickle.build_tensorlist": "rebuilds a list of tensors",
    "torch.jit._pickle.build_doublelist": "rebuilds a list of floats",
    "torch.jit._pickle.build_boollist": "rebuilds a list of bools",
    "torch.jit._pickle.build_tensor_from_id": "looks up a tensor stored in the archive",
    "torch.jit._pickle.restore_type_tag": "attaches a static type to a container",
}
_TS_CLASS = re.compile(r"__torch__(\.[A-Za-z_][A-Za-z0-9_]*)+")


def classify_global(module: str, name: str, *, context: str = "pickle") -> Verdict:
    """Classify the global ``module``/``name`` a pickle asks for.

    ``name`` may be dotted (protocol 4 qualified names); every suffix of the attribute chain is
    checked so ``random._os.system`` is caught as ``os.system``. ``context="torchscript"`` is for
    pickles inside a TorchScript archive: torch reads them with its C++ unpickler, which resolves
    only :data:`TORCHSCRIPT_ALLOW` and ``__torch__.*`` classes compiled from the archive's own
    ``code/`` (scanned separately for file/process operators); everything else is judged as usual.
    """
    full = f"{module}.{name}" if name else module
    if context == "torchscript":
        if full in TORCHSCRIPT_ALLOW:
            return Verdict("allow", TORCHSCRIPT_ALLOW[full], full)
        if _TS_CLASS.fullmatch(full):
            return Verdict("allow", "TorchScript class compiled from this archive's code/", "__torch__")
    hit = _deny_lookup(full)
    if hit is not None:
        return Verdict("deny", hit[1], hit[0])
    if full in ALLOW_EXACT:
        return Verdict("allow", ALLOW_EXACT[full], full)
    # attribute chains through private aliases inside the *name*: random._os.system ...
    parts = full.split(".")
    first = len(module.split(".")) if name else len(parts)
    for i in range(first, len(parts)):
        suffix = ".".join(p.lstrip("_") for p in parts[i:])
        hit = _deny_lookup(suffix)
        if hit is not None:
            return Verdict("deny", f"attribute chain reaches {hit[0]}: {hit[1]}", hit[0])
    if _DUNDER.search(name or "") or "__builtins__" in full or "__globals__" in full:
        return Verdict("deny", "dunder attribute access reaches interpreter internals "
                               "(numpy.__builtins__-style indirection)", "dunder")
    if "." in name and parts[-1] in _DANGEROUS_LEAVES:
        return Verdict("deny", f"dotted attribute chain ending in {parts[-1]!r}", "dotted-chain")
    allowed = _allow_match(full)
    if allowed is not None:
        return Verdict("allow", allowed[1], allowed[0])
    if module == "__main__":
        if "." in name or not name[:1].isupper():
            return Verdict("deny", "__main__ functions/attribute chains reach whatever the loading script "
                                   "imported (from os import system)", "__main__")
        return Verdict("unknown", "a class from the saving script's __main__: the loading script must define "
                                  "it, so loading runs code that was not reviewed", "__main__")
    if module in ("builtins", "__builtin__", "exceptions"):
        return Verdict("deny", "builtins outside the container/scalar constructors are gadgets", "builtins")
    return Verdict("unknown", "not on the allowlist: importing it runs code that was not reviewed")
