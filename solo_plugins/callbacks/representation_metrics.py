"""Logs the paper's representation metrics during pretraining."""

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from solo_plugins.metrics import alignment, representation_metrics


class RepresentationMetrics(Callback):
    """Every ``frequency`` epochs, after validation: uniformity, Wasserstein uniformity
    distance, rank and effective rank of the validation features and projections, and the
    alignment of projected training view pairs; logged as ``repr/<name>``.

    Enable from the YAML with ``representation_metrics: {enabled: true, frequency: 5}``.
    """

    def __init__(self, frequency: int = 1, max_samples: int = 2048):
        if frequency < 1 or max_samples < 2:
            raise ValueError("representation_metrics.frequency must be >= 1 and max_samples >= 2")
        self.frequency, self.max_samples = frequency, max_samples
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
    def _training_alignment(self, trainer: Trainer, module: LightningModule) -> float:
        z1s, z2s, seen = [], [], 0
        for _, crops, _ in trainer.train_dataloader:
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
            values["z_alignment"] = self._training_alignment(trainer, module)
        finally:
            module.train(was_training)
        self.history.append({"epoch": trainer.current_epoch, **values})
        module.log_dict({f"repr/{k}": v for k, v in values.items()}, sync_dist=True)
