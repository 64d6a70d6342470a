"""TorchScript source members (``code/**/*.py`` of a ``torch.jit.save`` archive), checked with ``ast``.

``torch.jit.load`` compiles these members and runs them. They are serialized TorchScript (a typed
subset of Python), so a parse with :mod:`ast` sees every name, attribute and call exactly; a
byte-level regex does not (``getattr(torch, "sa" "ve")``, ``torch.SAVE`` against a case-sensitive
pattern, a ``.PY`` member). Flagged:

* a name or attribute that is a file, process, network or library-loading operation
  (``torch.save``, ``torch.from_file``, ``ops.load_library``, ``system``...), case-insensitively;
* ``getattr``/``setattr``/``hasattr``/``delattr`` other than ``getattr(self, "<literal>")`` (how
  torch serializes ``nn.Sequential`` children): a computed name, or a lookup on a module;
* string-built names (concatenation, f-strings, ``join``/``format``) handed to such a lookup;
* Python internals (``__class__``, ``__globals__``, ``__subclasses__``...) and ``import`` statements,
  which serialized TorchScript never contains;
* a member that is not UTF-8 or does not parse: at least ``high`` (inconclusive).
"""

from __future__ import annotations

import ast

from modelshield.artifacts.pickle_scan import RawFinding
from modelshield.findings import Severity

__all__ = ["DANGEROUS_NAMES", "is_torchscript_source", "scan_torchscript_source"]

#: identifiers (compared lower-cased) that reach files, processes, the network or native libraries
DANGEROUS_NAMES = frozenset(
    """save load from_file _load_from_file load_library _load_library system popen spawn spawnv execv
    execve exec eval compile open __import__ import_module pythonop python_op socket urlopen urlretrieve
    remove unlink rmtree rename makedirs mkdir chmod chown symlink getenv putenv environ subprocess
    os sys builtins shutil pathlib ctypes cdll dlopen _jit_pass_custom_pattern_based_rewrite_graph
    write_file read_file""".split()
)
_PY_INTERNALS = frozenset(
    """__class__ __bases__ __base__ __mro__ __subclasses__ __globals__ __builtins__ __import__ __dict__
    __code__ __func__ __self__ __getattribute__ __getattr__ __setattr__ __delattr__ __reduce__
    __reduce_ex__ __init_subclass__ __loader__ __spec__ __closure__ __defaults__ __kwdefaults__
    __qualname__ __module__ __weakref__ __new__ __call__ __file__ __path__""".split()
)
_LOOKUPS = frozenset({"getattr", "setattr", "hasattr", "delattr"})
MAX_SOURCE = 64 << 20


def is_torchscript_source(name: str) -> bool:
    """A member torch's source importer compiles: ``.py`` under ``code/`` (matched case-insensitively,
    as torch's zip reader finds members)."""
    low = name.lower()
    return low.endswith(".py") and ("/code/" in low or low.startswith("code/"))


def scan_torchscript_source(data: bytes, name: str) -> list[RawFinding]:
    """Findings for one TorchScript source member (see the module docstring)."""
    out: list[RawFinding] = []
    seen: set[tuple[str, str]] = set()

    def add(sev: Severity, rule: str, title: str, node: ast.AST | None, detail: str) -> None:
        key = (rule, title)
        if key in seen or len(out) >= 50:
            return
        seen.add(key)
        line = getattr(node, "lineno", None)
        out.append(RawFinding(sev, rule, title, None, detail, {"line": line} if line else {},
                              ("CVE-2025-32434",)))

    if len(data) > MAX_SOURCE:
        add(Severity.HIGH, "artifact.torch.torchscript-unparsed", f"TorchScript source {name!r} exceeds the "
            f"{MAX_SOURCE}-byte bound", None, "The code was not analysed; the result is inconclusive.")
        return out
    try:
        text = data.decode("utf-8")
        tree = ast.parse(text, filename=name)
    except (UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        add(Severity.HIGH, "artifact.torch.torchscript-unparsed",
            f"TorchScript source {name!r} does not parse ({type(exc).__name__})", None,
            "torch.jit.load compiles this member, but it cannot be analysed: the result is inconclusive.")
        return out
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            add(Severity.HIGH, "artifact.torch.torchscript-dynamic", "TorchScript code has an import statement",
                node, "Serialized TorchScript never imports; this code was not written by torch.jit.save.")
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if attr.lower() in DANGEROUS_NAMES:
                add(Severity.HIGH, "artifact.torch.torchscript-op", f"TorchScript code uses .{attr}", node,
                    "TorchScript operators that touch files, processes, the network or native libraries run "
                    "when the archive is loaded.")
            elif attr in _PY_INTERNALS:
                add(Severity.HIGH, "artifact.torch.torchscript-dynamic",
                    f"TorchScript code reaches Python internals (.{attr})", node,
                    "Serialized TorchScript has no use for Python object internals.")
        elif isinstance(node, ast.Name):
            if node.id.lower() in DANGEROUS_NAMES or node.id in _PY_INTERNALS:
                add(Severity.HIGH, "artifact.torch.torchscript-op", f"TorchScript code uses {node.id}", node,
                    "A name that reaches files, processes or Python internals.")
        elif isinstance(node, ast.Call):
            fn = node.func
            fname = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if fname.lower() not in _LOOKUPS and fname not in ("__getattr__", "__getattribute__"):
                continue
            args = node.args
            target = args[0] if args else None
            key = args[1] if len(args) > 1 else None
            literal = isinstance(key, ast.Constant) and isinstance(key.value, str)
            on_self = isinstance(target, ast.Name) and target.id == "self"
            if literal and isinstance(key, ast.Constant) and str(key.value).lower() in DANGEROUS_NAMES:
                add(Severity.CRITICAL, "artifact.torch.torchscript-op",
                    f"TorchScript code looks up {key.value!r} by name", node,
                    "An attribute lookup by string reaches a file/process/library operation.")
            if fname == "getattr" and on_self and literal and len(args) == 2 and not node.keywords:
                continue  # getattr(self, "0"): how torch serializes nn.Sequential / ModuleList children
            if key is not None and not literal:
                add(Severity.HIGH, "artifact.torch.torchscript-dynamic",
                    f"TorchScript code builds an attribute name at run time ({fname})", node,
                    "A computed attribute name (concatenation, format, join, a variable) hides which "
                    "operation runs.")
            else:
                add(Severity.HIGH, "artifact.torch.torchscript-dynamic",
                    f"TorchScript code calls {fname} on something other than self", node,
                    "Attribute lookups by name on modules are how a payload hides an operation's name.")
    return out
