"""One exception tree for modelshield.

::

    ModelShieldError                 exit 2   HTTP 500   base class; never raised directly
    ├── UserError                    exit 2   HTTP 400   the user's input is wrong; message says how to fix it
    │   ├── InputNotFoundError       exit 2   HTTP 404   a file or directory does not exist / is unreadable
    │   ├── FormatError              exit 2   HTTP 415   a file's content is not a format we can read
    │   ├── DataError                exit 2   HTTP 422   unknown column, shape mismatch, bad labels, ...
    │   ├── PolicyError              exit 2   HTTP 422   a policy file that does not parse or validate
    │   ├── OptionError              exit 2   HTTP 422   an option value that cannot be meaningful for this data
    │                                                      (e.g. an eps covering the whole box): stops an audit
    │   ├── OutputError              exit 2   HTTP 409   output exists (no --force) or cannot be written
    │   └── MissingExtraError        exit 2   HTTP 501   an optional dependency is not installed; names the extra
    ├── SecurityError                exit 3   HTTP 403   we refuse to proceed for a security reason (fail closed)
    │   ├── UnsafeModelError         exit 3   HTTP 403   the scanner found something that must not be loaded
    │   ├── UntrustedModelError      exit 3   HTTP 403   a pickle-based file and no scan / trust was allowed
    │   └── IntegrityError           exit 3   HTTP 403   wrong key, tampered ciphertext, bad signature
    └── PolicyFailure                exit 1   HTTP 200   the audit ran and the policy gate failed

Every class carries ``exit_code`` and ``http_status`` so the CLI and the gateway map errors
mechanically. Third-party errors are wrapped with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "FormatError",
    "InputNotFoundError",
    "IntegrityError",
    "MissingExtraError",
    "ModelShieldError",
    "OptionError",
    "OutputError",
    "PolicyError",
    "PolicyFailure",
    "SecurityError",
    "UnsafeModelError",
    "UntrustedModelError",
    "UserError",
]

#: Exit codes are a contract (documented in the README).
EXIT_OK = 0
EXIT_POLICY_FAILED = 1
EXIT_USAGE = 2
EXIT_SECURITY = 3
EXIT_INTERRUPTED = 130
#: An internal error (a bug): one line on stderr; ``--debug`` shows the traceback.
EXIT_INTERNAL = 70


class ModelShieldError(Exception):
    """Base class of every error modelshield raises on purpose.

    The message is neutral (a Python caller reads it too); ``cli_hint`` says what to do about it on the
    command line (a flag to pass) and only the CLI shows it (:meth:`cli_message`)."""

    exit_code: int = EXIT_USAGE
    http_status: int = 500
    cli_hint: str | None = None

    def __init__(self, *args: object, cli_hint: str | None = None) -> None:
        super().__init__(*args)
        if cli_hint is not None:
            self.cli_hint = cli_hint

    def cli_message(self) -> str:
        """The one line the CLI prints: the message, then the hint when there is one."""
        return f"{self}; {self.cli_hint}" if self.cli_hint else str(self)


class UserError(ModelShieldError):
    """The input is wrong; the message says what to change."""

    exit_code = EXIT_USAGE
    http_status = 400


class OptionError(UserError):
    """An option's value cannot be meaningful for the data it meets (found only once the data is known).

    Unlike other errors inside a check (reported in that check's result while the others run), it stops
    the audit with exit 2: the user asked for something that measures nothing."""

    http_status = 422

class InputNotFoundError(UserError):
    http_status = 404


class FormatError(UserError):
    http_status = 415


class DataError(UserError):
    http_status = 422


class PolicyError(UserError):
    http_status = 422


class OutputError(UserError):
    http_status = 409

    @classmethod
    def exists(cls, path: object, what: str = "output", hint: str = "pass --force to overwrite it") -> OutputError:
        """``<what> <path> already exists`` (the one wording), with the CLI's ``--force`` hint."""
        return cls(f"{what} {path} already exists", cli_hint=hint)


class MissingExtraError(UserError):
    """An optional dependency is missing. The message names the extra to install."""

    http_status = 501

    def __init__(self, package: str, extra: str, feature: str = "") -> None:
        what = f" for {feature}" if feature else ""
        super().__init__(
            f"{package} is needed{what}: pip install 'modelshield[{extra}]'"
        )
        self.package = package
        self.extra = extra


class SecurityError(ModelShieldError):
    exit_code = EXIT_SECURITY
    http_status = 403


class UnsafeModelError(SecurityError):
    """The scanner found findings that forbid loading the file."""

    def __init__(self, message: str, findings: list | None = None) -> None:
        super().__init__(message)
        self.findings = list(findings or [])


class UntrustedModelError(SecurityError):
    pass


class IntegrityError(SecurityError):
    pass


class PolicyFailure(ModelShieldError):
    exit_code = EXIT_POLICY_FAILED
    http_status = 200
