"""Logs the paper's representation metrics during pretraining."""

from typing import Callable, Iterable, Optional

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from solo_plugins.data.transforms import TwoViews
from solo_plugins.metrics import alignment, representation_metrics

#: A function returning an iterable of solo-learn pretraining batches ``(index, [view1, view2,
#: ...], label)``: the pairs whose alignment is measured.
PairLoader = Callable[[], Iterable]


class RepresentationMetrics(Callback):
    """Every ``frequency`` epochs, after validation: uniformity, Wasserstein uniformity
    distance, rank and effective rank of the validation features and projections, and the
    alignment of projected view pairs; logged as ``repr/<name>``.

    The pairs come from ``pair_loader``, the callback's own loader (from the YAML: the
    training images under the first training augmentation, see :func:`training_pairs`),
    never from ``trainer.train_dataloader``: under DALI that is the training loop's one
    stateful iterator, and reading it would take batches from the next epoch. Without
    ``pair_loader`` the alignment is not measured.

    Enable from the YAML with ``representation_metrics: {enabled: true, frequency: 5}``.
    """

    def __init__(self, frequency: int = 1, max_samples: int = 2048, pair_loader: Optional[PairLoader] = None):
        if frequency < 1 or max_samples < 2:
            raise ValueError("representation_metrics.frequency must be >= 1 and max_samples >= 2")
        self.frequency, self.max_samples, self.pair_loader = frequency, max_samples, pair_loader
        self.history = []

    @torch.no_grad()
    def _embed_validation(self, trainer: Trainer, module: LightningModule):
        feats, zs, seen = [], [], 0
        loaders = trainer.val_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        for images, _ in loader:
            out = module(images.to(module.device))
            feats.append(out["feats"].float())
            zs.append(out["z"].float())
            seen += images.shape[0]
            if seen >= self.max_samples:
                break
        return torch.cat(feats), torch.cat(zs)

    @torch.no_grad()
    def _alignment(self, module: LightningModule) -> float:
        z1s, z2s, seen = [], [], 0
        for _, crops, _ in self.pair_loader():
            z1s.append(module(crops[0].to(module.device))["z"].float())
            z2s.append(module(crops[1].to(module.device))["z"].float())
            seen += crops[0].shape[0]
            if seen >= self.max_samples:
                break
        return float(alignment(torch.cat(z1s), torch.cat(z2s)))

    def on_validation_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.frequency:
            return
        was_training = module.training
        module.eval()
        try:
            feats, z = self._embed_validation(trainer, module)
            values = representation_metrics(feats, z, self.max_samples)
            if self.pair_loader is not None:
                values["z_alignment"] = self._alignment(module)
        finally:
            module.train(was_training)
        self.history.append({"epoch": trainer.current_epoch, **values})
        module.log_dict({f"repr/{k}": v for k, v in values.items()}, sync_dist=True)


def training_pairs(cfg, max_samples: int, seed: int = 0) -> Optional[PairLoader]:
    """A loader of ``max_samples`` training images (the same seeded subset every time), each
    seen twice under the first training augmentation; None where the config names no
    training images (``data.train_path``) or the dataset's files cannot be read here."""
    from solo.data.pretrain_dataloader import build_transform_pipeline, prepare_datasets
    from torch.utils.data import DataLoader, Subset

    data = cfg.get("data")
    if data is None or not cfg.get("augmentations"):
        return None
    fmt = data.get("format", "image_folder")
    dataset = prepare_datasets(
        data.dataset,
        TwoViews(build_transform_pipeline(data.dataset, cfg.augmentations[0])),
        train_data_path=data.get("train_path"),
        data_format="image_folder" if fmt == "dali" else fmt,  # DALI reads the same folder
        no_labels=data.get("no_labels", False),
    )
    keep = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:max_samples].tolist()
    batch_size = cfg.get("optimizer", {}).get("batch_size", 256)

    def loader():
        return DataLoader(Subset(dataset, keep), batch_size=batch_size, num_workers=data.get("num_workers", 0))

    return loader
