"""Linear evaluation of a pretrained backbone with solo-learn's LinearModel.

    solo-plugins-linear --config-path configs/linear/cifar10 --config-name linear.yaml \
        pretrained_feature_extractor=trained_models/dhel/<run>/<name>.ckpt

Same config and overrides as solo-learn's main_linear.py. Unlike solo's script, a
checkpoint whose backbone keys do not all match the backbone is an error, not a silent
partial load.

`feature_batchnorm: true` puts a BatchNorm1d without affine parameters between the frozen
features and the linear classifier (the linear-probe protocol of MAE, He et al. 2022): the
classifier is still linear at test time, but SGD sees standardized features (the raw
small-CNN features differ in scale by orders of magnitude; docs/benchmark.md).
With ``data.image_size`` set, ``data.train_augmentation: false`` trains on the whole images
(the validation transform) instead of random crops. Then the frozen backbone (eval mode, no
gradient) gives every image the same features in every epoch, and ``cache_features: true``
computes them once: solo-learn's LinearModel and Trainer train the classifier on the stored
features, the same steps in the same order, at a fraction of the cost per epoch, so the
evaluation can run the hundreds of epochs SGD needs to converge. They are computed on
``device`` (``auto``: CUDA when available; ``cpu``; ``cuda``); the Trainer's ``accelerator``
decides where the classifier trains.
"""

import torch
import torch.nn as nn
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf
from solo.args.linear import parse_cfg
from solo.data.classification_dataloader import prepare_data, prepare_dataloaders
from solo.methods.base import BaseMethod
from solo.methods.linear import LinearModel
from solo.utils.misc import make_contiguous
from torch.utils.data import DataLoader, TensorDataset

import solo_plugins  # noqa: F401  (registers the backbone)
from solo_plugins.checkpoints import load_backbone
from solo_plugins.commands._hydra import run_hydra
from solo_plugins.commands._trainer import build_trainer, resume_point
from solo_plugins.data.transforms import custom_image_size
from solo_plugins.device import config_device
from solo_plugins.methods.config import ConfigError


def build_backbone(cfg: DictConfig) -> nn.Module:
    """The backbone as solo-learn's BaseMethod builds it (ResNet stem changes for CIFAR)."""
    backbone = BaseMethod._BACKBONES[cfg.backbone.name](method=cfg.pretrain_method, **cfg.backbone.kwargs)
    if cfg.backbone.name.startswith("resnet"):
        backbone.fc = nn.Identity()
        if cfg.data.dataset in ("cifar10", "cifar100"):
            backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
            backbone.maxpool = nn.Identity()
    return backbone


def _train_augmentation(cfg: DictConfig) -> bool:
    value = cfg.data.get("train_augmentation", True)
    if not isinstance(value, bool):
        raise ConfigError(f"data.train_augmentation must be true or false; got {value!r}")
    if not value and cfg.data.get("image_size") is None:
        raise ConfigError("data.train_augmentation: false needs data.image_size (the small-image pipeline)")
    return value


def _cache_features(cfg: DictConfig, augment: bool) -> bool:
    value = cfg.get("cache_features", False)
    if not isinstance(value, bool):
        raise ConfigError(f"cache_features must be true or false; got {value!r}")
    if not value:
        return False
    reasons = {
        "data.train_augmentation: false (random crops give new features every epoch)": augment,
        "finetune: false (a trained backbone changes its features)": cfg.get("finetune", False),
        "data.format other than dali (DALI augments on the fly)": cfg.data.get("format") == "dali",
        "mixup: 0 and cutmix: 0 (they mix images, not features)":
            bool(cfg.get("mixup", 0)) or bool(cfg.get("cutmix", 0)),
        "checkpoint.enabled: false (the checkpoint would hold the classifier without the backbone)":
            cfg.get("checkpoint", {}).get("enabled", False),
    }
    for needed, violated in reasons.items():
        if violated:
            raise ConfigError(f"cache_features: true needs {needed}")
    return True


