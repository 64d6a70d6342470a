"""``export``: write a hardened deployment of the gateway for one model (Docker, Kubernetes, Gramine-SGX).

The generated files hold no secret: key state, API keys and model keys are *references* (a Kubernetes
Secret name, an environment variable's name, an SGX sealing-key name), never values. Nothing here reads
a key, the environment or the gateway's state folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from modelshield._io import file_sha256, write_files_safely
from modelshield.errors import InputNotFoundError, IntegrityError, OutputError, UserError
from modelshield.formats import is_encrypted_head

__all__ = ["TARGETS", "DeploySpec", "Export", "export", "render"]

Target = Literal["docker", "k8s", "gramine"]
TARGETS: tuple[str, ...] = ("docker", "k8s", "gramine")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")
#: Inside the image/enclave: where the model, the code and the state live.
MODEL_DIR = "/models"
STATE_DIR = "/var/lib/modelshield"
APP_DIR = "/opt/app"
#: Names of the secrets the deployment refers to (values are created by the operator, out of band).
MODEL_KEY_ENV = "MODELSHIELD_MODEL_KEY"
MODEL_KEY_SECRET = "modelshield-model-key"  # noqa: S105 - a Secret's name, not a secret
API_KEYS_SECRET = "modelshield-api-keys"  # noqa: S105 - a Secret's name, not a secret


@dataclass(frozen=True, kw_only=True)
class DeploySpec:
    """What to deploy; plain data (validated by :meth:`check`, called by :func:`render`).

    ``model``: the model file baked into the image. ``signature``/``public_key``: copied beside it and
    passed to ``serve --signature/--public-key`` so the gateway verifies the model at every start.
    ``python_digest``/``runtime_digest``: defaults for the Dockerfile's digest build arguments (without
    them the build must pass ``--build-arg``; an unpinned build fails). ``image``: the image the
    Kubernetes Deployment runs (pin it by digest).
    """

    model: Path
    target: Target
    name: str = "modelshield-gateway"
    namespace: str = "modelshield"
    port: int = 8000
    replicas: int = 1
    image: str | None = None
    python_digest: str | None = None
    runtime_digest: str | None = None
    signature: Path | None = None
    public_key: Path | None = None
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    wheels: tuple[Path, ...] = field(default_factory=tuple)
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def check(self) -> None:
        if self.target not in TARGETS:
            raise UserError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        for what, p in (("model", self.model), ("signature", self.signature), ("public key", self.public_key)):
            if p is not None and not Path(p).is_file():
                raise InputNotFoundError(f"{what} not found: {p}")
        for w in self.wheels:
            if not Path(w).is_file() or not str(w).endswith(".whl"):
                raise InputNotFoundError(f"wheel not found (or not a .whl file): {w}")
        if (self.signature is None) != (self.public_key is None):
            raise UserError("give both --signature and --public-key (the gateway verifies the model with both)")
        for what, v in (("name", self.name), ("namespace", self.namespace)):
            if not _DNS_LABEL.fullmatch(v):
                raise UserError(f"{what} {v!r} is not a DNS label (lower-case letters, digits, '-'; at most 63)")
        if not 1024 <= self.port <= 65535:
            raise UserError(f"port {self.port} must be 1024..65535 (the gateway runs as a non-root user)")
        if not 1 <= self.replicas <= 100:
            raise UserError("replicas must be 1..100")
        for what, d in (("python digest", self.python_digest), ("runtime digest", self.runtime_digest)):
            if d is not None and not _DIGEST.fullmatch(d):
                raise UserError(f"{what} {d!r} is not sha256:<64 hex digits>")
        for what, q in (("cpu limit", self.cpu_limit), ("memory limit", self.memory_limit),
                        ("cpu request", self.cpu_request), ("memory request", self.memory_request)):
            if not _QUANTITY.fullmatch(q):
                raise UserError(f"{what} {q!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi)")
        if self.image is not None and (not self.image or any(c.isspace() for c in self.image)):
            raise UserError(f"bad image reference {self.image!r}")

    # -- derived ----------------------------------------------------------------------------------
    def model_name(self) -> str:
        return Path(self.model).name

    def encrypted(self) -> bool:
        with Path(self.model).open("rb") as fh:
            return is_encrypted_head(fh.read(64))

    def serve_args(self, *, key_file: str | None = None) -> list[str]:
        """``modelshield serve`` arguments inside the container/enclave (key material by reference)."""
        # all interfaces of the container's own network namespace: the port is published by docker/k8s
        args = ["serve", f"{MODEL_DIR}/{self.model_name()}", "--host", "0.0.0.0", "--port", str(self.port),  # noqa: S104
                "--state-dir", STATE_DIR]
        if self.signature is not None:
            args += ["--signature", f"{MODEL_DIR}/{Path(self.signature).name}",
                     "--public-key", f"{MODEL_DIR}/{Path(self.public_key).name}"]  # type: ignore[arg-type]
        if self.encrypted():
            args += ["--key-file", key_file] if key_file else ["--key-env", MODEL_KEY_ENV]
        return [*args, *self.extra_args]


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
    from modelshield.deploy import docker, gramine, k8s

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
        raise OutputError(f"output folder {dest} already exists; pass --force to write into it")
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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
