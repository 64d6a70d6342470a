"""The scanner's policy tables: which pickle globals are safe, which are dangerous, and why.

Every entry carries a one-line reason. The **denylist** is looked up by the full dotted path
(``module + "." + name``), so a prefix covers its submodules (``asyncio.unix_events.
_UnixSubprocessTransport``). The **allowlist** is exact ``(module, name)`` pairs, plus rules that admit
one class-shaped identifier below a trusted package's module paths: a dotted name (protocol 4
attribute chain, ``sklearn._loss.loss`` + ``np.save``) is allowed only when its exact pair is listed,
because chains walk through the module aliases packages import. The restricted unpickler checks, after
import, that what a name resolved to is what was allowed (:func:`identity_verdict`).

Verdicts
--------
``allow``   an exact pair, or a name a rule admits: ordinary model content (scikit-learn, NumPy, ...).
``deny``    denylisted (runs code, touches files/network, or is an indirection gadget), an attribute
            chain, a dunder, a standard-library or builtins name off the allowlist, a re-exported
            gadget class, or any other name below a trusted module path -> critical.
``unknown`` a name of a package that is not reviewed at all: shown with its module path, because
            loading it imports and runs code we have not reviewed.
"""

from __future__ import annotations

import _compat_pickle
import functools
import re
import sys
import types
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "ALLOW_EXACT",
    "ALLOW_PAIRS",
    "ALLOW_PATTERNS",  # noqa: F822 - provided by the module __getattr__ (compiled on demand)
    "ALLOW_QUALNAMES",
    "ALLOW_RULES",
    "DENY_PREFIXES",
    "NESTED_LOADERS",
    "REEXPORTED_GADGETS",
    "VALUE_TYPES",
    "AllowRule",
    "Verdict",
    "classify_global",
    "compat_name",
    "identity_verdict",
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
    "logging": "logging.FileHandler(path, 'w') truncates any file; handlers open sockets/SMTP; config evaluates",
    "unittest": "unittest.mock objects call any side_effect; test runners import and run code",
    "test": "CPython's test package: test.support.script_helper runs subprocesses",
    "dataclasses": "dataclasses' code generation (_create_fn) execs source strings",
    "gzip": "GzipFile(path, 'wb') creates/truncates any file",
    "bz2": "BZ2File(path, 'w') creates/truncates any file",
    "lzma": "LZMAFile(path, 'w') creates/truncates any file",
    "posixpath": "os.path under its canonical name: probes the file system",
    "ntpath": "os.path under its canonical name (Windows)",
    "genericpath": "os.path helpers: probe the file system",
    "mailbox": "mailbox classes create and write files",
    "wave": "wave.open(path, 'wb') writes files",
    "py_compile": "writes byte-code files",
    "compileall": "compiles and writes byte-code files",
    "tokenize": "tokenize.open reads any file",
    "sched": "scheduler runs arbitrary callables",
    "contextvars": "Context.run calls arbitrary callables",
    "_contextvars": "Context.run calls arbitrary callables",
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
# Allowlist: exact (module, qualname) pairs, then rules that admit one class-like name per module.
# --------------------------------------------------------------------------------------------
_BUILTIN_SAFE = (
    "set", "frozenset", "bytes", "bytearray", "dict", "list", "tuple", "int", "float", "complex",
    "bool", "str", "slice", "range", "object", "Ellipsis", "NotImplemented",
)

