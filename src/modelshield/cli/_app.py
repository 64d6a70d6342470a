"""The typer application behind ``modelshield`` (imported only when the lean path does not apply)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperArgument

from modelshield._version import __version__
from modelshield.errors import EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["AREAS", "HARDEN_AREAS", "build_app", "get_command", "run_typer", "tidy_help"]

#: CLI areas, one module each (``modelshield.cli.<name>``), registered in this order, with the
#: top-level commands each one adds. Areas marked in HARDEN_AREAS also add ``harden`` subcommands.
AREAS: dict[str, tuple[str, ...]] = {
    "audit": ("audit", "policy", "checks"),
    "scan": ("scan",),
    "protect": ("protect",),
    "attack": ("attack",),
    "privacy": ("privacy",),
    "fairness": ("fairness",),
    "theft": ("theft",),
    "poisoning": (),
    "serve": ("serve",),
    "keys": ("keys", "audit-log"),
    "registry": ("audit-registry",),
    "proof": ("proof",),
    "provenance": ("bom", "deploy"),
    "private": ("private",),
    "fl": ("fl",),
}
HARDEN_AREAS: tuple[str, ...] = ("attack", "privacy", "fairness", "theft", "poisoning")
HELP_OPTION_NAMES: tuple[str, ...] = ("-h", "--help")


def _areas_for(args: Sequence[str]) -> tuple[str, ...]:
    """The areas a command line needs: the one owning its first command word, else all of them."""
    first = next((a for a in args if not a.startswith("-")), None)
    if first == "harden":
        return HARDEN_AREAS
    for area, commands in AREAS.items():
        if first in commands:
            return (area,)
    return tuple(AREAS)


def _print_version(value: bool) -> None:
    """``--version``: eager, so it runs before click asks for a command (no "Missing command")."""
    if value:
        typer.echo(f"modelshield {__version__}")
        raise typer.Exit(0)


def build_app(areas: Sequence[str] | None = None) -> typer.Typer:
    app = typer.Typer(
        name="modelshield",
        help="Audit, harden, protect and serve machine-learning models securely.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": list(HELP_OPTION_NAMES)},
    )
    harden = typer.Typer(help="Make a model more robust, private or fair; writes a before/after report.",
                         no_args_is_help=True)

    @app.callback()
    def _root(
        debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
        version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                     callback=_print_version),
    ) -> None:
        """Audit, harden, protect and serve machine-learning models securely."""

    for area in AREAS if areas is None else areas:
        importlib.import_module(f"modelshield.cli.{area}").register(app, harden)
    app.add_typer(harden, name="harden")
    return app


class _Argument(TyperArgument):
    """A positional argument shown the conventional way: ``MODEL`` when required, ``[MODEL]`` when not
    (typer >= 0.20 writes ``{model}``, which reads like a placeholder left in the text)."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return f"{name}..." if self.nargs != 1 else name


def tidy_help(command: Any) -> Any:
    """Make ``command``'s help (and every subcommand's) read as a user expects: arguments in capitals
    (``MODEL``), no ``<bool>`` type after a flag (a flag takes no value). Returns ``command``."""
    # click makes (and caches) the help option on first use; make it now so it is tidied too
    ctx = command.context_class(command, help_option_names=list(HELP_OPTION_NAMES))
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if isinstance(param, TyperArgument):
            if param.metavar is None and param.name:
                param.metavar = param.name.upper()
            if type(param) is TyperArgument:
                param.__class__ = _Argument
        elif getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # typer shows the metavar, when set, in place of "<bool>"
    for sub in getattr(command, "commands", {}).values():  # a group's subcommands (click or vendored click)
        tidy_help(sub)
    return command


def get_command(areas: Sequence[str] | None = None) -> Any:
    """The click command of :func:`build_app` (``areas``: as there), with the help tidied."""
    return tidy_help(typer.main.get_command(build_app(areas)))


#: click's usage-error base classes: typer >= 0.20 vendors click as ``typer._click``; either may be absent
_CLICK_ERRORS: tuple[type[Exception], ...] = ()
for _module in ("typer._click.exceptions", "click.exceptions"):
    try:
        _CLICK_ERRORS += (importlib.import_module(_module).ClickException,)
    except ImportError:  # pragma: no cover - older typer, or click no longer installed beside it
        pass


def run_typer(args: list[str]) -> int:
    """Run the full typer CLI on ``args``; returns the documented exit code. Typer's and click's own
    outcomes (exit, usage error, abort) are mapped here; everything else propagates to ``main()``'s
    guard, shared with the lean path (``modelshield.cli._guarded``)."""
    command = get_command(_areas_for(args))
    try:
        rv = command.main(args=args, prog_name="modelshield", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except _CLICK_ERRORS as exc:
        code = getattr(exc, "exit_code", 0) or EXIT_USAGE
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)  # type: ignore[attr-defined]
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # a bare group: show its help
        else:
            typer.echo(f"error: {message}{where}", err=True)
    except typer.Abort as exc:
        if isinstance(exc.__cause__, EOFError):  # click turns an EOFError from our code into Abort: not Ctrl-C
            typer.echo(f"error: unexpected end of input ({exc.__cause__ or 'EOFError'}); is a file empty or "
                       "truncated? (re-run with --debug)", err=True)
            code = EXIT_USAGE
        else:
            typer.echo("interrupted", err=True)
            code = EXIT_INTERRUPTED
    return code
