"""``export``: write a hardened deployment of the gateway for one model (Docker, Kubernetes, Gramine-SGX).

The generated files hold no secret: key state, API keys and model keys are *references* (a Kubernetes
Secret name, an environment variable's name, an SGX sealing-key name), never values. Nothing here reads
a key, the environment or the gateway's state folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelshield._io import file_sha256, write_files_safely
from modelshield.deploy import docker, gramine, k8s
from modelshield.deploy.spec import TARGETS, DeploySpec
from modelshield.errors import IntegrityError, OutputError, UserError

__all__ = ["TARGETS", "DeploySpec", "Export", "export", "render"]


@dataclass(frozen=True, kw_only=True)
class Export:
    """What :func:`export` wrote: the folder, the files (relative) and the model's SHA-256."""

    out: Path
    files: tuple[str, ...]
    model_sha256: str


def _copies(spec: DeploySpec) -> dict[str, Path]:
    """Files copied verbatim into the output (relative name -> source): the model and its signature."""
    out = {f"model/{spec.model_name()}": Path(spec.model)}
    if spec.signature is not None and spec.public_key is not None:
        out[f"model/{Path(spec.signature).name}"] = Path(spec.signature)
        out[f"model/{Path(spec.public_key).name}"] = Path(spec.public_key)
    if len(out) != (3 if spec.signature is not None else 1):
        raise UserError("the model, its signature and the public key need three different file names")
    if spec.target == "docker":
        out |= {f"wheels/{Path(w).name}": Path(w) for w in spec.wheels}
    return out


def render(spec: DeploySpec) -> tuple[dict[str, bytes], dict[str, Path]]:
    """The generated files (relative name -> content) and the files to copy (relative name -> source)
    for ``spec.target``; pure apart from reading the model (its hash and format)."""
    spec.check()
    return _render(spec, file_sha256(Path(spec.model)))


def _render(spec: DeploySpec, sha: str) -> tuple[dict[str, bytes], dict[str, Path]]:
    """:func:`render` for a model whose SHA-256 is ``sha`` (computed once, by the caller)."""
    if spec.target == "docker":
        return docker.render(spec, sha), _copies(spec)
    if spec.target == "k8s":
        return k8s.render(spec, sha), {}
    files, code = gramine.render(spec, sha)
    return files, {**_copies(spec), **code}


def _copy_verified(src: Path, dst: Path, sha256: str | None) -> None:
    """Copy ``src`` to ``dst`` atomically; when ``sha256`` is given the copy must hash to it (a model
    changed while it was exported is refused, exit 3)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name[:200]}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        if sha256 is not None:
            got = file_sha256(Path(tmp))
            if got != sha256:
                raise IntegrityError(f"{src} changed while it was exported (SHA-256 {got[:16]}..., "
                                     f"expected {sha256[:16]}...)")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export(spec: DeploySpec, out: str | Path, *, force: bool = False) -> Export:
    """Write the deployment for ``spec`` into the folder ``out``.

    ``out`` must not exist unless ``force`` (then files are replaced in it; files of an earlier export
    that this one does not write stay). Raises :class:`OutputError` (exit 2) for an existing folder.
    """
    spec.check()
    dest = Path(out)
    if dest.exists() and not force:
        raise OutputError.exists(dest, what="output folder", hint="pass --force to write into it")
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"output {dest} exists and is not a folder")
    sha = file_sha256(Path(spec.model))  # pinned in the generated files; the copy must match it
    files, copies = _render(spec, sha)
    pinned = _pinned_hashes(files)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for rel in {str(Path(r).parent) for r in [*files, *copies]}:
            (dest / rel).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {dest}: {exc.strerror or type(exc).__name__}") from None
    write_files_safely([(dest / rel, data) for rel, data in files.items()], force=True)
    for rel, src in copies.items():
        _copy_verified(src, dest / rel, sha if src == Path(spec.model) else pinned.get(rel))
    return Export(out=dest, files=tuple(sorted([*files, *copies])), model_sha256=sha)


def _pinned_hashes(files: Mapping[str, bytes]) -> dict[str, str]:
    """``SHA256SUMS`` entries among the generated files (relative to their folder): copies must match."""
    out: dict[str, str] = {}
    for rel, data in files.items():
        if Path(rel).name != "SHA256SUMS":
            continue
        base = Path(rel).parent
        for line in data.decode("utf-8").splitlines():
            digest, _, name = line.partition("  ")
            if name:
                out[str(base / name)] = digest
    return out
