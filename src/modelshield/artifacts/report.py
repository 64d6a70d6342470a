"""Scan results as data: :class:`FileReport` per file and :class:`ScanReport` for a whole scan."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelshield._version import __version__
from modelshield.findings import Finding, Severity

__all__ = ["SCHEMA_VERSION", "FileReport", "FileStatus", "ScanReport", "make_finding", "RULES"]

SCHEMA_VERSION = "1.0"
CHECK = "artifact"

#: rule_id -> one-line description (documented in docs/scanner.md).
RULES: dict[str, str] = {
    "artifact.pickle.dangerous-global": "a pickle imports a denylisted callable (code/file/network/gadget)",
    "artifact.pickle.unresolvable-global": "a pickle global that cannot be resolved statically (fail closed)",
    "artifact.pickle.unknown-global": "a pickle global that is not on the allowlist",
    "artifact.pickle.global-mutation": "a pickle writes attributes/items of a class or module",
    "artifact.pickle.indirect-call": "a pickle calls an object that is not a resolved global",
    "artifact.pickle.nested-uninspectable": "bytes handed to a nested loader could not be inspected",
    "artifact.pickle.embedded": "a pickle stream found after a non-pickle prefix",
    "artifact.pickle.trailing-data": "data after the last complete pickle that is not a pickle",
    "artifact.torch.tensor-bounds": "a tensor view reaches outside its storage (memory-corruption gadget)",
    "artifact.torch.torchscript": "a TorchScript archive: its code runs when loaded",
    "artifact.torch.torchscript-op": "TorchScript code names or looks up a file/process/network/library operator",
    "artifact.torch.torchscript-dynamic": "TorchScript code builds attribute names, looks up by name or reaches "
                                          "Python internals",
    "artifact.torch.torchscript-unparsed": "a TorchScript source member that does not parse: the result is "
                                           "inconclusive",
    "artifact.zip.name-collision": "zip members whose names collide exactly or ignoring case (loaders differ)",
    "artifact.zip.zip64-mismatch": "the zip64 locator and the end record next to it describe different archives",
    "artifact.polyglot": "a file that is also a zip archive behind its own content",
    "artifact.malformed": "the file could not be fully parsed: the result is inconclusive",
    "artifact.limit-exceeded": "a time/size/depth bound was hit: the result is inconclusive",
    "artifact.archive.unsupported": "an archive format we cannot inspect (7z, rar, encrypted zip)",
    "artifact.zip.bomb": "declared vs. actual sizes / compression ratio of a zip member are abusive",
    "artifact.zip.anomaly": "zip structure that loaders and scanners read differently",
    "artifact.zip.path-traversal": "a zip member name escapes the extraction directory",
    "artifact.numpy.object-array": "a .npy object array (its payload is a pickle)",
    "artifact.keras.lambda": "a Keras Lambda layer carrying Python bytecode",
    "artifact.keras.unsafe-reference": "a Keras config names a module/function outside Keras",
    "artifact.keras.unsafe-deserialization": "a Keras config turns off safe mode",
    "artifact.savedmodel.dangerous-op": "a TensorFlow graph uses ops that touch files, network or Python",
    "artifact.onnx.external-data": "ONNX external data that escapes the model directory",
    "artifact.onnx.custom-domain": "an ONNX node from a custom operator domain",
    "artifact.onnx.missing-external-data": "ONNX external data file missing",
    "artifact.gguf.template-injection": "a GGUF chat template uses Jinja sandbox-escape constructs (static rules "
                                        "or the sandboxed render oracle)",
    "artifact.inconclusive": "a model-like file in no format the scanner parses: the result is inconclusive",
    "artifact.encrypted": "a modelshield-encrypted container: the payload cannot be inspected without the key",
    "artifact.unknown-format": "a text/media file in no model format (not a model; searched for pickles only)",
}


class FileStatus(enum.Enum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    DANGEROUS = "dangerous"
    MALFORMED = "malformed"
    INCONCLUSIVE = "inconclusive"


_MALFORMED = {"artifact.malformed", "artifact.limit-exceeded", "artifact.archive.unsupported"}
_UNINSPECTABLE = {"artifact.inconclusive", "artifact.encrypted", "artifact.torch.torchscript-unparsed"}
_INCONCLUSIVE = _MALFORMED | _UNINSPECTABLE
#: High findings that mean "needs code nobody reviewed", not "does something dangerous": the file is
#: suspicious (still blocking at the default gate and in the secure loader, which block at high).
_UNREVIEWED = {"artifact.pickle.unknown-global", "artifact.keras.unsafe-reference"}


def make_finding(
    severity: Severity | str,
    rule_id: str,
    title: str,
    *,
    location: str | None,
    detail: str = "",
    offset: int | None = None,
    evidence: Mapping[str, Any] | None = None,
    references: Iterable[str] = (),
    remediation: str = "",
) -> Finding:
    if not remediation:
        remediation = (
            "Do not load this file. Obtain the model from a trusted source, or re-export it in a "
            "data-only format (safetensors, ONNX, skops)."
        )
    return Finding(
        check=CHECK,
        severity=Severity.parse(severity),
        title=title,
        detail=detail,
        rule_id=rule_id,
        evidence=dict(evidence or {}),
        remediation=remediation,
        references=tuple(references),
        location=location,
        offset=offset,
    )


@dataclass(kw_only=True)
class FileReport:
    """The scan of one file (or one in-memory blob)."""

    path: str
    format: str
    size: int
    findings: list[Finding] = field(default_factory=list)
    sha256: str | None = None
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> FileStatus:
        sev = [f for f in self.findings if f.severity >= Severity.MEDIUM]
        if any(f.severity >= Severity.HIGH and f.rule_id not in _INCONCLUSIVE
               and not (f.severity == Severity.HIGH and f.rule_id in _UNREVIEWED) for f in sev):
            return FileStatus.DANGEROUS
        if any(f.rule_id in _MALFORMED for f in sev):
            return FileStatus.MALFORMED
        if any(f.rule_id in _UNINSPECTABLE for f in sev):
            return FileStatus.INCONCLUSIVE
        if sev:
            return FileStatus.SUSPICIOUS
        return FileStatus.CLEAN

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "size": self.size,
            "status": self.status.value,
            "max_severity": self.max_severity.value if self.max_severity else None,
            "duration_s": round(self.duration_s, 4),
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.sha256:
            d["sha256"] = self.sha256
        if self.details:
            d["details"] = self.details
        return d


@dataclass(kw_only=True)
class ScanReport:
    """All files of one scan. ``findings`` is the flat list; ``files`` keeps per-file status."""

    files: list[FileReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [f for fr in self.files for f in fr.findings]

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def blocks(self, fail_on: Severity | str = Severity.MEDIUM) -> bool:
        """True when any finding is at or above ``fail_on`` (the CLI's exit code 1)."""
        gate = Severity.parse(fail_on)
        return any(f.severity >= gate for f in self.findings)

    def merge(self, other: ScanReport) -> ScanReport:
        return ScanReport(files=[*self.files, *other.files], errors=[*self.errors, *other.errors],
                          duration_s=self.duration_s + other.duration_s)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in FileStatus}
        for fr in self.files:
            out[fr.status.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "modelshield", "version": __version__},
            "duration_s": round(self.duration_s, 4),
            "max_severity": self.max_severity.value if self.max_severity else None,
            "summary": {"files": len(self.files), **self.counts(), "findings": len(self.findings)},
            "files": [fr.to_dict() for fr in self.files],
            "errors": list(self.errors),
        }
