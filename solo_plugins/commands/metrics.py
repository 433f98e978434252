"""Representation metrics of a pretraining run on a dataset.

    solo-plugins-metrics --config-path configs/knn --config-name digits.yaml \
        pretrained_checkpoint_dir=trained_models/dhel/<run>

Uses the same config as the k-NN command. Prints (and returns) alignment of two augmented
views (the run's own augmentations) and, for backbone features and projections:
uniformity, Wasserstein distance to uniformity, rank and effective rank.
"""

import json
from typing import Dict

import torch
from omegaconf import DictConfig
from solo.data.classification_dataloader import prepare_datasets, prepare_transforms
from solo.data.pretrain_dataloader import build_transform_pipeline
from torch.utils.data import DataLoader, Subset

from solo_plugins.callbacks.representation_metrics import representation_metrics
from solo_plugins.commands._hydra import run_hydra
from solo_plugins.commands.knn import load_pretrained
from solo_plugins.data.transforms import custom_image_size
from solo_plugins.metrics import alignment


class _TwoViews:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image), self.transform(image)


@torch.no_grad()
def checkpoint_metrics(
    checkpoint_dir: str, data: DictConfig, max_samples: int = 2048, batch_size: int = 256, seed: int = 0
) -> Dict[str, float]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, run_cfg = load_pretrained(checkpoint_dir)
    model.to(device)
    with custom_image_size(data.get("image_size")):
        _, plain = prepare_transforms(data.dataset)
    augment = _TwoViews(build_transform_pipeline(data.dataset, run_cfg.augmentations[0]))
    _, val_plain = prepare_datasets(data.dataset, plain, plain, data.train_path, data.val_path, "image_folder")
    _, val_views = prepare_datasets(data.dataset, augment, augment, data.train_path, data.val_path, "image_folder")
    keep = torch.randperm(len(val_plain), generator=torch.Generator().manual_seed(seed))[:max_samples].tolist()
    torch.manual_seed(seed)

    feats, zs = [], []
    for images, _ in DataLoader(Subset(val_plain, keep), batch_size=batch_size):
        out = model(images.to(device))
        feats.append(out["feats"])
        zs.append(out["z"])
    values = representation_metrics(torch.cat(feats), torch.cat(zs), max_samples)

    z1s, z2s = [], []
    for (v1, v2), _ in DataLoader(Subset(val_views, keep), batch_size=batch_size):
        z1s.append(model(v1.to(device))["z"])
        z2s.append(model(v2.to(device))["z"])
    values["z_alignment"] = float(alignment(torch.cat(z1s), torch.cat(z2s)))
    return values


def metrics_command(cfg: DictConfig) -> Dict[str, float]:
    values = checkpoint_metrics(cfg.pretrained_checkpoint_dir, cfg.data, cfg.get("max_samples", 2048), cfg.batch_size)
    print(json.dumps(values, indent=2))
    return values


def main() -> None:
    run_hydra(metrics_command)


if __name__ == "__main__":
    main()
