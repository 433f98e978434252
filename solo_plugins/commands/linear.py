"""Linear evaluation of a pretrained backbone with solo-learn's LinearModel.

    solo-plugins-linear --config-path configs/linear/cifar10 --config-name linear.yaml \
        pretrained_feature_extractor=trained_models/dhel/<run>/<name>.ckpt

Same config and overrides as solo-learn's main_linear.py. Unlike solo's script, a
checkpoint whose backbone keys do not all match the backbone is an error, not a silent
partial load.

`feature_batchnorm: true` puts a BatchNorm1d without affine parameters between the frozen
features and the linear classifier (the linear-probe protocol of MAE, He et al. 2022): the
classifier is still linear at test time, but SGD sees standardized features and converges
in a few epochs where raw small-CNN features need hundreds (docs/benchmark.md).
With ``data.image_size`` set, ``data.train_augmentation: false`` trains on the whole images
(the validation transform) instead of random crops.
"""

import torch
import torch.nn as nn
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf
from solo.args.linear import parse_cfg
from solo.data.classification_dataloader import prepare_data
from solo.methods.base import BaseMethod
from solo.methods.linear import LinearModel
from solo.utils.misc import make_contiguous

import solo_plugins  # noqa: F401  (registers the backbone)
from solo_plugins.checkpoints import load_backbone
from solo_plugins.commands._hydra import run_hydra
from solo_plugins.commands._trainer import build_trainer, resume_point
from solo_plugins.data.transforms import custom_image_size
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


def linear_eval(cfg: DictConfig):
    """Trains the linear classifier from a raw config; returns the trainer's final metrics."""
    OmegaConf.set_struct(cfg, False)
    feature_batchnorm = cfg.get("feature_batchnorm", False)
    if not isinstance(feature_batchnorm, bool):
        raise ConfigError(f"feature_batchnorm must be true or false; got {feature_batchnorm!r}")
    augment = _train_augmentation(cfg)
    cfg = parse_cfg(cfg)
    seed_everything(cfg.seed)

    backbone = build_backbone(cfg)
    load_backbone(backbone, cfg.pretrained_feature_extractor)
    model = LinearModel(backbone, loss_func=nn.CrossEntropyLoss(), mixup_func=None, cfg=cfg)
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