@torch.no_grad()
def _features(backbone: nn.Module, loader: DataLoader, device: torch.device) -> TensorDataset:
    loader = DataLoader(loader.dataset, batch_size=loader.batch_size, num_workers=loader.num_workers)
    feats, targets = [], []
    for images, target in loader:
        feats.append(backbone(images.to(device)).cpu())
        targets.append(target)
    return TensorDataset(torch.cat(feats), torch.cat(targets))


def precomputed_loaders(backbone: nn.Module, train_loader: DataLoader, val_loader: DataLoader,
                        batch_size: int, device="cpu"):
    """Loaders of the frozen backbone's features, batched and shuffled as solo-learn's
    ``prepare_dataloaders`` batches the images. The features are computed on ``device`` and
    kept on the CPU, for the Trainer to move. The global RNG is left as it was, so the
    classifier sees the batches a run on the images would."""
    with torch.random.fork_rng(devices=[]):
        backbone.eval().to(device)
        train, val = _features(backbone, train_loader, device), _features(backbone, val_loader, device)
    return prepare_dataloaders(train, val, batch_size=batch_size, num_workers=0)


def linear_eval(cfg: DictConfig):
    """Trains the linear classifier from a raw config; returns the trainer's final metrics."""
    OmegaConf.set_struct(cfg, False)
    feature_batchnorm = cfg.get("feature_batchnorm", False)
    if not isinstance(feature_batchnorm, bool):
        raise ConfigError(f"feature_batchnorm must be true or false; got {feature_batchnorm!r}")
    augment = _train_augmentation(cfg)
    cached = _cache_features(cfg, augment)
    device = config_device(cfg)  # where the cached features are computed
    cfg = parse_cfg(cfg)
    seed_everything(cfg.seed)

    backbone = build_backbone(cfg)
    load_backbone(backbone, cfg.pretrained_feature_extractor)
    model = LinearModel(backbone, loss_func=nn.CrossEntropyLoss(), mixup_func=None, cfg=cfg)
    if cached:  # the classifier reads (N, D) features that the frozen backbone computes once, below
        model.backbone, model.no_channel_last = nn.Identity(), True
    if feature_batchnorm:
        model.classifier = nn.Sequential(
            nn.BatchNorm1d(model.classifier.in_features, affine=False), model.classifier
        )
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)

    with custom_image_size(cfg.data.get("image_size"), augment=augment):
        train_loader, val_loader = prepare_data(
            cfg.data.dataset,
            train_data_path=cfg.data.train_path,
            val_data_path=cfg.data.val_path,
            data_format="image_folder" if cfg.data.format == "dali" else cfg.data.format,
            batch_size=cfg.optimizer.batch_size,
            num_workers=cfg.data.num_workers,
            auto_augment=cfg.auto_augment,
        )
    if cached:
        train_loader, val_loader = precomputed_loaders(backbone, train_loader, val_loader, cfg.optimizer.batch_size,
                                                       device)
    ckpt_path, wandb_run_id = resume_point(cfg, "linear")
    trainer, _ = build_trainer(cfg, model, "linear", wandb_run_id)
    if cfg.data.format == "dali":
        from solo.data.dali_dataloader import ClassificationDALIDataModule

        from solo_plugins.dali import enable_dali_on_cpu

        enable_dali_on_cpu()
        datamodule = ClassificationDALIDataModule(
            dataset=cfg.data.dataset,
            train_data_path=cfg.data.train_path,
            val_data_path=cfg.data.val_path,
            num_workers=cfg.data.num_workers,
            batch_size=cfg.optimizer.batch_size,
            data_fraction=cfg.data.fraction,
            dali_device=cfg.dali.device,
        )
        datamodule.val_dataloader = lambda: val_loader
        trainer.fit(model, ckpt_path=ckpt_path, datamodule=datamodule)
    else:
        trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt_path)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def main() -> None:
    run_hydra(linear_eval, configs="linear")


if __name__ == "__main__":
    main()
