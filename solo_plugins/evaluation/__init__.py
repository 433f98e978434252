"""Evaluation of frozen representations: the probes, the reference rows and the metrics of
a checkpoint, computed from features extracted once per checkpoint."""

import json
import os
from typing import Dict

import torch
from omegaconf import DictConfig, OmegaConf

from solo_plugins.device import resolve_device
from solo_plugins.evaluation.features import evaluation_datasets, network_features, pixel_features
from solo_plugins.evaluation.probes import ProbeResult, knn_probe, logistic_probe, probe_protocol

__all__ = [
    "ProbeResult",
    "evaluate_checkpoint",
    "evaluate_pixels",
    "evaluation_datasets",
    "knn_probe",
    "logistic_probe",
    "network_features",
    "pixel_features",
    "probe_protocol",
    "probe_scores",
    "save_untrained",
]


def probe_scores(train_x, train_y, test_x, test_y, seed: int = 0, device="cpu") -> Dict[str, float]:
    """``probe_acc1`` (converged logistic regression, scikit-learn on the CPU), ``probe_C``,
    ``probe_converged``, ``knn_acc1`` (weighted cosine kNN, on ``device``) and the
    ``probe_protocol`` of one set of features."""
    probe = logistic_probe(train_x, train_y, test_x, test_y, seed=seed)
    return {
        "probe_acc1": round(probe.acc1, 4),
        "probe_C": probe.C,
        "probe_converged": probe.converged,
        "knn_acc1": round(knn_probe(train_x, train_y, test_x, test_y, device=device), 4),
        "probe_protocol": probe_protocol(),
    }


def evaluate_checkpoint(checkpoint: str, seed: int = 0, data: DictConfig = None, metrics_samples: int = 1024,
                        batch_size: int = 256, device: str = "auto") -> Dict[str, float]:
    """Probes (on backbone features) and representation metrics of a pretraining checkpoint.

    Needs only the checkpoint and its run's ``args.json``: the data settings come from there
    unless ``data`` is given. Features are extracted once, on the evaluation transform, by
    the frozen network on ``device`` (``auto``: CUDA when available), where the kNN probe and
    the metrics also run; the logistic probe is scikit-learn's, on the CPU.
    """
    from solo_plugins.checkpoints import load_method
    from solo_plugins.evaluation.representation import representation_scores

    where = resolve_device(device)
    model, run_cfg = load_method(checkpoint)
    model.to(where)
    data = data if data is not None else run_cfg.data
    train_set, val_set = evaluation_datasets(data)
    train, train_y = network_features(model, train_set, batch_size)
    val, val_y = network_features(model, val_set, batch_size)
    scores = probe_scores(train["feats"], train_y, val["feats"], val_y, seed=seed, device=where)
    scores.update(representation_scores(model, run_cfg, val_set, val, metrics_samples, seed, batch_size))
    return scores


def evaluate_pixels(data: DictConfig, seed: int = 0, device: str = "auto") -> Dict[str, float]:
    """The probes on raw pixels (the evaluation transform's images, flattened)."""
    train_set, val_set = evaluation_datasets(data)
    train_x, train_y = pixel_features(train_set)
    val_x, val_y = pixel_features(val_set)
    return probe_scores(train_x, train_y, val_x, val_y, seed=seed, device=resolve_device(device))


def save_untrained(pretrain_cfg: DictConfig, out_dir: str, seed: int) -> str:
    """Writes the method of a (raw) pretraining config, initialized with ``seed`` and not
    trained, as a run directory (``random-init.ckpt`` + ``args.json``) that every probe and
    command reads like a trained one. Returns the checkpoint's path."""
    from lightning.pytorch import seed_everything
    from solo.args.pretrain import parse_cfg
    from solo.methods import METHODS

    import solo_plugins  # noqa: F401  (registers the plugin's methods)

    cfg = pretrain_cfg.copy()
    OmegaConf.set_struct(cfg, False)
    cfg = parse_cfg(cfg)
    seed_everything(seed)
    model = METHODS[cfg.method](cfg)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "random-init.ckpt")
    with open(os.path.join(out_dir, "args.json"), "w") as f:
        json.dump(OmegaConf.to_container(cfg), f, default=lambda o: "<not serializable>")
    torch.save({"state_dict": model.state_dict(), "global_step": 0, "epoch": 0}, path + ".tmp")
    os.replace(path + ".tmp", path)
    return path
