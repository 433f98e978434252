"""A run requeued in the middle of an epoch resumes that epoch where it stopped (issue 35):
through `solo-plugins pretrain`, in one process and in two gloo DDP processes, with 0 and 2
loader workers, every sample of the interrupted epoch is trained on exactly once, in the
uninterrupted run's order; with 0 workers the final weights are the uninterrupted run's.

Lightning 2.1 alone restarts the epoch's data: the batches before the signal twice, the
rest never (and with workers the previous epoch's order)."""

import glob
import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("solo.methods")

from solo_plugins.data.resumable import ResumableSampler, SeededSamples  # noqa: E402
from tests.conftest import REPO, compose, digits_overrides  # noqa: E402
from tests.resume_driver import REQUEUED, RecordSamples, SignalAt, with_callbacks  # noqa: E402

BATCHES, EPOCHS, SIGNAL_AT = 4, 2, 5  # the signal comes in epoch 1's second batch (global step 5)


def _overrides(digits_root, out, workers):
    return digits_overrides(digits_root, out, [
        f"max_epochs={EPOCHS}", f"+limit_train_batches={BATCHES}", "+limit_val_batches=0", "optimizer.batch_size=16",
        f"data.num_workers={workers}", "auto_resume.enabled=True"])


def _records(prefix):
    """{rank: [(epoch, step, indexes)]}, in the order the batches were trained."""
    return {int(path.rsplit("rank", 1)[1]): [tuple(json.loads(line)) for line in open(path)]
            for path in glob.glob(f"{prefix}.rank*")}


def _epoch(records, epoch):
    return [(step, indexes) for e, step, indexes in records if e == epoch]


def _final_weights(out):
    (last,) = sorted(glob.glob(str(out / "trained_models" / "dhel" / "*" / "*.ckpt")), key=os.path.getmtime)[-1:]
    return torch.load(last, map_location="cpu", weights_only=False)


def _check(uninterrupted, interrupted, resumed):
    """Per rank: the interrupted epoch's batches over both jobs are the uninterrupted run's,
    step for step; nothing before the checkpoint's step is trained again."""
    assert uninterrupted.keys() == interrupted.keys() == resumed.keys()
    for rank in uninterrupted:
        want = _epoch(uninterrupted[rank], 1)
        first, second = _epoch(interrupted[rank], 1), _epoch(resumed[rank], 1)
        assert [s for s, _ in first] == [4, 5] and [s for s, _ in second] == [6, 7], (first, second)
        assert first + second == want, rank
        seen = [i for _, indexes in first + second for i in indexes]
        assert len(seen) == len(set(seen)) == BATCHES * 16


# ----------------------------------------------------------------- one process, in this one


def _pretrain_in_process(digits_root, out, workers, monkeypatch, signal_at=None):
    from solo_plugins.callbacks.requeue import WARNING_SIGNAL
    from solo_plugins.commands.pretrain import pretrain

    prefix = str(out / "samples")
    callbacks = [RecordSamples(prefix)] + ([SignalAt(signal_at)] if signal_at is not None else [])
    monkeypatch.setattr("solo_plugins.commands.pretrain.build_trainer", with_callbacks(*callbacks))

    class Requeued(Exception):
        pass

    def requeue(signum, frame):
        raise Requeued()

    import signal

    previous = signal.signal(WARNING_SIGNAL, requeue)
    try:
        pretrain(compose("pretrain", "digits", "dhel.yaml", _overrides(digits_root, out, workers)))
    except Requeued:
        pass
    finally:
        signal.signal(WARNING_SIGNAL, previous)
    records = _records(prefix)
    for path in glob.glob(f"{prefix}.rank*"):
        os.remove(path)
    return records


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_one_process_resumes_the_interrupted_epoch_where_it_stopped(digits_root, tmp_path, monkeypatch, workers):
    uninterrupted = _pretrain_in_process(digits_root, tmp_path / "whole", workers, monkeypatch)
    interrupted = _pretrain_in_process(digits_root, tmp_path / "job", workers, monkeypatch, signal_at=SIGNAL_AT)
    resumed = _pretrain_in_process(digits_root, tmp_path / "job", workers, monkeypatch)
    _check(uninterrupted, interrupted, resumed)
    if workers == 0:
        whole, job = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "job")
        assert job["global_step"] == whole["global_step"] == EPOCHS * BATCHES
        for name, tensor in whole["state_dict"].items():
            assert torch.equal(tensor, job["state_dict"][name]), name


# --------------------------------------------------------------- two gloo DDP processes


