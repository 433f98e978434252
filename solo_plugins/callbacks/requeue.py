"""Preemption and time limits: what a training run does when SLURM warns it.

Inside a submitit job, SLURM's warning signal (``USR2``; submitit's sbatch scripts ask for it
with ``--signal=USR2@90``) is handled by submitit: it tells a time limit from a preemption,
counts time limits against ``max_num_timeout``, asks the submitted callable for its
``checkpoint()`` and requeues the job. Lightning's own auto-requeue stays out of the way
there (it installs no handler on a signal that already has one). What submitit cannot do is
save a Lightning model at a clean point, so :class:`RequeueOnSignal` defers submitit's
handler to the start of the training step after the one the signal arrives in: the ranks
agree that it came (one all-reduce of a flag per step, and only inside a submitit job), each
saves the checkpoint there (solo-learn's ``Checkpointer``, which its auto-resume finds
in the requeued job), then submitit's handler runs. Outside submitit it does nothing.

:class:`RandomState` keeps the random generators in the checkpoint, so that a run resumed
from an end-of-epoch checkpoint draws the same augmentations and data order as one that was
never stopped.
"""

import random
import signal
import sys
from typing import Callable, Optional

import numpy as np
import torch
from lightning.pytorch import Callback, Trainer

from solo_plugins.signals import WARNING_SIGNAL, DeferredSignal



class RequeueOnSignal(Callback):
    """Saves with ``save(trainer)`` once the step in which ``signum`` arrived is complete, then
    hands the signal to the handler that was there before (submitit's)."""

    def __init__(self, save: Callable[[Trainer], None], signum: int = WARNING_SIGNAL):
        self.save = save
        self.warning = DeferredSignal(signum)

    @property
    def previous(self) -> Optional[Callable]:
        return self.warning.previous

    def on_train_start(self, trainer: Trainer, pl_module) -> None:
        self.warning.received = False
        self.warning.__enter__()  # holds the handler only inside a job that listens for the signal

    def on_train_batch_start(self, trainer: Trainer, pl_module, batch, batch_idx) -> None:
        # Before the next step, not after the last one: there Lightning has not yet counted the
        # batch as completed, and a resume would train it twice.
        self._hand_on_if_received(trainer)

    def on_train_end(self, trainer: Trainer, pl_module) -> None:
        # A signal from the last step or the last validation has no next step to wait for: the
        # job would otherwise be killed in its evaluation instead of requeued.
        self._hand_on_if_received(trainer)
        self.warning.__exit__()

    def _hand_on_if_received(self, trainer: Trainer) -> None:
        if self.warning.previous is None:
            return
        # every rank must take the same branch: save_checkpoint is collective under DDP
        if not trainer.strategy.reduce_boolean_decision(self.warning.received, all=False):
            return
        # one write, as the ranks share the job's log (see pretrain)
        sys.stdout.write(f"signal {signal.Signals(self.warning.signum).name}: checkpointing at step "
                         f"{trainer.global_step}\n")
        sys.stdout.flush()
        self.save(trainer)
        self.warning.hand_on()  # submitit: requeue and exit on rank 0; a no-op on the others


class RandomState(Callback):
    """Python's, NumPy's and torch's generators, saved with each checkpoint and restored as
    the resumed run's first epoch starts: not when the checkpoint is loaded, because what
    runs between the two (solo's checkpointer names its folder with ``random``) would move
    them on."""

    def __init__(self):
        self.pending = None
        self.after_last_batch = None

    def on_train_batch_end(self, trainer: Trainer, pl_module, outputs, batch, batch_idx) -> None:
        # what a checkpoint saves: the state as the last completed batch left it, not after
        # the loader has fetched ahead (a prefetch consumes the generators of the main process)
        self.after_last_batch = _states()

    def on_save_checkpoint(self, trainer: Trainer, pl_module, checkpoint) -> None:
        checkpoint["random_state"] = self.after_last_batch if self.after_last_batch is not None else _states()

    def on_load_checkpoint(self, trainer: Trainer, pl_module, checkpoint) -> None:
        self.pending = checkpoint.get("random_state")  # None: a checkpoint from before this callback

    def on_train_epoch_start(self, trainer: Trainer, pl_module) -> None:
        state, self.pending = self.pending, None
        if state is None:
            return
        random.setstate(state["python"])
        np.random.set_state(_numpy_from(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


def _states():
    return {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


# plain tensors and numbers, which torch.load(weights_only=True) reads back
def _numpy_state():
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _numpy_from(state):
    keys = state["keys"].numpy().astype(np.uint32)
    return state["name"], keys, state["pos"], state["has_gauss"], state["cached"]
