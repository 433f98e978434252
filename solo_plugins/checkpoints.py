"""Loading what a pretraining run saved, with one strict policy for every command.

A run directory holds solo-learn's ``args.json`` (the parsed config, written by its
Checkpointer) and one or more Lightning ``.ckpt`` files whose ``state_dict`` keys start with
``backbone.`` and the method's own modules. Every load is strict: a checkpoint that does not
fit the model is an error naming the missing and unexpected keys, never a partial load.
"""

import json
import os
from pathlib import Path
from typing import Dict, Tuple

import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's tensors do not fit the model they are loaded into."""


def latest_checkpoint(path: str) -> Path:
    """``path`` itself if it is a file, else the newest ``.ckpt`` in the directory."""
    path = Path(path)
    if path.is_file():
        return path
    checkpoints = sorted(path.glob("*.ckpt"), key=os.path.getmtime)
    if not checkpoints:
        raise FileNotFoundError(f"{path} holds no .ckpt file")
    return checkpoints[-1]


def run_config(checkpoint: str) -> DictConfig:
    """The parsed config of the run that wrote ``checkpoint`` (its ``args.json``)."""
    args = latest_checkpoint(checkpoint).parent / "args.json"
    if not args.exists():
        raise FileNotFoundError(f"{args} is missing: a checkpoint is evaluated with its run's args.json")
    return OmegaConf.create(json.loads(args.read_text()))


def state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    return torch.load(latest_checkpoint(checkpoint), map_location="cpu", weights_only=False)["state_dict"]


def load_strict(module: nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{source} does not fit {type(module).__name__}: "
            f"missing keys {sorted(missing)[:8]}{' ...' if len(missing) > 8 else ''}, "
            f"unexpected keys {sorted(unexpected)[:8]}{' ...' if len(unexpected) > 8 else ''}"
        )


def backbone_state(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The ``backbone.*`` entries of a pretraining checkpoint, prefix stripped."""
    prefix = "backbone."
    return {k[len(prefix) :]: v for k, v in state_dict(checkpoint).items() if k.startswith(prefix)}


def load_backbone(backbone: nn.Module, checkpoint: str) -> None:
    """Loads a pretraining checkpoint's backbone into ``backbone``, strictly."""
    load_strict(backbone, backbone_state(checkpoint), str(latest_checkpoint(checkpoint)))


def load_method(checkpoint: str) -> Tuple[nn.Module, DictConfig]:
    """The whole pretrained method (backbone and projector), in eval mode, and its config.

    ``checkpoint`` is a ``.ckpt`` file or a run directory (its newest ``.ckpt``).
    """
    import solo_plugins  # noqa: F401  (registers the plugin's methods)
    from solo.methods import METHODS

    cfg = run_config(checkpoint)
    model = METHODS[cfg.method](cfg)
    load_strict(model, state_dict(checkpoint), str(latest_checkpoint(checkpoint)))
    return model.eval(), cfg


def set_aside_unreadable(directory: str) -> list:
    """Renames every ``.ckpt`` under ``directory`` that torch cannot read (what a kill during
    saving leaves) to ``<name>.corrupt``, so that auto-resume continues from the last good
    checkpoint or restarts the run. Returns the new paths; warns for each."""
    import warnings

    moved = []
    for path in sorted(Path(directory).rglob("*.ckpt")) if os.path.isdir(directory) else []:
        try:
            torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # a truncated zip, a pickle error, an empty file ...
            target = path.with_name(path.name + ".corrupt")
            os.replace(path, target)
            warnings.warn(f"unreadable checkpoint {path} ({type(error).__name__}: {str(error)[:120]}) "
                          f"set aside as {target}", RuntimeWarning)
            moved.append(str(target))
    return moved
