"""Files that two readers would read differently (zip name collisions, zip64 records that disagree, a zip
behind other content) are refused by the secure loader whatever the blocking severity (issue 15 A.2)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest

from modelshield.errors import UnsafeModelError
from modelshield.formats import detect_format_bytes
from modelshield.protect.loader import TrustPolicy, secure_load


def _torch_zip(tmp_path: Path, extra: dict[str, bytes], name: str) -> Path:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for info in src.infolist():
            zf.writestr(info.filename, src.read(info.filename))
        for member, data in extra.items():
            with pytest.warns(UserWarning) if member in src.namelist() else _nullctx():
                zf.writestr(member, data)
    p = tmp_path / name
    p.write_bytes(out.getvalue())
    return p


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("variant", ["upper", "exact", "mixed"])
def test_name_collisions_are_refused_at_any_blocking_level(tmp_path, variant):
    harmless = pickle.dumps({"w": [1.0]}, protocol=2)
    member = {"upper": "ARCHIVE/DATA.PKL", "exact": "archive/data.pkl", "mixed": "archive/Data.Pkl"}[variant]
    p = _torch_zip(tmp_path, {member: harmless}, f"{variant}.pt")
    for block_at in ("high", "critical"):
        with pytest.raises(UnsafeModelError, match="refusing to load"):
            secure_load(p, policy=TrustPolicy(block_at=block_at))


@pytest.mark.parametrize("prefix", [pickle.dumps([1, 2, 3], protocol=2), pickle.dumps({"a": 1}, protocol=4)])
def test_a_zip_behind_a_pickle_is_refused_at_any_blocking_level(tmp_path, prefix):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("config.json", '{"class_name": "Sequential", "config": {}}')
    p = tmp_path / "poly.pkl"
    p.write_bytes(prefix + out.getvalue())
    for block_at in ("high", "critical"):
        with pytest.raises(UnsafeModelError):
            secure_load(p, policy=TrustPolicy(block_at=block_at))


@pytest.mark.parametrize("spelling", ["archive/data.pkl", "archive/DATA.PKL", "ARCHIVE/Data.pkl"])
def test_torch_archives_are_recognised_whatever_the_case(spelling):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(spelling, pickle.dumps({}, protocol=2))
    assert detect_format_bytes(out.getvalue()) == "torch-zip"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(spelling.replace("data.pkl", "constants.pkl").replace("DATA.PKL", "CONSTANTS.PKL")
                    .replace("Data.pkl", "Constants.pkl"), pickle.dumps((), protocol=2))
        zf.writestr("ARCHIVE/CODE/__torch__.py", "def forward(self):\n    return 0\n")
    assert detect_format_bytes(out.getvalue()) == "torchscript"
