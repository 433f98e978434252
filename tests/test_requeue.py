"""Preemption without SLURM: the warning signal is deferred to the end of the step it arrives
in, the run is checkpointed there and the handler that was listening before (submitit's, in a
job) is called; the resumed run ends at the uninterrupted run's step; a run resumed from an
end-of-epoch checkpoint ends with exactly the uninterrupted run's weights."""

import glob
import os
import signal

import pytest
import torch
from lightning.pytorch import Callback

pytest.importorskip("solo.methods")

from solo_plugins.callbacks.requeue import WARNING_SIGNAL  # noqa: E402
from solo_plugins.commands import _trainer  # noqa: E402
from solo_plugins.commands.pretrain import pretrain  # noqa: E402
from tests.conftest import compose, digits_overrides  # noqa: E402

QUICK = ["+limit_train_batches=3", "+limit_val_batches=0", "optimizer.batch_size=32", "data.num_workers=0"]


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=False)


class _SignalAt(Callback):
    """Sends the warning signal to this process in the middle of step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), WARNING_SIGNAL)


class _Requeued(SystemExit):
    pass


def _signalled_then_requeued(digits_root, tmp_path, monkeypatch, epochs, step, job_ends=lambda: None, extra=()):
    """Pretrains with the warning signal sent in step ``step``; returns the signal that reached
    the handler listening before (submitit's, which on rank 0 calls checkpoint(), requeues and
    exits), the checkpoints there when it ran, and the final checkpoint of the requeued run."""
    calls = []

    def submitit_handler(signum, frame):
        calls.append((signum, sorted(glob.glob(str(tmp_path / "trained_models" / "dhel" / "*" / "*.ckpt")))))
        raise _Requeued(-1)

    overrides = digits_overrides(digits_root, tmp_path, [f"max_epochs={epochs}", "auto_resume.enabled=True", *QUICK,
                                                         *extra])
    import solo_plugins.commands.pretrain as pretrain_module

    original = pretrain_module.build_trainer
    monkeypatch.setattr("solo_plugins.commands.pretrain.build_trainer",
                        lambda cfg, model, subdir, run_id, extra=(): original(cfg, model, subdir, run_id,
                                                                             [*extra, _SignalAt(step)]))
    previous = signal.signal(WARNING_SIGNAL, submitit_handler)
    try:
        with pytest.raises(_Requeued):
            pretrain(compose("pretrain", "digits", "dhel.yaml", overrides))
    finally:
        signal.signal(WARNING_SIGNAL, previous)
    (signum, checkpoints), = calls
    job_ends()  # what the end of the first job's process ends
    # The requeued job: auto-resume finds the checkpoint
    monkeypatch.setattr("solo_plugins.commands.pretrain.build_trainer", original)
    return signum, checkpoints, _state(pretrain(compose("pretrain", "digits", "dhel.yaml", overrides)))


@pytest.mark.slow
def test_the_warning_signal_checkpoints_at_the_step_end_then_calls_the_previous_handler(
        digits_root, tmp_path, monkeypatch):
    signum, checkpoints, last = _signalled_then_requeued(digits_root, tmp_path, monkeypatch, epochs=3, step=4)
    assert signum == WARNING_SIGNAL
    (saved,) = checkpoints  # the signal's checkpoint replaced the end-of-epoch one
    assert _state(saved)["global_step"] == 5  # the step the signal arrived in was finished first
    assert last["global_step"] == 9 and last["epoch"] == 2  # where an uninterrupted run ends


@pytest.mark.slow
def test_a_signal_in_the_last_step_is_handed_on_when_training_ends(digits_root, tmp_path, monkeypatch):
    """No step follows the last one: the signal is handed on as training ends, after a
    checkpoint at the final step, rather than lost while the job evaluates."""
    signum, checkpoints, last = _signalled_then_requeued(digits_root, tmp_path, monkeypatch, epochs=2, step=5)
    assert signum == WARNING_SIGNAL
    (saved,) = checkpoints
    assert _state(saved)["global_step"] == 6  # the final step: the requeued job only evaluates
    assert last["global_step"] == 6


def test_without_a_listening_handler_the_signal_is_not_caught(digits_root, tmp_path):
    # outside a job nothing listens: the callback leaves the default disposition alone
    from solo_plugins.callbacks.requeue import RequeueOnSignal

    callback = RequeueOnSignal(lambda trainer: None)
    previous = signal.signal(WARNING_SIGNAL, signal.SIG_DFL)
    try:
        callback.on_train_start(None, None)
        assert signal.getsignal(WARNING_SIGNAL) == signal.SIG_DFL and callback.previous is None
    finally:
        signal.signal(WARNING_SIGNAL, previous)


@pytest.mark.slow
def test_a_run_resumed_from_an_end_of_epoch_checkpoint_ends_with_the_uninterrupted_weights(digits_root, tmp_path):
    overrides = digits_overrides(digits_root, tmp_path, ["max_epochs=2", "+checkpoint.keep_prev=True",
                                                         "auto_resume.enabled=True", *QUICK])
    last = pretrain(compose("pretrain", "digits", "infonce.yaml", overrides))
    uninterrupted = _state(last)["state_dict"]
    os.remove(last)  # interrupted after its first epoch: only that epoch's checkpoint is left
    resumed = pretrain(compose("pretrain", "digits", "infonce.yaml", overrides))
    state = _state(resumed)
    assert state["global_step"] == 6
    assert uninterrupted.keys() == state["state_dict"].keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, state["state_dict"][name]), name


@pytest.mark.slow
def test_a_requeued_run_continues_the_same_wandb_run(digits_root, tmp_path, monkeypatch):
    """wandb.init wrapped: the requeued job's logger asks for the first job's run id with
    resume set, and its trainer/global_step goes on from the step the checkpoint holds."""
    import wandb

    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    real_init = wandb.init
    calls, logged = [], []

    def recording_init(*args, **kwargs):
        calls.append({"id": kwargs.get("id"), "resume": kwargs.get("resume")})
        run = real_init(*args, **kwargs)
        calls[-1]["run_id"] = run.id
        real_log = run.log

        def log(data, *a, **k):
            if "trainer/global_step" in data:
                logged.append((len(calls), data["trainer/global_step"]))
            return real_log(data, *a, **k)

        run.log = log
        return run

    monkeypatch.setattr(wandb, "init", recording_init)
    _signalled_then_requeued(digits_root, tmp_path, monkeypatch, 2, 4, job_ends=wandb.finish,
                             extra=["wandb=offline", "+log_every_n_steps=1"])
    first, second = calls
    assert first["id"] is None and second["id"] == first["run_id"] and second["resume"] == "allow"
    steps_first = [s for job, s in logged if job == 1]
    steps_second = [s for job, s in logged if job == 2]
    # the signal came in step 4 (0-based): the first job logged steps 0-4, the second goes on at 5
    assert max(steps_first) == 4 and min(steps_second) == 5, (steps_first, steps_second)
    assert len([n for n in os.listdir(tmp_path / "wandb") if n.startswith("offline-run-")]) == 2
