"""``modelshield bom ...`` (CycloneDX 1.6 ML-BOM) and ``modelshield deploy export`` (hardened deployment).

Exit codes: ``bom`` 0 written; ``bom verify`` 0 the model matches the BOM, 3 it does not; ``deploy export``
0 written. Bad input (missing model, not a BOM, an output that exists without ``--force``) exits 2; an
audit report or signature that names another model exits 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from modelshield._io import check_outputs
from modelshield.cli._common import console, write_json
from modelshield.errors import EXIT_SECURITY, UserError

__all__ = ["register"]


class _DefaultCreate(TyperGroup):
    """``modelshield bom MODEL ...`` is ``modelshield bom create MODEL ...``: a first word that is not a
    subcommand (nor help) goes to ``create``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer, harden: typer.Typer) -> None:
    bom = typer.Typer(cls=_DefaultCreate, no_args_is_help=True,
                      help="CycloneDX 1.6 ML-BOM: 'bom MODEL --out FILE' writes one, 'bom verify BOM MODEL' "
                           "checks a model against one.")
    deploy = typer.Typer(help="Hardened deployment of the gateway (Docker, Kubernetes, Gramine-SGX).",
                         no_args_is_help=True)
    app.add_typer(bom, name="bom")
    app.add_typer(deploy, name="deploy")

    @bom.command("create")
    def bom_create(
        model: Path = typer.Argument(..., help="Model file."),
        out: Path = typer.Option(..., "--out", "-o", help="Where to write the BOM (e.g. bom.cdx.json)."),
        audit: Path | None = typer.Option(None, "--audit", help="Audit report from 'modelshield audit --json' "
                                                                "(must be about this model)."),
        signature: Path | None = typer.Option(None, "--signature", help="The model's signature "
                                                                        "('modelshield protect sign')."),
        public_key: Path | None = typer.Option(None, "--public-key", help="Also verify --signature with this key."),
        data: list[Path] = typer.Option([], "--data", help="Data set file (repeatable): hashed and sized."),
        no_dependencies: bool = typer.Option(False, "--no-dependencies",
                                             help="Leave out the installed Python distributions."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite --out if it exists."),
    ) -> None:
        """Write a CycloneDX 1.6 ML-BOM for MODEL: hashes, format, frameworks, data sets, installed
        dependencies, audit results and signature references."""
        from modelshield.provenance import build_bom  # lazy: the BOM engine only for bom commands (CLI start-up)

        check_outputs({"--out": out}, [model, audit, signature, public_key, *data], force)
        doc = build_bom(model, audit, signature, data=data, public_key=public_key,
                        dependencies="none" if no_dependencies else "environment")
        write_json(out, doc, force)
        comp = doc["metadata"]["component"]
        libs = sum(c["type"] == "library" for c in doc["components"])
        sets = sum(c["type"] == "data" for c in doc["components"])
        console.print(f"wrote {out}: model {comp['name']} ({comp['hashes'][0]['content'][:16]}...), "
                      f"{sets} data set(s), {libs} dependencies"
                      + (", audit results" if audit else "") + (", signature reference" if signature else ""))

    @bom.command("verify")
    def bom_verify(
        bom_file: Path = typer.Argument(..., metavar="BOM", help="The BOM (CycloneDX JSON)."),
        model: Path = typer.Argument(..., help="The model file to check against it."),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the result as JSON here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite --json if it exists."),
    ) -> None:
        """Check that MODEL's SHA-256/SHA-512 are the BOM's: exit 0 match, 3 mismatch, 2 bad input."""
        from modelshield.provenance import verify_bom  # lazy: as in bom_create

        check_outputs({"--json": json_out}, [bom_file, model], force)
        res = verify_bom(bom_file, model)
        for h in res.hashes:
            mark = "[green]match[/]" if h.matches else "[bold red]MISMATCH[/]"
            console.print(f"{h.alg}: {mark} (BOM {h.expected[:16]}..., file {h.actual[:16]}...)")
        if json_out is not None:
            write_json(json_out, res.to_dict(), force)
        if res.ok:
            console.print(f"[bold green]{model} is the model in {bom_file}[/]")
            raise typer.Exit(0)
        console.print(f"[bold red]{model} is NOT the model in {bom_file}[/]")
        raise typer.Exit(EXIT_SECURITY)

    @deploy.command("export")
    def deploy_export(
        target: str = typer.Option(..., "--target", "-t", help="docker, k8s or gramine."),
        model: Path = typer.Option(..., "--model", "-m", help="The model file the gateway serves."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --force)."),
        signature: Path | None = typer.Option(None, "--signature",
                                              help="The model's signature: the gateway verifies it at start."),
        public_key: Path | None = typer.Option(None, "--public-key", help="Public key for --signature."),
        image: str | None = typer.Option(None, "--image", help="k8s: the image to run (pin it: NAME@sha256:...)."),
        name: str = typer.Option("modelshield-gateway", "--name", help="Name of the image/workload."),
        namespace: str = typer.Option("modelshield", "--namespace", help="k8s namespace."),
        port: int = typer.Option(8000, "--port", help="Gateway port (1024-65535)."),
        python_digest: str | None = typer.Option(None, "--python-digest",
                                                 help="docker: default digest of the builder image."),
        runtime_digest: str | None = typer.Option(None, "--runtime-digest",
                                                  help="docker: default digest of the distroless runtime image."),
        wheel: list[Path] = typer.Option([], "--wheel", help="docker: a wheel to install from (repeatable), "
                                                              "e.g. modelshield's own."),
        force: bool = typer.Option(False, "--force", "-f", help="Write into --out even if it exists."),
    ) -> None:
        """Write a hardened deployment of the gateway for MODEL: a Dockerfile, Kubernetes manifests or a
        Gramine-SGX manifest template. Secrets are referenced by name, never written."""
        from modelshield.deploy import TARGETS, DeploySpec, export  # lazy: the manifest writers (CLI start-up)

        if target not in TARGETS:
            raise UserError(f"unknown --target {target!r}; choose one of {', '.join(TARGETS)}")
        spec = DeploySpec(model=model, target=target, signature=signature,  # type: ignore[arg-type]
                          public_key=public_key, image=image, name=name, namespace=namespace, port=port,
                          python_digest=python_digest, runtime_digest=runtime_digest, wheels=tuple(wheel))
        res = export(spec, out, force=force)
        console.print(f"wrote {len(res.files)} file(s) to {res.out} for {model.name} "
                      f"(SHA-256 {res.model_sha256[:16]}...), target {target}")
