"""A pretraining job for the mid-epoch resume tests, run as a program (Lightning's DDP starts
its other process by running it again): records the sample indexes of every training batch
of every rank, and with ``--signal-at STEP`` sends itself SLURM's warning signal in that
step, where a handler that stands for submitit's (requeue, exit) ends the job.

    python -m tests.resume_driver [--signal-at STEP] RECORD_PREFIX OVERRIDES...
"""

import argparse
import json
import os
import signal
import sys

from lightning.pytorch import Callback

REQUEUED = 3  # the exit status of a job that was signalled and "requeued"


class RecordSamples(Callback):
    def __init__(self, prefix: str):
        self.prefix = prefix

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # a batch trained on
        step = trainer.global_step - 1  # the step that just ended
        with open(f"{self.prefix}.rank{trainer.global_rank}", "a") as f:
            f.write(json.dumps([trainer.current_epoch, step, batch[0].tolist()]) + "\n")


class SignalAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == self.step:
            from solo_plugins.callbacks.requeue import WARNING_SIGNAL

            os.kill(os.getpid(), WARNING_SIGNAL)


def with_callbacks(*callbacks):
    """build_trainer with ``callbacks`` added, for monkeypatching solo_plugins.commands.pretrain."""
    from solo_plugins.commands import _trainer

    def build(cfg, model, subdir, run_id, extra=()):
        return _trainer.build_trainer(cfg, model, subdir, run_id, [*extra, *callbacks])

    return build


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("--signal-at", type=int, default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    import solo_plugins.commands.pretrain as pretrain_module
    from solo_plugins.callbacks.requeue import WARNING_SIGNAL
    from tests.conftest import compose

    callbacks = [RecordSamples(args.record)]
    if args.signal_at is not None:
        callbacks.append(SignalAt(args.signal_at))
        signal.signal(WARNING_SIGNAL, lambda signum, frame: os._exit(REQUEUED))  # submitit's part
    pretrain_module.build_trainer = with_callbacks(*callbacks)
    pretrain_module.pretrain(compose("pretrain", "digits", "dhel.yaml", args.overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
