"""Lightning callbacks switched on from the YAML."""

from typing import List

from lightning.pytorch import Callback
from omegaconf import DictConfig

from solo_plugins.callbacks.representation_metrics import RepresentationMetrics


def callbacks_from_config(cfg: DictConfig) -> List[Callback]:
    """``representation_metrics: {enabled: true, frequency: 1, max_samples: 2048}``."""
    found: List[Callback] = []
    settings = cfg.get("representation_metrics")
    if settings is not None and settings.get("enabled", False):
        found.append(
            RepresentationMetrics(
                frequency=settings.get("frequency", 1), max_samples=settings.get("max_samples", 2048)
            )
        )
    return found


__all__ = ["RepresentationMetrics", "callbacks_from_config"]
