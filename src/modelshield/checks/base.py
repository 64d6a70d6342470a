"""The :class:`Check` interface and the :class:`AuditContext` every check reads.

A check is one subclass in one module::

    @dataclass(kw_only=True)
    class MyCheck(Check):
        name: ClassVar[str] = "mine"
        title: ClassVar[str] = "My check"
        requires: ClassVar[frozenset[Capability]] = frozenset({Capability.PROBABILITIES})
        declared_metrics: ClassVar[Mapping[str, str]] = {"score": "what it measures"}  # policy limits
        threshold: float = 0.5            # options are dataclass fields: plain, serialisable data

        def _run(self, ctx: AuditContext) -> CheckResult:
            ...

:meth:`Check.run` is a template method and final: it decides whether the check applies, seeds the
random generators from ``ctx.seed``, times the step, sets the status and turns an exception inside the
step into the check's error result (an :class:`~modelshield.errors.OptionError` still stops the audit).
A subclass implements only the step, ``_run``; overriding ``run`` is refused when the class is created.
The runner (:func:`modelshield.runner.run_check`) only selects checks and calls ``run``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import time
import traceback
import types
import typing
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelshield.errors import OptionError, UserError
from modelshield.findings import CheckResult, CheckStatus, Finding, Severity
from modelshield.models.base import BaseModel, Capability

if TYPE_CHECKING:  # pragma: no cover
    from modelshield.data.dataset import Dataset
    from modelshield.policy import Policy

__all__ = ["Applies", "AuditContext", "Check", "EventFn", "ProgressFn"]

ProgressFn = Callable[[float, str], None]
#: Called as ``on_event(kind, check_name, payload)``; kinds: "start", "progress", "end".
EventFn = Callable[[str, str, Any], None]

#: What :meth:`Check.__init_subclass__` says to a subclass that overrides the final :meth:`Check.run`.
RUN_IS_FINAL = ("{cls} overrides Check.run(), which is final (it owns seeding, timing and error capture): "
                "implement the check's step as _run(self, ctx) -> CheckResult instead")


def _no_progress(_fraction: float, _message: str) -> None:
    return None


@dataclass(kw_only=True)
class AuditContext:
    """Everything a check may read. Built once per audited model by the runner.

    ``data`` is held-out evaluation data (non-members); ``train`` the training data (members) when
    the user supplied it. ``quick`` asks checks to use small budgets (demo, smoke tests).
    ``options`` holds per-check option overrides (``{"robustness": {"eps": [0.1]}}``).
    """

    model: BaseModel | None = None
    data: Dataset | None = None
    train: Dataset | None = None
    model_path: Path | None = None
    artifacts: list[Path] = field(default_factory=list)
    seed: int = 0
    quick: bool = False
    policy: Policy | None = None
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    progress: ProgressFn = _no_progress
    extras: dict[str, Any] = field(default_factory=dict)

    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator seeded from the audit seed and ``salt`` (stable across runs and checks)."""
        return np.random.default_rng([self.seed, zlib.crc32(salt.encode())])

    def threshold(self, key: str, default: float) -> float:
        """A policy threshold (``"fairness.demographic_parity_difference.high"``) or ``default``."""
        if self.policy is None:
            return default
        return self.policy.threshold(key, default)

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.model.capabilities if self.model is not None else frozenset()


class Applies:
    """The answer of :meth:`Check.applies`: truthy, or falsy with a reason for the report."""

    __slots__ = ("reason",)

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is None

    def __repr__(self) -> str:
        return "Applies()" if self else f"Applies(reason={self.reason!r})"


