"""Representation metrics of a pretraining run on a dataset.

    solo-plugins-metrics --config-path configs/knn --config-name digits.yaml \
        pretrained_checkpoint_dir=trained_models/dhel/<run>

Uses the same config as the k-NN command; ``device`` (``auto``: CUDA when available, ``cpu``,
``cuda``) is where the network and the metrics run. Prints (and returns) alignment of two augmented
views (the run's own augmentations) and, for backbone features and projections:
uniformity, Wasserstein distance to uniformity, rank and effective rank.
"""

import json
from typing import Dict

from omegaconf import DictConfig

from solo_plugins.checkpoints import load_method
from solo_plugins.commands._hydra import run_hydra
from solo_plugins.device import config_device, resolve_device
from solo_plugins.evaluation import evaluation_datasets, network_features
from solo_plugins.evaluation.representation import representation_scores


def checkpoint_metrics(checkpoint: str, data: DictConfig, max_samples: int = 2048, batch_size: int = 256,
                       seed: int = 0, device: str = "auto") -> Dict[str, float]:
    model, run_cfg = load_method(checkpoint)
    model.to(resolve_device(device))
    _, val_set = evaluation_datasets(data)
    val, _ = network_features(model, val_set, batch_size)
    return representation_scores(model, run_cfg, val_set, val, max_samples, seed, batch_size)


def metrics_command(cfg: DictConfig) -> Dict[str, float]:
    device = config_device(cfg)
    values = checkpoint_metrics(cfg.pretrained_checkpoint_dir, cfg.data, cfg.get("max_samples", 2048), cfg.batch_size,
                                device=device)
    print(json.dumps(values, indent=2))
    return values


def main() -> None:
    run_hydra(metrics_command, configs="knn")


if __name__ == "__main__":
    main()
