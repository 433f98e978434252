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


SCAN_FILE = ".checkpoint-scan.json"
SCAN_WAIT_S = 600.0


def launcher_rank() -> int:
    """This process's rank as its launcher says, before any process group exists: torchrun's
    ``RANK``, srun's ``SLURM_PROCID``, or Lightning's ``LOCAL_RANK`` for the processes its DDP
    starts; 0 alone."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def readable_checkpoint(path) -> bool:
    """A cheap integrity check of a Lightning checkpoint (torch's zip format): the zip's
    central directory, which sits at the end of the file and is the first thing a kill during
    saving cuts off, and the pickle of the checkpoint's structure with its CRC. The tensors'
    data are not read."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1:
                return False
            archive.read(pickles[0])  # checks its CRC
        return True
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError):
        return False


def _checkpoints(directory: str) -> Dict[str, Tuple[int, int]]:
    """{path relative to directory: (size, mtime_ns)} of every ``.ckpt`` outside ``stale-*/``
    (an earlier config's run, set aside by the sweep: not this run's to touch)."""
    found = {}
    for path in Path(directory).rglob("*.ckpt") if os.path.isdir(directory) else []:
        relative = path.relative_to(directory)
        if any(part.startswith("stale-") for part in relative.parts[:-1]):
            continue
        stat = path.stat()
        found[str(relative)] = (stat.st_size, stat.st_mtime_ns)
    return found


def _scanned(directory: str) -> Dict:
    try:
        with open(os.path.join(directory, SCAN_FILE)) as f:
            return {k: tuple(v) for k, v in json.load(f).items()}
    except (OSError, ValueError, AttributeError):
        return None


def set_aside_unreadable(directory: str, rank: int = None, timeout: float = None) -> list:
    """Renames every ``.ckpt`` under ``directory`` (``stale-*/`` left alone) that fails
    :func:`readable_checkpoint` (what a kill during saving leaves) to ``<name>.corrupt``, so
    that auto-resume continues from the last good checkpoint or restarts the run. Returns the
    new paths; warns for each.

    One process scans: rank 0 (``rank``, default :func:`launcher_rank`). It then records the
    checkpoints it found good in ``.checkpoint-scan.json``; the others wait until that record
    matches the checkpoints there (name, size, time), so that none of them resumes from a file
    being set aside, and raise after ``timeout`` seconds (default SCAN_WAIT_S)."""
    import time
    import warnings

    rank = launcher_rank() if rank is None else rank
    if rank != 0:
        timeout = SCAN_WAIT_S if timeout is None else timeout
        deadline = time.time() + timeout
        while _scanned(directory) != _checkpoints(directory):
            if time.time() >= deadline:
                raise RuntimeError(
                    f"{directory}: process {rank} waited {timeout:.0f} s for rank 0 to check the checkpoints "
                    f"there ({SCAN_FILE} does not list the .ckpt files present); check that rank 0 started "
                    f"and shares this folder.")
            time.sleep(0.2)
        return []
    moved = []
    for relative in sorted(_checkpoints(directory)):
        path = Path(directory) / relative
        if not readable_checkpoint(path):
            target = path.with_name(path.name + ".corrupt")
            os.replace(path, target)
            warnings.warn(f"unreadable checkpoint {path} set aside as {target}", RuntimeWarning)
            moved.append(str(target))
    os.makedirs(directory, exist_ok=True)  # a new run's too: the others wait for this record
    tmp = os.path.join(directory, f".{SCAN_FILE}.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(_checkpoints(directory), f)
    os.replace(tmp, os.path.join(directory, SCAN_FILE))
    return moved
