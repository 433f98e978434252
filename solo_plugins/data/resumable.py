"""A training data order that a run resumed in the middle of an epoch continues exactly.

Lightning 2.1 restores the step counters of a mid-epoch checkpoint but starts the epoch's
data over: the batches before the interruption are seen twice and the rest of the epoch
never (with workers, prefetching can even replay the previous epoch's order). Three pieces
make the order a function of (seed, epoch, position) alone:

- :class:`ResumableSampler` draws each epoch's permutation from its own generator seeded by
  (seed, epoch), shards it over the ranks as ``DistributedSampler`` does (Lightning leaves a
  ``DistributedSampler`` in place), and after :meth:`ResumableSampler.resume` skips the
  samples of the batches already trained on, keeping the epoch's full length so that
  Lightning's count of the epoch's batches stays right.
- :class:`SeededSamples` draws each sample's augmentations from generators seeded by
  (seed, epoch, index): the same crops whichever worker, prefetch depth or restart loads
  them, and the training loop's own random stream untouched by data loading.
- :class:`ResumeDataOrder`, a callback, reads the epoch and the completed batches from the
  checkpoint being restored and hands them to the sampler.
"""

import math
import random
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch import Callback
from torch.utils.data import Dataset, DistributedSampler


def _mix(*values: int) -> int:
    seed = 0x9E3779B97F4A7C15
    for v in values:
        seed = (seed * 6364136223846793005 + int(v) + 1442695040888963407) % (1 << 63)
    return seed


class ResumableSampler(DistributedSampler):
    """Yields ``(epoch, index)`` for :class:`SeededSamples`: this rank's share of the epoch's
    seeded permutation, padded to equal shards as ``DistributedSampler`` pads. The ranks are
    read when iterating, so the sampler can be built before the process group exists."""

    def __init__(self, dataset, *, seed: int, batch_size: int, shuffle: bool = True):
        self.dataset, self.seed, self.batch_size, self.shuffle = dataset, int(seed), int(batch_size), shuffle
        self.drop_last = False
        self.epoch = 0
        self._resume: Optional[Tuple[int, int]] = None  # (epoch, batches already trained on)

    @property
    def num_replicas(self) -> int:  # type: ignore[override]
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def rank(self) -> int:  # type: ignore[override]
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    @property
    def num_samples(self) -> int:  # type: ignore[override]
        return math.ceil(len(self.dataset) / self.num_replicas)

    @property
    def total_size(self) -> int:  # type: ignore[override]
        return self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume(self, epoch: int, batches_done: int) -> None:
        """The next iteration is epoch ``epoch``, of which ``batches_done`` batches were trained."""
        self.epoch, self._resume = int(epoch), (int(epoch), int(batches_done))

    def skipped(self) -> int:
        """This rank's samples skipped in the current epoch (0 unless it is the resumed one)."""
        if self._resume is None or self._resume[0] != self.epoch:
            return 0
        return min(self._resume[1] * self.batch_size, self.num_samples)

    def order(self, epoch: int) -> list:
        """This rank's indices of epoch ``epoch``, in order, none skipped."""
        n = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
            indices = torch.randperm(n, generator=generator).tolist()
        else:
            indices = list(range(n))
        indices += indices[: self.total_size - n]
        return indices[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch = self.epoch
        return iter([(epoch, i) for i in self.order(epoch)[self.skipped():]])

    def __len__(self) -> int:
        return self.num_samples


class SeededSamples(Dataset):
    """``dataset[index]`` with Python's, NumPy's and torch's generators seeded by
    (seed, epoch, index) for the call and restored after it; keys are ``(epoch, index)``."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys):
        """A batch's samples (the DataLoader asks for them together): the generators' states are
        saved and restored once per batch, seeded once per sample (about 20 us)."""
        python, numpy, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            samples = []
            for epoch, index in keys:
                seed = _mix(self.seed, epoch, index)
                random.seed(seed)
                np.random.seed(seed % (1 << 32))
                torch.default_generator.manual_seed(seed)  # the CPU's only: torch.manual_seed would reseed CUDA's
                samples.append(self.dataset[index])
            return samples
        finally:
            random.setstate(python)
            np.random.set_state(numpy)
            torch.set_rng_state(torch_state)


def progress_in_checkpoint(checkpoint: dict) -> Tuple[int, int]:
    """(epoch, batches of it completed) of a Lightning checkpoint: a mid-epoch one counts fewer
    batches than the epoch has; one saved at an epoch's end counts them all."""
    loops = checkpoint.get("loops", {}).get("fit_loop", {})
    done = loops.get("epoch_loop.batch_progress", {}).get("current", {}).get("completed", 0)
    return int(checkpoint.get("epoch", 0)), int(done)


class ResumeDataOrder(Callback):
    """Restoring a checkpoint resumes ``sampler`` at the checkpoint's epoch and batch."""

    def __init__(self, sampler: ResumableSampler):
        self.sampler = sampler

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        epoch, done = progress_in_checkpoint(checkpoint)
        self.sampler.resume(epoch, done)


def mid_epoch_message(loader: str, epoch: int, done: int, total: int) -> str:
    """What resuming from a mid-epoch checkpoint does with a loader that restarts the epoch
    (solo-learn's own, DALI's): the methods warn with it."""
    return (f"resuming in the middle of epoch {epoch} ({done} of {total} batches trained): {loader} restarts "
            f"the epoch's data order, so these {done} batches' samples are seen twice and the epoch's "
            f"last {done} batches never. `solo-plugins pretrain` with data.format image_folder or h5 "
            f"resumes the epoch where it stopped (docs/cluster.md).")