def _pretrain_ddp(digits_root, out, workers, signal_at=None):
    prefix = str(out / "samples")
    command = [sys.executable, "-m", "tests.resume_driver",
               *(["--signal-at", str(signal_at)] if signal_at is not None else []), prefix,
               *_overrides(digits_root, out, workers), "devices=[0,1]", "strategy=ddp", "accelerator=cpu"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == (REQUEUED if signal_at is not None else 0), run.stderr[-3000:]
    records = _records(prefix)
    for path in glob.glob(f"{prefix}.rank*"):
        os.remove(path)
    return records


@pytest.fixture(scope="module")
def uninterrupted_ddp(digits_root, tmp_path_factory):
    """The run without a signal, with 0 workers: the order of every rank's batches is the
    sampler's, in the main process, whatever the number of workers."""
    out = tmp_path_factory.mktemp("whole")
    return _pretrain_ddp(digits_root, out, 0), out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_two_ddp_processes_resume_the_interrupted_epoch_where_it_stopped(digits_root, tmp_path, workers,
                                                                        uninterrupted_ddp):
    uninterrupted, whole_out = uninterrupted_ddp
    interrupted = _pretrain_ddp(digits_root, tmp_path / "job", workers, signal_at=SIGNAL_AT)
    resumed = _pretrain_ddp(digits_root, tmp_path / "job", workers)
    assert sorted(uninterrupted) == [0, 1]
    _check(uninterrupted, interrupted, resumed)
    both = [i for rank in (0, 1) for _, indexes in _epoch(uninterrupted[rank], 1) for i in indexes]
    assert len(both) == len(set(both))  # the ranks' shards do not overlap
    if workers == 0:
        whole, job = _final_weights(whole_out), _final_weights(tmp_path / "job")
        for name, tensor in whole["state_dict"].items():
            assert torch.equal(tensor, job["state_dict"][name]), name


# ------------------------------------------------------------------ the pieces, directly


def test_the_sampler_skips_the_trained_batches_and_keeps_the_epoch_s_length():
    sampler = ResumableSampler(list(range(50)), seed=3, batch_size=4)
    sampler.set_epoch(2)
    whole = list(sampler)
    sampler.resume(2, batches_done=3)
    assert len(sampler) == 50 and list(sampler) == whole[12:]
    sampler.set_epoch(3)  # the next epoch is whole again
    assert len(list(sampler)) == 50 and [i for _, i in sampler] != [i for _, i in whole]
    assert sorted(i for _, i in whole) == list(range(50)) and {e for e, _ in whole} == {2}


def test_a_sample_s_augmentation_depends_on_seed_epoch_and_index_only():
    class Noisy:
        def __len__(self):
            return 10

        def __getitem__(self, index):
            return torch.rand(3)

    samples = SeededSamples(Noisy(), seed=0)
    torch.manual_seed(123)
    first = samples[(1, 4)]
    stream = torch.rand(2)
    torch.manual_seed(999)
    assert torch.equal(samples[(1, 4)], first) and not torch.equal(samples[(2, 4)], first)
    torch.manual_seed(123)
    samples[(5, 5)]
    assert torch.equal(torch.rand(2), stream)  # the caller's random stream is left as it was


def test_the_methods_warn_when_their_loader_restarts_an_interrupted_epoch():
    """solo-learn's main_pretrain.py (its own loader) and DALI cannot resume inside an epoch:
    resumed from a mid-epoch checkpoint, the method says what happens to the data."""
    import types
    import warnings

    from torch.utils.data import DataLoader

    from tests.test_methods import CLASSES, base_cfg

    mid_epoch = {"epoch": 1, "loops": {"fit_loop": {"epoch_loop.batch_progress": {"current": {"completed": 2}}}}}
    end_of_epoch = {"epoch": 1, "loops": {"fit_loop": {"epoch_loop.batch_progress": {"current": {"completed": 4}}}}}
    solo_loader = DataLoader(list(range(64)), batch_size=16, shuffle=True, drop_last=True)
    ours = DataLoader(SeededSamples(list(range(64)), 0), batch_size=16, drop_last=True,
                      sampler=ResumableSampler(list(range(64)), seed=0, batch_size=16))
    for checkpoint, loader, warned in [(mid_epoch, solo_loader, True), (end_of_epoch, solo_loader, False),
                                       (mid_epoch, ours, False)]:
        model = CLASSES["dhel"](base_cfg("dhel"))
        model.on_load_checkpoint(checkpoint)
        model._trainer = types.SimpleNamespace(train_dataloader=loader, num_training_batches=4)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.on_train_start()
        model._trainer = None
        messages = [str(w.message) for w in caught if "middle of epoch" in str(w.message)]
        assert len(messages) == int(warned), (checkpoint, messages)
        if warned:
            assert "2 of 4 batches trained" in messages[0] and "seen twice" in messages[0]