#: Exact allowlist, written ``"module.name"``: the *last* dot separates the module path from the
#: name, which is one identifier (see :data:`ALLOW_QUALNAMES` for the few dotted qualified names).
#: Python 2 spellings (``__builtin__.set``, ``copy_reg._reconstructor``) are not listed: they are
#: mapped through ``_compat_pickle`` first, as the unpickler maps them.
ALLOW_EXACT: dict[str, str] = {
    **{f"builtins.{n}": "plain builtin container/scalar constructor" for n in _BUILTIN_SAFE},
    "copyreg._reconstructor": "protocol 0/1 object reconstruction (class and base are checked separately)",
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

ALLOW_EXACT.update({
    "numpy.ma.MaskedArray": "masked array (public path, e.g. GridSearchCV.cv_results_)",
    "scipy._lib.array_api_compat.numpy._aliases.asarray":
        "array constructor SciPy's BSpline keeps as its array namespace (SplineTransformer)",
    "array.array": "typed array",
    "array._array_reconstructor": "typed array reconstruction",
    "zoneinfo.ZoneInfo": "time zone value type (tz-aware pandas data)",
    # scikit-learn score functions held by SelectKBest/SelectPercentile
    **{f"sklearn.feature_selection._univariate_selection.{n}": "univariate score function (SelectKBest)"
       for n in ("f_classif", "f_regression", "chi2", "r_regression", "f_oneway")},
    **{f"sklearn.feature_selection._mutual_info.{n}": "mutual-information score function (SelectKBest)"
       for n in ("mutual_info_classif", "mutual_info_regression")},
    # PyTorch activation functions defined in torch.nn.functional itself (the C ones pickle as torch._C)
    **{f"torch.nn.functional.{n}": "PyTorch activation function" for n in (
        "relu", "relu6", "elu", "selu", "celu", "silu", "mish", "leaky_relu", "hardtanh", "hardswish",
        "hardsigmoid", "sigmoid", "tanh", "softmax", "log_softmax", "softmin", "softsign", "tanhshrink",
        "rrelu", "glu", "dropout", "normalize")},
    # NumPy ufuncs / reductions used as FunctionTransformer functions
    **{f"numpy.{n}": "NumPy ufunc / reduction used as a transformer function" for n in (
        "abs", "absolute", "log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "square", "sign",
        "negative", "reciprocal", "sin", "cos", "tan", "tanh", "arctan", "sinh", "cosh", "floor", "ceil",
        "rint", "clip", "maximum", "minimum", "add", "subtract", "multiply", "divide", "true_divide",
        "power", "mean", "median", "sum", "nanmean", "nanmedian", "identity", "isnan", "isfinite",
        "argmax", "argmin", "max", "min", "std", "var")},
})

_TORCH_DTYPES = (
    "float32 float float64 double float16 half bfloat16 complex64 cfloat complex128 cdouble "
    "uint8 int8 int16 short int32 int int64 long bool uint16 uint32 uint64 qint8 quint8 qint32 "
    "float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz complex32 chalf "
    "strided sparse_coo sparse_csr contiguous_format channels_last preserve_format"
).split()
for _d in _TORCH_DTYPES:
    ALLOW_EXACT[f"torch.{_d}"] = "dtype / layout / memory-format constant"

#: Dotted qualified names (protocol 4+ ``module`` / ``Outer.inner``) allowed as exact pairs. A dotted
#: name is otherwise an attribute chain and is denied: chains walk through the module aliases a package
#: imports (``sklearn._loss.loss.np.save``, ``enum.bltns.eval``).
ALLOW_QUALNAMES: dict[tuple[str, str], str] = {
    ("zoneinfo", "ZoneInfo._unpickle"): "ZoneInfo's own reconstruction classmethod (protocol 4+)",
}

#: The exact allowlist as ``(module, name)`` pairs: what lookups use.
ALLOW_PAIRS: dict[tuple[str, str], str] = {
    **{tuple(full.rsplit(".", 1)): why for full, why in ALLOW_EXACT.items()},  # type: ignore[misc]
    **ALLOW_QUALNAMES,
}

#: Objects without a ``__module__``/``__qualname__`` of their own (constants): the restricted loader
#: accepts one only when its exact pair is listed and its *type* is one of these.
VALUE_TYPES: frozenset[tuple[str, str]] = frozenset({
    ("torch", "dtype"), ("torch", "layout"), ("torch", "memory_format"),
    ("builtins", "ellipsis"), ("builtins", "NotImplementedType"), ("builtins", "NoneType"),
})

#: A class name: CamelCase with a lower-case letter (``_BinMapper``, ``KMeans``), or a short all-caps
#: acronym without underscores (``PCA``, ``RBF``, ``LSTM``, ``MT19937``). Not ``F``/``T`` (one letter)
#: nor ``_C``/``_VF``: the names module aliases take (``import torch.nn.functional as F``).
_CLASS = r"_*[A-Z][A-Za-z0-9_]*[a-z][A-Za-z0-9_]*|[A-Z][A-Z0-9]{1,9}"
_PYX = r"__pyx_unpickle_[A-Za-z0-9_]+"
_SUB = r"(?:\.[a-z_][a-z0-9_]*)*"


class AllowRule(NamedTuple):  # a NamedTuple, not a frozen dataclass: ~5 ms less start-up
    """Admits ``(module, name)`` when ``module`` fully matches ``module`` (a module path of a trusted
    package) and ``name`` fully matches ``name``: one identifier, never dotted, of a form a module alias
    or an imported helper cannot take (a class name, a Cython pickle helper, a suffix family)."""

    id: str
    module: str
    name: str
    reason: str


#: The rule-based allowlist, tried in order after the exact pairs.
ALLOW_RULES: tuple[AllowRule, ...] = (
    AllowRule("sklearn-class", rf"sklearn{_SUB}", rf"{_CLASS}|{_PYX}",
              "scikit-learn estimator / transformer / loss / Cython class"),
    AllowRule("sklearn-metric", r"sklearn\.metrics\._(?:classification|regression|ranking)",
              r"[a-z][a-z0-9_]*_(?:score|error|loss|deviance)", "scikit-learn metric held by a scorer"),
    AllowRule("sklearn-kernel", r"sklearn\.metrics\.pairwise", r"[a-z][a-z0-9_]*_(?:kernel|distances)",
              "scikit-learn kernel / distance function"),
    AllowRule("sklearn-tree-ctor",
              r"sklearn\.(?:neighbors\._(?:ball_tree|kd_tree|binary_tree)|metrics\._dist_metrics)",
              r"newObj", "Cython tree / distance-metric reconstruction"),
    AllowRule("numpy-random", rf"numpy\.random{_SUB}", _CLASS, "NumPy random generators"),
    AllowRule("numpy-reconstruct", r"numpy\.(?:core|_core)\.(?:multiarray|numeric|_multiarray_umath)",
              r"_reconstruct|scalar|_frombuffer|_ufunc_reconstruct|ndarray|dtype",
              "NumPy array/scalar reconstruction helpers"),
    AllowRule("numpy-scalar", r"numpy",
              r"u?int(?:8|16|32|64)|float(?:16|32|64|128)|complex(?:64|128|256)|bool_?|str_|bytes_|object_|"
              r"void|datetime64|timedelta64|longdouble|clongdouble|intp|uintp|generic|number|integer|floating",
              "NumPy scalar types"),
    AllowRule("numpy-dtype", r"numpy\.dtypes", r"[A-Z][A-Za-z0-9]*DType", "NumPy dtype classes"),
    AllowRule("scipy-sparse", rf"scipy\.sparse{_SUB}", rf"{_CLASS}|[a-z]{{3}}_(?:matrix|array)|{_PYX}",
              "SciPy sparse matrices"),
    AllowRule("scipy-distribution", r"scipy\.stats\._(?:continuous|discrete)_distns", r"[a-z][a-z0-9_]*_gen",
              "SciPy distribution classes"),
    AllowRule("scipy-frozen", r"scipy\.stats\._distn_infrastructure", rf"{_CLASS}|rv_[a-z_]+",
              "SciPy frozen distributions"),
    AllowRule("scipy-interpolate", rf"scipy\.interpolate{_SUB}", _CLASS, "SciPy splines (SplineTransformer)"),
    AllowRule("pandas-internal", rf"pandas\.(?:core|_libs){_SUB}",
              rf"{_CLASS}|{_PYX}|_new_[A-Za-z]+|_unpickle[a-z_]*|new_block[a-z_]*|_[a-z]+_unpickle",
              "pandas containers and their reconstruction helpers"),
    AllowRule("pandas-public", r"pandas(?:\.arrays)?", r"[A-Z][A-Za-z0-9]*",
              "pandas containers, indexes, dtypes and arrays"),
    AllowRule("torch-layer", rf"torch\.nn\.modules{_SUB}", _CLASS, "PyTorch layer classes"),
    AllowRule("torch-optim", rf"torch\.optim{_SUB}", _CLASS, "PyTorch optimizer / scheduler classes"),
    AllowRule("torch-storage", r"torch", r"[A-Z][A-Za-z0-9]*Storage", "legacy typed storages"),
    AllowRule("torch-parametrize", r"torch\.nn\.utils\.parametrize", _CLASS, "parametrized modules"),
    AllowRule("boosting", rf"(?:xgboost|lightgbm|catboost){_SUB}", _CLASS, "gradient-boosting model classes"),
    AllowRule("imblearn", rf"imblearn{_SUB}", _CLASS, "imbalanced-learn estimators"),
)

#: Class-shaped names that trusted packages bind to denylisted classes or to modules in their own namespaces
#: (``from threading import Thread`` in ``sklearn.callback._progressbar``, ``from multiprocessing.connection
#: import Listener``): a rule would admit ``<trusted module>.<Name>`` by its shape, so these names are denied
#: below rule-admitted paths (exact pairs are unaffected). The scanner cannot import to check identity; the
#: restricted loader does (:func:`identity_verdict`), and the tests regenerate this list from the installed
#: packages and fail when a re-export of a denylisted class is missing.
REEXPORTED_GADGETS: dict[str, str] = {
    "Thread": "threading.Thread(target=...) runs a callable", "Timer": "threading.Timer runs a callable",
    "Lock": "threading lock", "RLock": "threading lock",
    "Listener": "multiprocessing.connection.Listener binds a socket when constructed",
    "Client": "multiprocessing.connection.Client connects to a socket when constructed",
    "Connection": "multiprocessing connection (socket/pipe I/O)",
    "Process": "starts a process", "Pool": "process/thread pool runs callables",
    "Popen": "subprocess.Popen runs a command", "Parallel": "joblib/sklearn Parallel runs callables in workers",
    "ThreadPoolExecutor": "runs callables", "ProcessPoolExecutor": "runs callables in processes",
    "Path": "pathlib.Path touches the file system", "PosixPath": "pathlib path", "WindowsPath": "pathlib path",
    "FileIO": "io.FileIO(path, 'w') truncates any file", "StringIO": "io object", "BytesIO": "io object",
    "TextIOWrapper": "io object", "BufferedWriter": "io object",
    "FileHandler": "logging.FileHandler(path, 'w') truncates any file",
    "RotatingFileHandler": "writes files", "SocketHandler": "opens sockets",
    "TemporaryDirectory": "creates and removes directories", "NamedTemporaryFile": "creates files",
    "ZipFile": "opens/writes archives", "TarFile": "opens/extracts archives",
    "CDLL": "loads a shared library", "PyDLL": "loads a shared library",
    "Mock": "unittest.mock calls any side_effect", "MagicMock": "unittest.mock calls any side_effect",
    "SkipTest": "unittest exception (test helpers)", "Parameter": "inspect.Parameter (introspection)",
    "Components": "importlib machinery", "GenericAlias": "types.GenericAlias",
    "DataFrameFormatter": "pandas.io formatter writes to files/buffers",
    "DataFrameRenderer": "pandas.io renderer writes to files/buffers",
    "DataFrameInfo": "pandas.io info writer", "SeriesInfo": "pandas.io info writer",
    "PrettyDict": "pandas.io printing helper",
    "NDArrayWrapper": "joblib.numpy_pickle_compat.NDArrayWrapper reads arbitrary file names next to the model",
    # module aliases with class-shaped names (``import torch.nn._reduction as _Reduction``)
    "_Reduction": "module alias (torch.nn._reduction)",
}

#: Per rule, the top-level package its module pattern starts with (a cheap filter before any regex).
_RULE_HEADS: tuple[frozenset[str], ...] = tuple(
    frozenset(re.match(r"\(\?:([a-z_|]+)\)|([a-z_]+)", r.module).group(0).strip("(?:)").split("|"))  # type: ignore[union-attr]
    for r in ALLOW_RULES
)
_RULE_COMPILED: list[tuple[re.Pattern[str], re.Pattern[str]] | None] = [None] * len(ALLOW_RULES)
_EXACT_MODULES: frozenset[str] = frozenset(m for m, _ in ALLOW_PAIRS)


def _rule(i: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    compiled = _RULE_COMPILED[i]
    if compiled is None:  # compiled on first use: a one-file scan rarely needs them all
        compiled = _RULE_COMPILED[i] = (re.compile(ALLOW_RULES[i].module), re.compile(ALLOW_RULES[i].name))
    return compiled


def _allow_rule(module: str, name: str) -> AllowRule | None:
    """The first rule admitting ``(module, name)``; ``name`` is a single identifier."""
    head = module.split(".", 1)[0]
    for i, rule in enumerate(ALLOW_RULES):
        if head in _RULE_HEADS[i]:
            mod_re, name_re = _rule(i)
            if mod_re.fullmatch(module) and name_re.fullmatch(name):
                return rule
    return None


def _ruled_module(module: str) -> bool:
    """``module`` is a path some rule admits class-like names from."""
    head = module.split(".", 1)[0]
    return any(head in _RULE_HEADS[i] and _rule(i)[0].fullmatch(module) for i in range(len(ALLOW_RULES)))


def _trusted_module(module: str) -> bool:
    """``module`` is a module path the allowlist admits names from (exactly or by a rule)."""
    return module in _EXACT_MODULES or _ruled_module(module)


def __getattr__(name: str) -> Any:
    if name == "ALLOW_PATTERNS":  # public, compiled on demand: (module regex, name regex, reason)
        return tuple((re.compile(r.module), re.compile(r.name), r.reason) for r in ALLOW_RULES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_DUNDER = re.compile(r"(^|\.)__[A-Za-z0-9_]+__($|\.)")


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

#: Python 2 module names that do not exist in Python 3 (``__builtin__``, ``copy_reg``, ``cPickle``...):
#: importing one unmapped fails, so only its ``_compat_pickle`` mapping can run.
_PY2_ONLY: frozenset[str] = frozenset(
    m for m in (*_compat_pickle.IMPORT_MAPPING, *(k[0] for k in _compat_pickle.NAME_MAPPING))
    if m.split(".", 1)[0] not in sys.stdlib_module_names
)
_RANK = {"allow": 0, "unknown": 1, "deny": 2}


def compat_name(module: str, name: str) -> tuple[str, str]:
    """``(module, name)`` as the unpickler reads it: Python 2 names mapped through ``_compat_pickle``
    (``NAME_MAPPING`` first, else ``IMPORT_MAPPING`` of the module), as ``find_class`` does for
    protocol 0-2 pickles."""
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is not None:
        return mapped
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def classify_global(module: str, name: str, *, context: str = "pickle") -> Verdict:
    """Classify the global ``module``/``name`` a pickle asks for.

    The allowlist is exact ``(module, name)`` pairs (:data:`ALLOW_PAIRS`) and rules that admit one
    class-like identifier below a trusted package's module path (:data:`ALLOW_RULES`). A dotted
    ``name`` (protocol 4 attribute chain) is allowed only when the pair is listed exactly
    (:data:`ALLOW_QUALNAMES`); otherwise it is denied, and named after the denylisted module it reaches
    when a suffix is one (``random._os.system`` is ``os.system``). Python 2 names are judged as the
    unpickler maps them (``__builtin__.xrange`` is ``builtins.range``); when the unmapped name could
    be imported too (protocol 3+ pickles skip the mapping), the worse of the two verdicts counts.

    ``context="torchscript"`` is for pickles inside a TorchScript archive: torch reads them with its
    C++ unpickler, which resolves only :data:`TORCHSCRIPT_ALLOW` and ``__torch__.*`` classes compiled
    from the archive's own ``code/`` (scanned separately); everything else is judged as usual.

    Verdicts: ``deny`` (denylisted, an attribute chain, a dunder, a standard-library or builtins name off
    the allowlist, a class name trusted packages bind to a denylisted class or a module
    (:data:`REEXPORTED_GADGETS`), or any other name below a trusted module path: a module alias or an
    imported helper), ``allow``, or ``unknown`` (a name of a package that is not reviewed at all).
    Results are cached per (module, name, context): lookups are on the scanner's hot path.
    """
    return _classify_cached(module, name, context)


@functools.lru_cache(maxsize=8192)
def _classify_cached(module: str, name: str, context: str) -> Verdict:
    mapped = compat_name(module, name)
    if mapped == (module, name):
        return _judge(module, name, context)
    verdict = _judge(mapped[0], mapped[1], context)
    if verdict.kind != "allow":
        verdict = Verdict(verdict.kind, f"{module}.{name} is read as {mapped[0]}.{mapped[1]} (Python 2 name): "
                                        f"{verdict.reason}", verdict.rule)
    if module not in _PY2_ONLY:  # protocol 3+ imports the unmapped name: judge it too, keep the worse
        raw = _judge(module, name, context)
        if _RANK[raw.kind] > _RANK[verdict.kind]:
            return raw
    return verdict


def _judge(module: str, name: str, context: str) -> Verdict:
    full = f"{module}.{name}" if name else module
    if context == "torchscript":
        if full in TORCHSCRIPT_ALLOW:
            return Verdict("allow", TORCHSCRIPT_ALLOW[full], full)
        if _TS_CLASS.fullmatch(full):
            return Verdict("allow", "TorchScript class compiled from this archive's code/", "__torch__")
    hit = _deny_lookup(full)
    if hit is not None:
        return Verdict("deny", hit[1], hit[0])
    exact = ALLOW_PAIRS.get((module, name))
    if exact is not None:
        return Verdict("allow", exact, full)
    # canonical names reached through private aliases inside the *name*: random._os.system ...
    parts = name.split(".") if name else []
    for i in range(len(parts)):
        hit = _deny_lookup(".".join(p.lstrip("_") for p in parts[i:]))
        if hit is not None:
            return Verdict("deny", f"attribute chain reaches {hit[0]}: {hit[1]}", hit[0])
    if _DUNDER.search(name or "") or "__builtins__" in full or "__globals__" in full:
        return Verdict("deny", "dunder attribute access reaches interpreter internals "
                               "(numpy.__builtins__-style indirection)", "dunder")
    if len(parts) > 1:
        return Verdict("deny", f"attribute chain {name!r} below {module}: only exact (module, name) pairs are "
                               "allowed, and chains walk through the module aliases a package imports "
                               "(np.save, enum.bltns, torch's unittest.mock)", "dotted-chain")
    rule = _allow_rule(module, name)
    gadget = REEXPORTED_GADGETS.get(name)
    if gadget is not None and (rule is not None or _trusted_module(module)):
        return Verdict("deny", f"{full} is not admitted by its shape: trusted packages bind this name to a "
                               f"denylisted class or a module ({gadget})", "reexported-gadget")
    if rule is not None:
        return Verdict("allow", rule.reason, rule.id)
    if module == "__main__":
        if not name[:1].isupper():
            return Verdict("deny", "__main__ functions/attribute chains reach whatever the loading script "
                                   "imported (from os import system)", "__main__")
        return Verdict("unknown", "a class from the saving script's __main__: the loading script must define "
                                  "it, so loading runs code that was not reviewed", "__main__")
    if module in ("builtins", "__builtin__", "exceptions"):
        return Verdict("deny", "builtins outside the container/scalar constructors are gadgets", "builtins")
    if module.split(".", 1)[0] in sys.stdlib_module_names:
        return Verdict("deny", f"standard-library name {full} is not on the allowlist: the standard library "
                               "reaches files, processes and code (logging.FileHandler, unittest.mock, "
                               "dataclasses' code generation)", "stdlib")
    if _trusted_module(module):
        return Verdict("deny", f"{name!r} below the trusted module {module} is not one of its listed names or "
                               "classes: a module alias or an imported helper reaches code outside the "
                               "reviewed package", "trusted-module-attribute")
    return Verdict("unknown", "not on the allowlist: importing it runs code that was not reviewed")


def identity_verdict(module: str, name: str, obj: Any) -> Verdict:
    """Judge what an allowed ``module``/``name`` *resolved to* (the restricted unpickler, after import).

    A module object is refused. A class or function must carry an identity (``__module__``,
    ``__qualname__``) that is the requested pair or is itself allowed, so a re-export or alias under an
    allowed path that is really ``numpy.save`` or ``os.system`` is refused. An object without an
    identity (``torch.float32``) is accepted only for an exactly listed pair and a :data:`VALUE_TYPES`
    type.
    """
    if isinstance(obj, types.ModuleType):
        return Verdict("deny", f"{module}.{name} is a module object, never model content", "module-object")
    own_module, qualname = _identity(obj)
    if isinstance(own_module, str) and isinstance(qualname, str):
        if (own_module, qualname) == (module, name):
            return Verdict("allow", "resolved to itself", f"{module}.{name}")
        verdict = classify_global(own_module, qualname)
        if verdict.kind == "allow":
            return Verdict("allow", f"resolves to the allowed {own_module}.{qualname}", verdict.rule)
        return Verdict("deny", f"{module}.{name} resolves to {own_module}.{qualname}, which is not allowed "
                               f"({verdict.reason})", "resolved-identity")
    kind = type(obj)
    if (module, name) in ALLOW_PAIRS and (kind.__module__, kind.__qualname__) in VALUE_TYPES:
        return Verdict("allow", "listed constant", f"{module}.{name}")
    return Verdict("deny", f"{module}.{name} resolves to a {kind.__module__}.{kind.__qualname__} object without "
                           "a module/qualified name of its own", "resolved-identity")


def _identity(obj: Any) -> tuple[Any, Any]:
    """``(__module__, __qualname__)`` of a class or callable (functions, builtins, Cython functions,
    NumPy ufuncs and dispatchers; a classmethod bound to a class takes the class's module); ``(None,
    None)`` for other objects, which only inherit their class's ``__module__``."""
    if not (isinstance(obj, type) or callable(obj)):
        return None, None
    own_module = getattr(obj, "__module__", None)
    owner = getattr(obj, "__self__", None)
    if own_module is None and isinstance(owner, type):
        own_module = owner.__module__
    return own_module, getattr(obj, "__qualname__", None)
