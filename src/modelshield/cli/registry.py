"""``modelshield audit-registry``: audit every model of a registry (a folder tree, a Hugging Face hub cache,
an MLflow registry) on an executor, re-running only what changed (:mod:`modelshield.scale`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from modelshield._io import private_dir
from modelshield.cli._common import console, err_console, parse_options, split_list
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.cli._progress import ModelProgress
from modelshield.errors import EXIT_OK, EXIT_POLICY_FAILED, UserError
from modelshield.policy import load_policy

__all__ = ["default_cache_path", "register"]


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/modelshield/registry-cache.sqlite`` (``~/.cache`` when unset)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "modelshield" / "registry-cache.sqlite"


def register(app: typer.Typer, harden: typer.Typer) -> None:
    @app.command("audit-registry")
    @load_options
    def audit_registry_cmd(
        source: str = typer.Argument(..., help="A folder of model files, a Hugging Face hub cache folder, or "
                                               "mlflow://TRACKING_URI (a local file store or sqlite:///...)."),
        policy: Path = typer.Option(None, "--policy", "-p", help="Policy YAML (default: built-in)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: summary.html/.json/.sarif and "
                                                           "models/ (one report per model)."),
        executor: str = typer.Option("local", "--executor", "-e", help="Where units run: local, processes "
                                                                       "or ray."),
        workers: int = typer.Option(None, "--workers", "-w", help="Worker processes / Ray CPUs (default: the "
                                                                  "CPU count; local: 1)."),
        ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster address HOST:PORT "
                                                                    "(default: start a local Ray)."),
        timeout: float = typer.Option(None, "--timeout", help="Seconds one check on one model may take; past "
                                                              "it the unit is stopped and the model is an "
                                                              "error row."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Recompute everything (the cache is neither "
                                                                "read nor written)."),
        cache: str = typer.Option(None, "--cache", help="Results cache: a SQLite file or a database URL "
                                                        "(postgresql://...); default "
                                                        "~/.cache/modelshield/registry-cache.sqlite."),
        checks: str = typer.Option(None, "--checks", "-c", help="Comma-separated checks (default: all; the "
                                                                "artifact scan always runs)."),
        option: list[str] = typer.Option(None, "--option", "-O", help="Check option CHECK.KEY=VALUE."),
        seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same reports, any executor)."),
        quick: bool = typer.Option(False, "--quick", help="Small budgets: fast, less thorough."),
        force: bool = typer.Option(False, "--force", "-f", help="Write into an --out folder that holds other "
                                                                "files."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
        *,
        load: LoadFlags,
    ) -> int:
        """Audit every model of SOURCE; exit 0 all pass, 1 a model failed the policy (or errored), 2 bad input."""
        # lazy: the scale engine (runner, numpy, executors) only for this command (CLI start-up)
        from modelshield.scale import ResultCache, audit_registry, check_out_dir, make_executor, write_outputs
        from modelshield.scale.sources import discover

        if load.signature is not None:
            raise UserError("--signature names one file; in a registry each model's signature is MODEL.sig "
                            "(give only --public-key)")
        if no_cache and cache:
            raise UserError("give --cache or --no-cache, not both")
        check_out_dir(out, force)  # before any work
        pol = load_policy(policy)
        opts = parse_options(option)
        names = split_list([checks]) if checks else None
        ex = make_executor(executor, workers=workers, timeout=timeout, address=ray_address)
        if ray_address:
            ex.start()  # an address that does not answer fails now (exit 2), before any work
        store = None
        if not no_cache:
            path = cache or str(default_cache_path())
            if cache is None:
                private_dir(default_cache_path().parent, "cache directory")
            store = ResultCache(path)
        models = discover(source)  # a missing path or an MLflow URI that does not open: exit 2, before work
        loader = {k: v for k, v in load.loader_kwargs().items() if k != "trust"}
        show = not no_progress and err_console.is_terminal
        with ex, ModelProgress(show, len(models)) as bar:
            result = audit_registry(source, policy=pol, checks=names, options=opts, seed=seed, quick=quick,
                                    trust=load.trust, loader_options=loader, executor=ex, cache=store,
                                    models=models, on_progress=bar.update)
        if store is not None:
            store.close()
        written = write_outputs(result, out, force=force)
        c = result.counts()
        for row in result.rows:
            if row.status != "pass":
                why = row.error or "; ".join(row.reasons[:2])
                console.print(f"{row.status:5}  {row.name}  {why}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"{c['models']} models: {c['pass']} pass, {c['fail']} fail, {c['error']} error; "
                      f"{c['cached']} from the cache; {result.wall_s:.1f} s ({result.executor['name']})",
                      markup=False)
        for p in written:
            console.print(f"wrote {p}", markup=False)
        return EXIT_OK if result.passed else EXIT_POLICY_FAILED

