"""What to deploy (:class:`DeploySpec`) and where things live inside the image or enclave.

Secrets appear here only as names (of a Kubernetes Secret, an environment variable): never values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from modelshield.errors import InputNotFoundError, UserError
from modelshield.formats import is_encrypted_head

__all__ = ["API_KEYS_SECRET", "APP_DIR", "MODEL_DIR", "MODEL_KEY_ENV", "MODEL_KEY_SECRET", "STATE_DIR", "TARGETS",
           "DeploySpec", "Target"]

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
            raise UserError("a signature and its public key go together (the gateway verifies the model with both)",
                            cli_hint="give both --signature and --public-key")
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


