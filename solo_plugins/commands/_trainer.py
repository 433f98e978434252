"""Trainer, logger and callbacks from a parsed solo-learn config, as solo's scripts build them."""

import inspect
import os
from typing import List, Optional, Tuple, Union

from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.loggers.wandb import WandbLogger
from lightning.pytorch.strategies.ddp import DDPStrategy
from omegaconf import DictConfig, OmegaConf
from solo.utils.auto_resumer import AutoResumer
from solo.utils.checkpointer import Checkpointer

from solo_plugins.callbacks.requeue import RandomState, RequeueOnSignal


def resume_point(cfg: DictConfig, subdir: str) -> Tuple[Optional[str], Optional[str]]:
    """(checkpoint to resume from, wandb run id) from ``resume_from_checkpoint`` or the
    auto-resumer's search of ``checkpoint.dir/subdir``."""
    if cfg.resume_from_checkpoint is not None:
        path = cfg.resume_from_checkpoint
        del cfg.resume_from_checkpoint
        return path, None
    if cfg.auto_resume.enabled:
        resumer = AutoResumer(
            checkpoint_dir=os.path.join(cfg.checkpoint.dir, subdir), max_hours=cfg.auto_resume.max_hours
        )
        path, run_id = resumer.find_checkpoint(cfg)
        if path is not None:
            print(f"Resuming from previous checkpoint that matches specifications: '{path}'")
        return path, run_id
    return None, None


def build_trainer(
    cfg: DictConfig, model, subdir: str, wandb_run_id: Optional[str], extra_callbacks: List[Callback] = ()
) -> Tuple[Trainer, Optional[Checkpointer]]:
    callbacks: List[Callback] = [*extra_callbacks, RandomState()]
    checkpointer = None
    if cfg.checkpoint.enabled:
        checkpointer = Checkpointer(
            cfg,
            logdir=os.path.join(cfg.checkpoint.dir, subdir),
            frequency=cfg.checkpoint.frequency,
            keep_prev=cfg.checkpoint.keep_prev,
        )
        callbacks.append(checkpointer)
        callbacks.append(RequeueOnSignal(checkpointer.save))  # SLURM's warning: save, then requeue

    # False, not None: Lightning's default logger would write lightning_logs/ into the
    # working directory.
    logger: Union[Logger, bool] = False
    if cfg.wandb.enabled:
        logger = WandbLogger(
            name=cfg.name,
            project=cfg.wandb.project,
            entity=cfg.wandb.entity,
            offline=cfg.wandb.offline,
            resume="allow" if wandb_run_id else None,
            id=wandb_run_id,
            save_dir=os.environ.get("WANDB_DIR", "."),
        )
        logger.watch(model, log="gradients", log_freq=100)
        logger.log_hyperparams(OmegaConf.to_container(cfg))
        callbacks.append(LearningRateMonitor(logging_interval="step"))

    everything = OmegaConf.to_container(cfg)
    accepted = inspect.signature(Trainer.__init__).parameters
    kwargs = {name: everything[name] for name in accepted if name in everything}
    if kwargs.get("accelerator") == "cpu" and isinstance(kwargs.get("devices"), list):
        # solo-learn counts devices with len(); Lightning's CPU accelerator takes a count.
        kwargs["devices"] = len(kwargs["devices"])
    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        # submitit owns SLURM's warning signal (RequeueOnSignal); Lightning's auto-requeue would
        # requeue on its own signal, uncounted by max_requeue
        kwargs["plugins"] = [*(kwargs.get("plugins") or []), SLURMEnvironment(auto_requeue=False)]
    kwargs.update(
        logger=logger,
        default_root_dir=cfg.checkpoint.dir,
        callbacks=callbacks,
        enable_checkpointing=False,
        strategy=DDPStrategy(find_unused_parameters=False) if cfg.strategy == "ddp" else (cfg.strategy or "auto"),
    )
    return Trainer(**kwargs), checkpointer
