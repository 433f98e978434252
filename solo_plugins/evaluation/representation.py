"""The paper's representation metrics of a pretrained method on validation images."""

from typing import Dict

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset

from solo_plugins.data.transforms import TwoViews
from solo_plugins.metrics import alignment, representation_metrics


def _subset(n: int, max_samples: int, seed: int):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_samples].tolist()


@torch.no_grad()
def representation_scores(model, run_cfg: DictConfig, val_set, val: Dict[str, torch.Tensor], max_samples: int,
                          seed: int = 0, batch_size: int = 256) -> Dict[str, float]:
    """Uniformity, Wasserstein uniformity, rank and effective rank of ``max_samples``
    validation features and projections (``val``, already extracted from ``val_set``), and
    the alignment of two views of the same images under the run's own augmentation; computed
    on the model's device."""
    from solo.data.pretrain_dataloader import build_transform_pipeline

    device = next(model.parameters()).device
    keep = _subset(len(val_set), max_samples, seed)
    values = representation_metrics(val["feats"][keep].to(device), val["z"][keep].to(device), max_samples)

    augment = TwoViews(build_transform_pipeline(run_cfg.data.dataset, run_cfg.augmentations[0]))
    plain = val_set.transform
    val_set.transform = augment
    torch.manual_seed(seed)
    z1s, z2s = [], []
    try:
        for (v1, v2), _ in DataLoader(Subset(val_set, keep), batch_size=batch_size):
            z1s.append(model(v1.to(device))["z"].float())
            z2s.append(model(v2.to(device))["z"].float())
    finally:
        val_set.transform = plain
    values["z_alignment"] = float(alignment(torch.cat(z1s), torch.cat(z2s)))
    return values
