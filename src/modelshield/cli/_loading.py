"""The model-loading options, defined once: every command that loads a model takes the same flags
(``--trust``, ``--key-file``/``--key-env``/``--passphrase-env``, ``--public-key``/``--signature``,
``--strict``) and loads through the one secure loader (verify -> decrypt -> scan -> load).

A command opts in with :func:`load_options`: the decorator adds the flags to its signature (typer reads
``__signature__``) and hands the command one :class:`LoadFlags` as ``load=``, already checked::

    @app.command("attack")
    @load_options
    def attack(model: str = ..., *, load: LoadFlags) -> None:
        m = load.load(model)
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from modelshield.cli._common import err_console
from modelshield.errors import InputNotFoundError, UserError

__all__ = ["LoadFlags", "load_options"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class LoadFlags:
    """What the user said about loading a model; :meth:`load` applies it."""

    trust: bool = False
    key_file: Path | None = None
    key_env: str | None = None
    passphrase_env: str | None = None
    public_key: Path | None = None
    signature: Path | None = None
    strict: bool = False

    def validate(self) -> None:
        """Contradictory or missing inputs fail before any work (exit 2)."""
        if self.signature is not None and self.public_key is None:
            raise UserError("--signature needs --public-key (the key to verify it with)")
        if sum(x is not None for x in (self.key_file, self.key_env, self.passphrase_env)) > 1:
            raise UserError("give only one of --key-file, --key-env and --passphrase-env")
        for flag, p in (("--key-file", self.key_file), ("--public-key", self.public_key),
                        ("--signature", self.signature)):
            if p is not None and not p.is_file():
                raise InputNotFoundError(f"{flag} {p}: " + ("is a folder" if p.is_dir() else "file not found"))

    @property
    def inputs(self) -> list[Path]:
        """Files these flags read (never to be overwritten by an output)."""
        return [p for p in (self.key_file, self.public_key, self.signature) if p is not None]

    @property
    def protected(self) -> bool:
        """A key or a signature check was asked for (these apply to model files, not endpoints)."""
        return any(x is not None for x in (self.key_file, self.key_env, self.passphrase_env, self.public_key))

    def loader_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`modelshield.protect.loader.load_model`."""
        from modelshield.protect.loader import TrustPolicy  # lazy: the loader pulls in numpy and the adapters

        kw: dict[str, Any] = {"trust": self.trust}
        for name in ("key_file", "key_env", "passphrase_env", "public_key", "signature"):
            if getattr(self, name) is not None:
                kw[name] = getattr(self, name)
        if self.public_key is not None:
            kw["require_signature"] = True
        if self.strict:
            kw["policy"] = TrustPolicy(strict_key_permissions=True)
        return kw

    def load(self, source: Any, **kwargs: Any) -> Any:
        """Load ``source`` through the secure loader with these flags; a key-file permission warning is
        printed as one ``warning:`` line (``--strict`` makes it an error)."""
        from modelshield.protect.keys import KeyPermissionWarning  # lazy: see loader_kwargs
        from modelshield.protect.loader import load_model

        remote = str(source).startswith(("http://", "https://"))
        if remote and self.protected:
            raise UserError("--key-file/--public-key apply to model files, not endpoints")
        opts = {"trust": self.trust} if remote else self.loader_kwargs()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", KeyPermissionWarning)
            model = load_model(source, **opts, **kwargs)
        for w in caught:
            if issubclass(w.category, KeyPermissionWarning):
                err_console.print(f"warning: {w.message}", highlight=False, markup=False, soft_wrap=True)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return model


#: name -> (annotation, typer option): the flags, once
_OPTIONS: dict[str, tuple[Any, Any]] = {
    "trust": (bool, typer.Option(False, "--trust", help="Load a pickle-based model without the scanner's "
                                                        "restrictions (only for files you made).")),
    "key_file": (Optional[Path], typer.Option(None, "--key-file",  # noqa: UP045 - typer needs a runtime type
                                              help="Key file to decrypt an encrypted model.")),
    "key_env": (Optional[str], typer.Option(None, "--key-env",  # noqa: UP045
                                            help="Environment variable holding the decryption key.")),
    "passphrase_env": (Optional[str], typer.Option(None, "--passphrase-env",  # noqa: UP045
                                                   help="Environment variable holding the passphrase of an "
                                                        "encrypted model.")),
    "public_key": (Optional[Path], typer.Option(None, "--public-key",  # noqa: UP045
                                                help="Require a valid signature by this key (PEM) before loading.")),
    "signature": (Optional[Path], typer.Option(None, "--signature",  # noqa: UP045
                                               help="Signature file (default MODEL.sig).")),
    "strict": (bool, typer.Option(False, "--strict", help="Refuse (exit 3) a --key-file readable by group or "
                                                          "others (default: a warning, as ssh does).")),
}
assert set(_OPTIONS) == {f.name for f in fields(LoadFlags)}


def load_options(func: F) -> F:
    """Add the loading flags to a typer command; it receives them as one checked ``load: LoadFlags``."""
    sig = inspect.signature(func)
    if "load" not in sig.parameters:
        raise TypeError(f"{func.__name__} must take a keyword parameter 'load' (the LoadFlags)")
    params = [p for p in sig.parameters.values() if p.name != "load"]
    clash = set(_OPTIONS) & {p.name for p in params}
    if clash:
        raise TypeError(f"{func.__name__} declares loading flags itself: {sorted(clash)}")
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
               for name, (ann, opt) in _OPTIONS.items()]

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        flags = LoadFlags(**{name: kwargs.pop(name) for name in _OPTIONS})
        flags.validate()
        return func(*args, load=flags, **kwargs)

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {k: v for k, v in func.__annotations__.items() if k != "load"}
    return command  # type: ignore[return-value]