@dataclass(kw_only=True)
class Check(ABC):
    """Base class of every audit check. Subclasses are keyword-only dataclasses of their options."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Capability]] = frozenset()
    needs_model: ClassVar[bool] = True
    needs_data: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = False
    needs_train: ClassVar[bool] = False
    needs_sensitive: ClassVar[bool] = False
    tasks: ClassVar[frozenset[str]] = frozenset({"classification", "regression"})
    #: The metrics the check puts in :attr:`CheckResult.metrics` (what a policy limit
    #: ``<check>.<metric> <op> <number>`` can name): name -> one-line description. A ``{placeholder}``
    #: segment stands for any name chosen at run time (a sensitive attribute, an attack). ``None`` means
    #: "not declared" (e.g. a plug-in written before declarations existed): policy names for the check are
    #: then not validated, with a warning. (Not called ``metrics``: a check's options may use that name.)
    declared_metrics: ClassVar[Mapping[str, str] | None] = None
    #: The policy thresholds the check reads with :meth:`AuditContext.threshold`, keys without the
    #: ``<check>.`` prefix (``"robust_accuracy.high"``) -> description; ``None``: not declared.
    declared_thresholds: ClassVar[Mapping[str, str] | None] = None

    def applies(self, ctx: AuditContext) -> Applies:
        """Whether this check can run on ``ctx``; the default reads the class-level needs."""
        if self.needs_model and ctx.model is None:
            return Applies("needs a model")
        if ctx.model is not None and ctx.model.task not in self.tasks:
            return Applies(f"not for {ctx.model.task} models")
        missing = self.requires - ctx.capabilities
        if missing:
            return Applies("needs " + ", ".join(sorted(c.value for c in missing)))
        if self.needs_data and ctx.data is None:
            return Applies("needs --data")
        if self.needs_labels and (ctx.data is None or ctx.data.y is None):
            return Applies("needs labels (--target)")
        if self.needs_train and ctx.train is None:
            return Applies("needs training data (--train)")
        if self.needs_sensitive and (ctx.data is None or not ctx.data.sensitive):
            return Applies("needs sensitive columns (--sensitive)")
        return Applies()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__:  # run() is the workflow; a plug-in overriding it would skip seeding and capture
            raise TypeError(RUN_IS_FINAL.format(cls=f"{cls.__module__}.{cls.__qualname__}"))

    @typing.final
    def run(self, ctx: AuditContext, *, on_event: EventFn | None = None) -> CheckResult:
        """Run the check on ``ctx`` and return its result; never raises for the check's own failure.

        The workflow every check shares (template method; subclasses implement :meth:`_run`):

        1. :meth:`applies` — a falsy answer gives a ``SKIPPED`` result with its reason;
        2. the global torch and numpy generators are seeded from ``ctx.seed`` (for libraries that read
           them; checks themselves draw from :meth:`AuditContext.rng`), the step is timed
           (``duration_s``) and its status set (``FINDINGS`` when it has findings, else ``PASSED``);
        3. an exception in the step becomes an ``ERROR`` result with one high finding
           (``<name>.error``, the traceback as evidence), so the other checks of an audit still run —
           except :class:`~modelshield.errors.OptionError` (an option that measures nothing on this data)
           and ``KeyboardInterrupt``, which propagate and stop the audit (exit 2, 130).

        ``on_event(kind, name, payload)`` receives ``"start"`` (only when the check applies),
        ``"progress"`` (``(fraction, message)`` from ``ctx.progress``, which it then replaces) and ``"end"``
        (the result; ``None`` when skipped).
        """
        emit = on_event or _no_event
        verdict = self.applies(ctx)
        if not isinstance(verdict, Applies):  # a plug-in's applies() may return a plain bool
            verdict = Applies() if verdict else Applies("does not apply")
        if not verdict:
            emit("end", self.name, None)
            return CheckResult(check=self.name, status=CheckStatus.SKIPPED, skip_reason=verdict.reason or "",
                               params=self.params())
        emit("start", self.name, None)
        if on_event is not None:
            ctx = dataclasses.replace(ctx, progress=lambda frac, msg: emit("progress", self.name, (frac, msg)))
        t0 = time.perf_counter()
        _seed_global_generators(ctx.seed)
        try:
            result = self._run(ctx)
            if not isinstance(result, CheckResult):
                raise TypeError(f"check {self.name} returned {type(result).__name__}, not CheckResult")
            result.status = CheckStatus.FINDINGS if result.findings else CheckStatus.PASSED
        except (KeyboardInterrupt, OptionError):  # an option that cannot be meaningful is a usage error (exit 2)
            raise
        except Exception as exc:  # one failing check is data, the others still run
            result = self._error_result(exc, traceback.format_exc(limit=20))
        result.duration_s = time.perf_counter() - t0
        emit("end", self.name, result)
        return result

    @abstractmethod
    def _run(self, ctx: AuditContext) -> CheckResult:
        """The check's own step: compute and return its result (:meth:`result` builds one).
        Raise to report an error; never print. Called only by :meth:`run`."""

    def _error_result(self, exc: Exception, tb: str) -> CheckResult:
        return CheckResult(
            check=self.name,
            status=CheckStatus.ERROR,
            params=self.params(),
            summary=f"the check failed: {type(exc).__name__}: {exc}",
            findings=[
                Finding(
                    check=self.name,
                    severity=Severity.HIGH,
                    rule_id=f"{self.name}.error",
                    title=f"Check {self.name!r} could not complete",
                    detail=f"{type(exc).__name__}: {exc}",
                    evidence={"traceback": tb},
                    remediation="Re-run with --debug for the full traceback; the other checks ran normally.",
                )
            ],
        )

    def params(self) -> dict[str, Any]:
        """The check's options as plain data (recorded in reports)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Check:
        """Build from a mapping of options (CLI ``--option``, policy ``checks:``, JSON).

        Unknown keys and values of the wrong type are a clear :class:`UserError`; ints are accepted
        where floats are expected and single values where lists are expected.
        """

        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - set(fields))
        if unknown:
            raise UserError(
                f"unknown option {unknown[0]!r} for check {cls.name!r}; "
                f"known: {', '.join(sorted(fields)) or '(none)'}"
            )
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in options.items():
            try:
                values[key] = _coerce(value, hints.get(key, Any))
            except (TypeError, ValueError):
                want = getattr(hints.get(key), "__name__", None) or str(hints.get(key)).replace("typing.", "")
                raise UserError(f"option {cls.name}.{key}: {value!r} is not a valid {want}") from None
        check = cls(**values)
        check.check_options()  # bad values fail before any work, like unknown keys (exit 2, not a check error)
        return check

    def check_options(self) -> None:
        """Raise :class:`~modelshield.errors.UserError` for option values that are wrong whatever the data
        (called when the check is built from options; the default accepts everything)."""
        return

    def result(self, **kwargs: Any) -> CheckResult:
        """A :class:`CheckResult` for this check (``check`` and ``params`` filled in)."""
        return CheckResult(check=self.name, params=self.params(), **kwargs)


def _no_event(_kind: str, _name: str, _payload: Any) -> None:
    return None


def _seed_global_generators(seed: int) -> None:
    """Seed torch's and numpy's global generators (for libraries that still read them)."""
    try:
        import torch  # lazy: torch is heavy; the CLI imports this module

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass
    np.random.seed(seed % (2**32))


def _coerce(value: Any, hint: Any) -> Any:
    """Check ``value`` against a dataclass field's type hint (the plain types options use)."""
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except (TypeError, ValueError):
                continue
        raise TypeError(value)
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(value)
    if origin in (list, tuple, frozenset, set, collections.abc.Sequence):
        items = value if isinstance(value, (list, tuple)) else [value]
        inner = args[0] if args else Any
        out = [_coerce(v, inner) for v in items]
        return tuple(out) if origin is tuple else out
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise TypeError(value)
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    return value
