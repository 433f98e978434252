"""Lightning callbacks switched on from the YAML."""

from typing import List

from lightning.pytorch import Callback
from omegaconf import DictConfig

from solo_plugins.callbacks.representation_metrics import RepresentationMetrics, training_pairs


def callbacks_from_config(cfg: DictConfig) -> List[Callback]:
    """``representation_metrics: {enabled: true, frequency: 1, max_samples: 2048}``; ``cfg`` is
    the parsed pretraining config (its training images give the callback its view pairs)."""
    found: List[Callback] = []
    settings = cfg.get("representation_metrics")
    if settings is not None and settings.get("enabled", False):
        max_samples = settings.get("max_samples", 2048)
        found.append(
            RepresentationMetrics(
                frequency=settings.get("frequency", 1),
                max_samples=max_samples,
                pair_loader=training_pairs(cfg, max_samples, cfg.get("seed", 0) or 0),
            )
        )
    return found


__all__ = ["RepresentationMetrics", "callbacks_from_config", "training_pairs"]
