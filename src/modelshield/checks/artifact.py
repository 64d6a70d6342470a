"""The ``artifact`` audit check: scan the model file (and any extra artifacts) without loading them."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from modelshield.artifacts.report import FileReport, FileStatus, ScanReport
from modelshield.artifacts.scanner import DEFAULT_TIMEOUT, _iter_files, scan_file
from modelshield.checks.base import Applies, AuditContext, Check
from modelshield.errors import InputNotFoundError
from modelshield.findings import CheckResult, CheckStatus
from modelshield.protect._provenance import PayloadScan, payload_scan

__all__ = ["ArtifactCheck"]


@dataclass(kw_only=True)
class ArtifactCheck(Check):
    """Static scan of model files for code execution, unsafe references and malformed structure.

    Scans ``ctx.model_path`` and ``ctx.artifacts`` (directories recursively) with
    :func:`modelshield.artifacts.scan`. Nothing is deserialised or executed.

    An encrypted model that the secure loader decrypted (``audit --key-file ...``) is reported with the
    scan of its decrypted payload, which the loader made in memory, provided the file on disk is still
    the one it read (same SHA-256); the row's format reads ``modelshield-encrypted > <payload format>``.

    Options
    -------
    timeout : per-file wall-clock bound in seconds; a file that hits it is reported inconclusive.
    hash : record each file's SHA-256 in the report (the ``sha256`` column; quick mode too).

    References
    ----------
    .. [1] CWE-502: Deserialization of Untrusted Data.
    .. [2] Trail of Bits, "Never a dill moment: Exploiting machine learning pickle files" (2021).

    Examples
    --------
    >>> from modelshield.checks.base import AuditContext
    >>> result = ArtifactCheck().run(AuditContext(model_path=Path("model.pkl")))  # doctest: +SKIP
    """

    name: ClassVar[str] = "artifact"
    title: ClassVar[str] = "Model file scan"
    description: ClassVar[str] = "Pickle/zip/joblib/NumPy/Keras/ONNX/SavedModel/safetensors/GGUF static scan."
    needs_model: ClassVar[bool] = False
    needs_data: ClassVar[bool] = False

    timeout: float = DEFAULT_TIMEOUT
    hash: bool = True

    def _paths(self, ctx: AuditContext) -> list[Path]:
        paths: list[Path] = []
        for p in [ctx.model_path, *ctx.artifacts]:
            if p is not None and Path(p) not in paths:
                paths.append(Path(p))
        return paths

    def applies(self, ctx: AuditContext) -> Applies:
        if not self._paths(ctx):
            return Applies("needs a model file (the model was given as an object)")
        return Applies()

    def _run(self, ctx: AuditContext) -> CheckResult:

        files: list[Path] = []
        for p in self._paths(ctx):
            if not p.exists():
                raise InputNotFoundError(f"artifact not found: {p}")
            files.extend(_iter_files(p) if p.is_dir() else [p])
        report = ScanReport()
        loaded = payload_scan(ctx.model) if ctx.model is not None else None
        for i, f in enumerate(files):
            ctx.progress(i / max(len(files), 1), f"scanning {f.name}")
            fr = _decrypted_report(f, loaded) if loaded is not None else None
            if fr is None:
                fr = scan_file(f, timeout=self.timeout, hash=self.hash)
            elif not self.hash:
                fr.sha256 = None
            report.files.append(fr)
            report.duration_s += fr.duration_s
        ctx.progress(1.0, "scan done")
        counts = report.counts()
        bad = (counts[FileStatus.DANGEROUS.value] + counts[FileStatus.MALFORMED.value]
               + counts[FileStatus.INCONCLUSIVE.value])
        worst = report.max_severity
        metrics = {
            "files": len(report.files),
            **{f"files_{k}": v for k, v in counts.items()},
            "findings": len(report.findings),
            "max_severity_rank": worst.rank if worst else -1,
            "files_blocking": bad,
        }
        rows = [{"file": fr.path, "format": fr.format, "status": fr.status.value, "size": fr.size,
                 "findings": len(fr.findings), **({"sha256": fr.sha256} if self.hash else {})}
                for fr in report.files]
        summary = (f"{len(report.files)} file(s) scanned: {counts['clean']} clean, {counts['suspicious']} "
                   f"suspicious, {counts['dangerous']} dangerous, {counts['malformed']} malformed, "
                   f"{counts['inconclusive']} inconclusive.")
        return self.result(
            findings=list(report.findings), metrics=metrics, tables={"files": rows}, summary=summary,
            status=CheckStatus.FINDINGS if report.findings else CheckStatus.PASSED,
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _decrypted_report(path: Path, loaded: PayloadScan) -> FileReport | None:
    """The loader's scan of ``path``'s decrypted payload, as this file's report; ``None`` when ``path``
    is not the file the loader read, or has changed since (then it is scanned as it is on disk)."""
    try:
        if str(path.resolve()) != loaded.path or path.stat().st_size != loaded.file_size:
            return None
        digest = _sha256(path)
    except OSError:
        return None
    if digest != loaded.file_sha256:
        return None
    inner: FileReport = loaded.report
    where = str(path)
    findings = [dataclasses.replace(f, location=where) if f.location != where else f for f in inner.findings]
    details = dict(inner.details)
    details["decrypted_payload"] = {"format": inner.format, "size": loaded.payload_size,
                                    "scanned_by": "secure loader (in memory)",
                                    "enforced": loaded.enforced}
    return FileReport(path=where, format=f"modelshield-encrypted > {inner.format}", size=loaded.file_size,
                      findings=findings, sha256=digest, duration_s=inner.duration_s, details=details)
