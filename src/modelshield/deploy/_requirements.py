"""Pinned requirements for the gateway image: modelshield[serve] and what it needs, at the versions
installed here (the versions the model was audited with)."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement

__all__ = ["pinned_requirements"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(root: str = "modelshield", extras: tuple[str, ...] = ("serve",)) -> list[str]:
    """``name==version`` for ``root`` and every installed distribution it needs (transitively), with
    ``extras`` of ``root`` included; requirements whose environment marker is false here, or that are not
    installed, are left out. Sorted by normalised name. ``root`` itself is pinned with its extras."""
    out: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    while todo:
        name, want = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = _norm(dist.metadata["Name"] or name)
        first = key not in out
        out[key] = dist.version
        for raw in dist.requires or ():
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            by_extra = req.marker is not None and "extra" in str(req.marker)
            envs = [{"extra": e} for e in want] if by_extra else [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            dep = _norm(req.name)
            if dep not in out or (first and req.extras):
                todo.append((dep, tuple(sorted(req.extras))))
    pins = []
    for key, version in sorted(out.items()):
        label = f"{key}[{','.join(extras)}]" if key == _norm(root) and extras else key
        pins.append(f"{label}=={version}")
    return pins
