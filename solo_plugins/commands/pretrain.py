"""Self-supervised pretraining with solo-learn's pipeline and the plugin's methods.

    solo-plugins-pretrain --config-path configs/pretrain/cifar10 --config-name dhel.yaml

Takes the same Hydra config and overrides as solo-learn's main_pretrain.py, without a
solo-learn checkout.
"""

import sys
from typing import Optional

import torch
from torch.utils.data import DataLoader
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf
from solo.args.pretrain import parse_cfg
from solo.data.classification_dataloader import prepare_data as prepare_classification_data
from solo.data.pretrain_dataloader import (
    FullTransformPipeline,
    NCropAugmentation,
    build_transform_pipeline,
    prepare_datasets,
)
from solo.methods import METHODS
from solo.utils.misc import make_contiguous

import solo_plugins  # noqa: F401  (registers the methods and the backbone)
from solo_plugins.callbacks import callbacks_from_config
from solo_plugins.commands._hydra import run_hydra
from solo_plugins.commands._trainer import build_trainer, resume_point
from solo_plugins.data.resumable import ResumableSampler, ResumeDataOrder, SeededSamples
from solo_plugins.data.transforms import custom_image_size
from solo_plugins.methods._contrastive import ContrastiveMethod
from solo_plugins.methods.config import ConfigError


def _check_method(cfg: DictConfig) -> None:
    if cfg.method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(sorted(METHODS))}; got {cfg.method!r}")
    # solo's main_pretrain.py allows other than 2 large crops to wmse and mae only; the
    # plugin's methods take any number of views (or say why not in their own config check).
    multi_view = issubclass(METHODS[cfg.method], ContrastiveMethod) or cfg.method in ("wmse", "mae")
    if cfg.data.num_large_crops != 2 and not multi_view:
        raise ConfigError(
            f"method '{cfg.method}' needs exactly 2 large crops (augmentations[*].num_crops); "
            f"got data.num_large_crops={cfg.data.num_large_crops}"
        )


def _validation_loader(cfg: DictConfig):
    no_val = (cfg.data.dataset == "custom" and (cfg.data.no_labels or cfg.data.val_path is None)) or (
        cfg.data.dataset in ("imagenet100", "imagenet") and cfg.data.val_path is None
    )
    if no_val:
        return None
    _, loader = prepare_classification_data(
        cfg.data.dataset,
        train_data_path=cfg.data.train_path,
        val_data_path=cfg.data.val_path,
        data_format="image_folder" if cfg.data.format == "dali" else cfg.data.format,
        batch_size=cfg.optimizer.batch_size,
        num_workers=cfg.data.num_workers,
    )
    return loader


def _dali_datamodule(cfg: DictConfig, val_loader):
    from solo.data.dali_dataloader import PretrainDALIDataModule, build_transform_pipeline_dali

    from solo_plugins.dali import enable_dali_on_cpu

    enable_dali_on_cpu()
    transform = FullTransformPipeline(
        [
            NCropAugmentation(
                build_transform_pipeline_dali(cfg.data.dataset, aug, dali_device=cfg.dali.device), aug.num_crops
            )
            for aug in cfg.augmentations
        ]
    )
    module = PretrainDALIDataModule(
        dataset=cfg.data.dataset,
        train_data_path=cfg.data.train_path,
        transforms=transform,
        num_large_crops=cfg.data.num_large_crops,
        num_small_crops=cfg.data.num_small_crops,
        num_workers=cfg.data.num_workers,
        batch_size=cfg.optimizer.batch_size,
        no_labels=cfg.data.no_labels,
        data_fraction=cfg.data.fraction,
        dali_device=cfg.dali.device,
        encode_indexes_into_labels=cfg.dali.encode_indexes_into_labels,
    )
    module.val_dataloader = lambda: val_loader
    return module


def _train_loader(cfg: DictConfig):
    transform = FullTransformPipeline(
        [NCropAugmentation(build_transform_pipeline(cfg.data.dataset, aug), aug.num_crops) for aug in cfg.augmentations]
    )
    if cfg.debug_augmentations:
        print("Transforms:", transform)
    dataset = prepare_datasets(
        cfg.data.dataset,
        transform,
        train_data_path=cfg.data.train_path,
        data_format=cfg.data.format,
        no_labels=cfg.data.no_labels,
        data_fraction=cfg.data.fraction,
    )
    # solo-learn's prepare_dataloader (shuffled, pinned, last batch dropped) with an order that
    # a run resumed inside an epoch continues (solo_plugins.data.resumable)
    sampler = ResumableSampler(dataset, seed=cfg.seed, batch_size=cfg.optimizer.batch_size)
    loader = DataLoader(SeededSamples(dataset, cfg.seed), batch_size=cfg.optimizer.batch_size, sampler=sampler,
                        num_workers=cfg.data.num_workers, pin_memory=True, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.seed))  # iter() leaves the global stream alone
    return loader


def pretrain(cfg: DictConfig) -> Optional[str]:
    """Runs pretraining from a raw (unparsed) config; returns the last checkpoint's path."""
    OmegaConf.set_struct(cfg, False)
    cfg = parse_cfg(cfg)
    seed_everything(cfg.seed)
    _check_method(cfg)

    model = METHODS[cfg.method](cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)

    with custom_image_size(cfg.data.get("image_size")):
        val_loader = _validation_loader(cfg)
    ckpt_path, wandb_run_id = resume_point(cfg, cfg.method)
    resume = []  # DALI's loader restarts an interrupted epoch: the method warns when that happens
    if cfg.data.format == "dali":
        data = {"datamodule": _dali_datamodule(cfg, val_loader)}
    else:
        data = {"train_dataloaders": _train_loader(cfg), "val_dataloaders": val_loader}
        resume = [ResumeDataOrder(data["train_dataloaders"].sampler)]
    trainer, checkpointer = build_trainer(cfg, model, cfg.method, wandb_run_id, [*resume, *callbacks_from_config(cfg)])
    trainer.fit(model, ckpt_path=ckpt_path, **data)
    # one write: the ranks of a job share its log, and under ``python -u`` (submitit's) print
    # writes the text and its newline separately, so two ranks' lines could interleave
    sys.stdout.write(f"pretraining ended at step {trainer.global_step} "
                     f"(rank {trainer.global_rank} of {trainer.world_size})\n")
    sys.stdout.flush()
    last = getattr(checkpointer, "last_ckpt", None) if checkpointer is not None else None
    if last is None and ckpt_path is not None:
        last = ckpt_path  # resumed a run that had already finished: nothing new was saved
    return str(last) if last else None


def main() -> None:
    run_hydra(pretrain, configs="pretrain")


if __name__ == "__main__":
    main()
