"""Frozen features of a dataset: a pretrained (or untrained) network's, or the raw pixels."""

from typing import Dict, Tuple

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from solo_plugins.data.transforms import custom_image_size


def evaluation_datasets(data: DictConfig):
    """(train, val) datasets with solo-learn's evaluation transform (no augmentation) on
    both; ``data`` has solo's ``dataset``, ``train_path``, ``val_path`` and optionally
    ``format`` and ``image_size``."""
    from solo.data.classification_dataloader import prepare_datasets, prepare_transforms

    with custom_image_size(data.get("image_size")):
        _, transform = prepare_transforms(data.dataset)
    fmt = data.get("format", "image_folder")
    return prepare_datasets(
        data.dataset,
        T_train=transform,
        T_val=transform,
        train_data_path=data.train_path,
        val_data_path=data.val_path,
        data_format="image_folder" if fmt == "dali" else fmt,
    )


@torch.no_grad()
def network_features(model, dataset, batch_size: int = 256, num_workers: int = 0) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """({"feats": backbone features, "z": projections}, labels) of a solo method in eval mode."""
    device = next(model.parameters()).device
    feats, zs, labels = [], [], []
    for images, targets in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        out = model(images.to(device))
        feats.append(out["feats"].float().cpu())
        zs.append(out["z"].float().cpu())
        labels.append(targets)
    return {"feats": torch.cat(feats), "z": torch.cat(zs)}, torch.cat(labels)


def pixel_features(dataset, batch_size: int = 512) -> Tuple[torch.Tensor, torch.Tensor]:
    """The evaluation-transformed images, flattened: raw pixels at the evaluation resolution."""
    xs, labels = [], []
    for images, targets in DataLoader(dataset, batch_size=batch_size):
        xs.append(images.flatten(1))
        labels.append(targets)
    return torch.cat(xs), torch.cat(labels)
