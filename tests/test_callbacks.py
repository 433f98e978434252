"""The representation-metrics callback inside a Lightning fit."""

import pytest
import torch
from lightning.pytorch import Trainer
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

pytest.importorskip("solo.methods")

from solo_plugins.methods import DHEL  # noqa: E402
from tests.test_methods import FakeViews, base_cfg  # noqa: E402


class FakeImages(Dataset):
    def __init__(self, n=16, size=32):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.randn(3, self.size, self.size, generator=torch.Generator().manual_seed(100 + i)), i % 10


def test_representation_metrics_callback_logs_to_the_trainer(tmp_path):
    from solo_plugins.callbacks import callbacks_from_config

    cfg = OmegaConf.create({"representation_metrics": {"enabled": True, "frequency": 1, "max_samples": 16}})
    (callback,) = callbacks_from_config(cfg)
    assert callback.pair_loader is None  # no training images named: no alignment
    callback.pair_loader = lambda: DataLoader(FakeViews(16), batch_size=8)
    model = DHEL(base_cfg("dhel"))
    trainer = Trainer(max_epochs=1, accelerator="cpu", logger=False, default_root_dir=tmp_path,
                      callbacks=[callback], num_sanity_val_steps=0, enable_checkpointing=False)
    trainer.fit(model, DataLoader(FakeViews(8), batch_size=4), DataLoader(FakeImages(16), batch_size=8))
    assert len(callback.history) == 1
    for key in ("z_wasserstein_uniformity", "feats_effective_rank", "z_rank", "z_alignment", "z_uniformity"):
        assert f"repr/{key}" in trainer.callback_metrics
    assert 1 <= callback.history[0]["z_effective_rank"] <= 16


def _steps_per_run(digits_root, tmp_path, extra, metrics_on):
    from solo_plugins.commands.pretrain import pretrain
    from tests.conftest import compose, digits_overrides

    overrides = ["max_epochs=2", "optimizer.batch_size=64", "+limit_val_batches=1", "data.num_workers=1",
                 f"representation_metrics.enabled={metrics_on}", "representation_metrics.frequency=1",
                 "representation_metrics.max_samples=512", *extra]
    out = tmp_path / ("on" if metrics_on else "off")
    ckpt = pretrain(compose("pretrain", "digits", "dhel.yaml", digits_overrides(digits_root, out, overrides)))
    return torch.load(ckpt, weights_only=False)["global_step"]


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["dali", "torchvision"])
def test_metrics_callback_leaves_every_training_step_to_the_loop(loader, digits_root, tmp_path):
    """Under DALI the training loader is one stateful iterator: a callback that read it took
    8 batches of the next epoch (3 epochs: 63 steps without it, 55 with it, before the fix)."""
    extra = []
    if loader == "dali":
        pytest.importorskip("nvidia.dali")
        extra = ["data.format=dali", "+dali.device=cpu"]
    without = _steps_per_run(digits_root, tmp_path, extra, False)
    with_metrics = _steps_per_run(digits_root, tmp_path, extra, True)
    assert without == with_metrics == 2 * (1347 // 64)
