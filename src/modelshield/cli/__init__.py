"""The ``modelshield`` command line. Thin: parses arguments, calls the API, maps errors to exit codes.

Exit codes (a contract): 0 pass / clean, 1 policy failed / findings at or above the gate,
2 usage or input error, 3 refused for a security reason (unsafe model, bad signature, wrong key),
130 interrupted.

Each area lives in its own module ``modelshield.cli.<area>`` exposing
``register(app: typer.Typer, harden: typer.Typer) -> None``; adding an area is one line in
``AREAS`` (area -> the top-level commands it registers, in ``modelshield.cli._app``). ``main()``
imports only the area the command line names, so ``modelshield scan`` does not pay for torch,
fairlearn or FastAPI.

Hot commands that run in CI loops and deploy hooks (``scan``, ``protect sign``, ``protect verify``)
also have a *lean path* (``FAST_COMMANDS``): a function ``run(args) -> int | None`` that parses the
command with argparse and calls the same implementation as the typer command, so the process never
imports typer, click or rich (~0.15-0.3 s of start-up). ``run`` returns ``None`` for anything it does
not handle exactly (``--help``, a malformed or unknown option): the full typer CLI then runs, so help
text and usage errors have one source.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from modelshield.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ModelShieldError

__all__ = ["AREAS", "FAST_COMMANDS", "HARDEN_AREAS", "build_app", "main"]

#: Command words -> ``"module:function"``, a ``function(args: list[str]) -> int | None`` (``args``:
#: what follows the command words). ``None`` means "not handled here": the typer CLI takes over.
FAST_COMMANDS: dict[tuple[str, ...], str] = {
    ("scan",): "modelshield.cli._fast_scan:run",
    ("protect", "sign"): "modelshield.cli._fast_protect:run_sign",
    ("protect", "verify"): "modelshield.cli._fast_protect:run_verify",
}


def __getattr__(name: str) -> Any:
    if name not in ("AREAS", "HARDEN_AREAS", "build_app", "app"):
        raise AttributeError(f"module 'modelshield.cli' has no attribute {name!r}")
    from modelshield.cli import _app  # lazy: typer and the areas only for these names (lean-path start-up)

    if name == "app":  # the full application (docs, tests); main() builds only what it needs
        full = _app.build_app()
        globals()["app"] = full
        return full
    return getattr(_app, name)


def _debug_requested(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("MODELSHIELD_DEBUG", "") not in ("", "0")


def _lean_command(args: list[str]) -> tuple[Callable[[list[str]], int | None], list[str]] | None:
    """The lean runner for ``args`` and the arguments after the command words, if there is one."""
    rest = args[1:] if args[:1] == ["--debug"] else args
    for words, target in FAST_COMMANDS.items():
        if tuple(rest[: len(words)]) == words:
            tail = rest[len(words):]
            if any(a in ("-h", "--help") for a in tail):
                return None
            module, _, function = target.partition(":")
            try:
                run = getattr(importlib.import_module(module), function)
            except (ImportError, AttributeError):  # pragma: no cover - a partial install: the typer CLI still works
                return None
            return run, tail
    return None


def _guarded(fn: Callable[[], int | None], debug: bool) -> int | None:
    """Run ``fn`` under the CLI's error contract (lean and typer paths alike): a ModelShieldError is one
    ``error:`` line and its exit code, Ctrl-C is 130, a bug is one line and 70 (``--debug``: traceback)."""
    try:
        return fn()
    except ModelShieldError as exc:
        if debug:
            import traceback  # lazy: only --debug prints a traceback (lean-path start-up)

            traceback.print_exc()
        print(f"error: {exc.cli_message()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # an internal bug: still one line, with --debug for details
        if debug:
            raise
        print(f"error: internal error: {type(exc).__name__}: {exc} (re-run with --debug)", file=sys.stderr)
        return EXIT_INTERNAL


def _run_lean(run: Callable[[list[str]], int | None], tail: list[str], debug: bool) -> int | None:
    """Run a lean command under the CLI's error contract; ``None``: not handled, typer takes over."""
    return _guarded(lambda: run(tail), debug)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Returns (and exits with) the documented exit code; never shows a traceback
    unless ``--debug`` is given."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    code: int | None = None
    lean = _lean_command(args)
    if lean is not None:
        code = _run_lean(*lean, debug)
    if code is None:
        from modelshield.cli._app import run_typer  # lazy: typer, click and rich stay off the lean path

        code = _guarded(lambda: run_typer(args), debug)
        assert code is not None  # run_typer always returns an exit code
    if argv is None:
        sys.exit(code)
    return code
