"""``harden_watermark`` reads its keys from files when given paths, and :meth:`WatermarkHardening.save`
writes the outputs the CLI used to write itself (secrets private, a failed embedding refused)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from modelshield.data.dataset import Dataset  # noqa: E402
from modelshield.errors import OutputError, UserError  # noqa: E402
from modelshield.harden.watermark import WatermarkConfig, harden_watermark  # noqa: E402
from modelshield.models.torch import TorchModel  # noqa: E402
from modelshield.protect.keys import load_key_file, load_public_key, write_key_file, write_signing_keypair  # noqa: E402
from modelshield.theft.watermark import Commitment, TriggerSet, open_claim  # noqa: E402


@pytest.fixture(scope="module")
def hardened(tmp_path_factory, breast_cancer):
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("wm-save")
    write_signing_keypair(d / "owner.key", d / "owner.pub")
    key = write_key_file(d / "given.wmkey")
    Xtr, _, ytr, _ = breast_cancer
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    ds = Dataset(X=Xtr, y=ytr)
    res = harden_watermark(TorchModel(net), ds, signing_key=d / "owner.key", key=str(d / "given.wmkey"),
                           config=WatermarkConfig(n_triggers=20, epochs=5, lr=1e-2))
    return d, res, key


def test_paths_are_read_and_the_result_saved(hardened):
    d, res, key = hardened
    assert res.owned and res.key == key  # the given key file, not a fresh key
    out = [d / "wm.pt", d / "t.npz", d / "c.json", d / "k.wmkey"]
    assert res.save(out[0], out[1], out[2], out[3]) == [out[0], out[1], out[3], out[2]]
    assert out[0].read_bytes() == res.model_bytes
    assert (out[1].stat().st_mode & 0o077) == 0 and (out[3].stat().st_mode & 0o077) == 0  # the secrets
    assert load_key_file(out[3]) == key
    assert TriggerSet.load(out[1]).labels.tolist() == res.triggers.labels.tolist()
    assert Commitment.load(out[2]) == res.commitment
    assert res.commitment.open(load_public_key(d / "owner.pub"), key) is not None
    claim = open_claim(out[2], d / "owner.pub", out[3], out[1])
    assert claim.verify(torch.jit.load(out[0]) if res.model_format == "torchscript" else torch.load(
        out[0], weights_only=False), alpha=1e-3).owned
    with pytest.raises(OutputError, match="already exists"):
        res.save(out[0], d / "t2.npz", d / "c2.json")
    assert not (d / "t2.npz").exists()  # nothing written when the first output is refused
    written = res.save(out[0], d / "t3.npz", d / "c3.json", force=True)  # no key file asked for
    assert written == [out[0], d / "t3.npz", d / "c3.json"]


def test_a_watermark_that_did_not_embed_is_not_saved(hardened):
    import dataclasses

    d, res, _ = hardened
    weak = dataclasses.replace(res, verdict=dataclasses.replace(res.verdict, p_value=1.0))
    assert not weak.owned
    with pytest.raises(UserError, match=r"did not embed .*nothing to save"):
        weak.save(d / "no.pt", d / "no.npz", d / "no.json")
    assert not (d / "no.pt").exists()
