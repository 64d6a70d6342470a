"""Progress bars on stderr for the long commands (``audit``, ``audit-registry``): one rich ``Progress``,
transient (gone when done) and disabled when stderr is not a terminal or ``--no-progress`` is given."""

from __future__ import annotations

from typing import Any

from modelshield.cli._common import err_console

__all__ = ["CheckProgress", "ModelProgress"]


class _Bar:
    """A rich progress display with these columns, used as a context manager."""

    def __init__(self, enabled: bool, *columns: Any) -> None:
        from rich.progress import Progress  # lazy: rich.progress only for the commands that show one

        self.enabled = enabled
        self.progress = Progress(*columns, console=err_console, transient=True, disable=not enabled)

    def __enter__(self) -> Any:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]


class CheckProgress(_Bar):
    """One task per check, fed by the runner's events (``on_event``); ``set_label`` names the model."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn  # lazy: as _Bar

        super().__init__(enabled, SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                         TextColumn("{task.fields[msg]}"), TimeElapsedColumn())
        self.tasks: dict[str, Any] = {}
        self.label = ""

    def on_event(self, kind: str, check: str, payload: Any) -> None:
        key = f"{self.label}:{check}"
        if kind == "start":
            self.tasks[key] = self.progress.add_task(f"{self.label} · {check}", total=1.0, msg="")
        elif kind == "progress" and key in self.tasks:
            frac, msg = payload
            self.progress.update(self.tasks[key], completed=min(max(float(frac), 0.0), 1.0), msg=str(msg)[:40])
        elif kind == "end" and key in self.tasks:
            self.progress.update(self.tasks[key], completed=1.0, visible=False)

    def set_label(self, label: str) -> None:
        self.label = label

    def note(self, message: str) -> None:
        if self.enabled:
            err_console.print(f"[dim]{message}[/]")


class ModelProgress(_Bar):
    """One bar over the models of a registry: ``update(done, total, name)``."""

    def __init__(self, enabled: bool, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn  # lazy: as _Bar

        super().__init__(enabled, TextColumn("auditing"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[last]}"), TimeElapsedColumn())
        self.task = self.progress.add_task("registry", total=max(total, 1), last="")

    def update(self, done: int, total: int, name: str) -> None:
        self.progress.update(self.task, completed=done, total=max(total, 1), last=name[-40:])
