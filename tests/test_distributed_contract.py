"""The distributed contract of the losses and the methods (issue 35): no collective unless
asked for, so a lone rank never waits; ragged shards gathered exactly inside the methods."""

import datetime
import types
import warnings

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from solo_plugins.distributed import resolve_gather
from solo_plugins.losses import (
    DCLLoss,
    DCLWLoss,
    DHELLoss,
    InfoNCELoss,
    KCLLoss,
    dcl_loss_func,
    dhel_loss_func,
    dhel_loss_terms,
    infonce_loss_func,
    kcl_loss_func,
    mv_dhel_loss_func,
    mv_infonce_loss_func,
    mv_kcl_loss_func,
)
from tests.gloo import run_on_two_ranks

# Every loss in its functional, terms, module and multi-view forms: (z1, z2, gather) -> scalar.
FORMS = {
    "infonce": lambda a, b, g: infonce_loss_func(a, b, gather_distributed=g),
    "dcl": lambda a, b, g: dcl_loss_func(a, b, gather_distributed=g),
    "dclw": lambda a, b, g: dcl_loss_func(a, b, weight_sigma=0.5, gather_distributed=g),
    "dhel": lambda a, b, g: dhel_loss_func(a, b, gather_distributed=g),
    "dhel_terms": lambda a, b, g: dhel_loss_terms(a, b, gather_distributed=g).uniformity,
    "kcl": lambda a, b, g: kcl_loss_func(a, b, gather_distributed=g),
    "kcl_riesz": lambda a, b, g: kcl_loss_func(a, b, kernel="riesz", s=-1.0, gather_distributed=g),
    "InfoNCELoss": lambda a, b, g: InfoNCELoss(gather_distributed=g)(a, b),
    "DCLLoss": lambda a, b, g: DCLLoss(gather_distributed=g)(a, b),
    "DCLWLoss": lambda a, b, g: DCLWLoss(gather_distributed=g)(a, b),
    "DHELLoss": lambda a, b, g: DHELLoss(gather_distributed=g)(a, b),
    "KCLLoss": lambda a, b, g: KCLLoss(gather_distributed=g)(a, b),
    "mv_infonce": lambda a, b, g: mv_infonce_loss_func([a, b, a.flip(1)], gather_distributed=g),
    "mv_dhel": lambda a, b, g: mv_dhel_loss_func([a, b, a.flip(1)], gather_distributed=g),
    "mv_kcl": lambda a, b, g: mv_kcl_loss_func([a, b, a.flip(1)], gather_distributed=g),
}


def _pair(n, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=gen, dtype=torch.float64), torch.randn(n, 6, generator=gen, dtype=torch.float64)


def _init(rank, world, init_file, seconds):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=seconds))


def _lone_rank_worker(rank, world, init_file, sizes, out_file):
    """Rank 0 computes every loss alone while rank 1 waits at a barrier; 0.3 gathered here and
    rank 0 waited for a rank that never came (a timeout error)."""
    _init(rank, world, init_file, 20)
    try:
        if rank == 0:
            a, b = _pair(sizes[0], seed=0)
            results = {}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for name, form in FORMS.items():
                    results[name] = form(a, b, False)
                for name, form in FORMS.items():
                    results[f"{name} (not passed)"] = form(a, b, None)
            results["warnings"] = [str(w.message) for w in caught if "gather_distributed" in str(w.message)]
            torch.save(results, f"{out_file}.0")
        else:
            torch.save({}, f"{out_file}.1")
        dist.barrier()  # rank 1 waits here; every rank done before any tears gloo down
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_a_loss_called_by_one_rank_alone_returns_that_rank_s_loss_at_once():
    ranks = run_on_two_ranks(_lone_rank_worker, [5, 5])
    got = ranks[0]
    a, b = _pair(5, seed=0)
    for name, form in FORMS.items():
        want = form(a, b, True)  # one process: nothing to gather
        torch.testing.assert_close(got[name], want, rtol=1e-12, atol=1e-12, msg=name)
        torch.testing.assert_close(got[f"{name} (not passed)"], want, rtol=1e-12, atol=1e-12, msg=name)
    # not passed in a group of two: one warning for the whole process, naming the option
    assert len(got["warnings"]) == 1, got["warnings"]
    assert "gather_distributed=True" in got["warnings"][0]


def test_gather_distributed_takes_true_false_or_none():
    assert resolve_gather(True) is True and resolve_gather(False) is False and resolve_gather(None) is False
    with pytest.raises(ValueError, match="gather_distributed must be True, False or None"):
        dhel_loss_func(*_pair(4, 0), gather_distributed="yes")


def test_one_process_without_a_group_never_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for form in FORMS.values():
            form(*_pair(4, 0), None)


# ----------------------------------------------------------- ragged shards in the methods

solo_methods = pytest.importorskip("solo.methods")


def _equal_shards_for(loader):
    from solo_plugins.methods._contrastive import loaders_give_equal_shards

    return loaders_give_equal_shards(loader)


def test_the_training_loader_decides_whether_shards_are_equal():
    data = list(range(10))
    assert _equal_shards_for(DataLoader(data, batch_size=4, drop_last=True))
    assert not _equal_shards_for(DataLoader(data, batch_size=4))
    assert _equal_shards_for({"a": DataLoader(data, batch_size=4, drop_last=True)})
    assert not _equal_shards_for([DataLoader(data, batch_size=4, drop_last=True), DataLoader(data, batch_size=3)])
    sampler = torch.utils.data.BatchSampler(range(10), batch_size=4, drop_last=True)
    assert _equal_shards_for(DataLoader(data, batch_sampler=sampler))
    dali_like = types.SimpleNamespace(_last_batch_policy=types.SimpleNamespace(name="DROP"))
    assert _equal_shards_for(dali_like)
    assert not _equal_shards_for(types.SimpleNamespace(_last_batch_policy=types.SimpleNamespace(name="PARTIAL")))
    assert not _equal_shards_for(object())


def _method():
    from tests.test_methods import CLASSES, base_cfg

    torch.manual_seed(0)
    cfg = base_cfg("dhel", backbone="small_cnn", crop=16, batch_size=4)
    cfg.backbone.kwargs = {"width": 4}
    # eval mode: batch norm uses its running statistics, so each sample's projection does
    # not depend on which rank holds the others and one process is an exact reference
    return CLASSES["dhel"](cfg).double().eval()


def _steps(model, loader):
    """(contrastive loss, gradients of backbone and projector) per training_step."""
    seen = []
    terms = model.contrastive_terms

    def recording(z1, z2):
        parts = terms(z1, z2)
        seen.append(parts.loss.detach())
        return parts

    model.contrastive_terms = recording
    trainable = list(model.backbone.parameters()) + list(model.projector.parameters())
    grads = []
    for step, (idx, views, y) in enumerate(loader):
        model.zero_grad()
        model.training_step([idx, [v.double() for v in views], y], step).backward()
        grads.append([p.grad.clone() for p in trainable])
    return seen, grads


def _loader(rows):
    from tests.test_methods import FakeViews

    return DataLoader(Subset(FakeViews(11, size=16), rows), batch_size=4, drop_last=False)


def _ragged_worker(rank, world, init_file, sizes, out_file):
    """Rank 0 holds 6 samples and rank 1 holds 5, in batches of 4: the last step is 2 rows
    against 1, a user's loader without drop_last. Gradients averaged over ranks as DDP does."""
    _init(rank, world, init_file, 60)
    try:
        model = _method()
        start = sum(sizes[:rank])
        loader = _loader(list(range(start, start + sizes[rank])))
        model._trainer = types.SimpleNamespace(train_dataloader=loader)  # what on_train_start reads
        model.on_train_start()
        model._trainer = None
        losses, grads = _steps(model, loader)
        for step in grads:
            for g in step:
                dist.all_reduce(g)
                g /= world
        for i, loss in enumerate(losses):
            dist.all_reduce(loss)
            losses[i] = loss / world
        torch.save({"equal": model._equal_shards, "losses": losses, "grads": grads}, f"{out_file}.{rank}")
        dist.barrier()  # every rank done with its collectives before any tears gloo down
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_methods_gather_a_ragged_last_batch_exactly_on_two_ranks():
    sizes = [6, 5]
    ranks = run_on_two_ranks(_ragged_worker, sizes)
    assert ranks[0]["equal"] is False
    model = _method()
    # one process holding, at each step, the rows both ranks held
    rows = [[0, 1, 2, 3, 6, 7, 8, 9], [4, 5, 10]]
    for step, step_rows in enumerate(rows):
        (want_loss,), (want_grads,) = _steps(model, _loader_at(step_rows))
        torch.testing.assert_close(ranks[0]["losses"][step], want_loss, rtol=1e-10, atol=1e-12)
        for got, want in zip(ranks[0]["grads"][step], want_grads):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-11)


def _loader_at(rows):
    from tests.test_methods import FakeViews

    return DataLoader(Subset(FakeViews(11, size=16), rows), batch_size=len(rows))


# ------------------------------------------------- the checkpoint scan, by one process


def _scan_worker(rank, directory, out):
    import os

    os.environ["RANK"] = str(rank)
    from solo_plugins.checkpoints import set_aside_unreadable

    try:
        result = ("ok", set_aside_unreadable(directory, timeout=60))
    except Exception as error:  # reported to the test
        result = ("error", repr(error))
    torch.save(result, f"{out}.{rank}")


def _checkpoint_folder(tmp_path):
    folder = tmp_path / "run"
    (folder / "stale-abc").mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.randn(64, 64)}, "global_step": 3}, folder / "epoch=0.ckpt")
    good = (folder / "epoch=0.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(good[: len(good) // 2])  # what a kill while saving leaves
    (folder / "stale-abc" / "old.ckpt").write_bytes(good[:100])  # an earlier config's: not ours
    return folder, good


@pytest.mark.slow
def test_one_process_scans_the_checkpoints_and_the_others_wait_for_it(tmp_path):
    import multiprocessing
    import time

    folder, good = _checkpoint_folder(tmp_path)
    context = multiprocessing.get_context("spawn")
    out = str(tmp_path / "result")
    waiting = context.Process(target=_scan_worker, args=(1, str(folder), out))
    waiting.start()
    time.sleep(2.0)  # rank 1 is waiting before rank 0 starts
    assert not (folder / "last.ckpt.corrupt").exists()
    scanning = context.Process(target=_scan_worker, args=(0, str(folder), out))
    scanning.start()
    for process in (scanning, waiting):
        process.join(120)
        assert process.exitcode == 0
    assert torch.load(f"{out}.0") == ("ok", [str(folder / "last.ckpt.corrupt")])
    assert torch.load(f"{out}.1") == ("ok", [])
    assert (folder / "epoch=0.ckpt").read_bytes() == good  # the good one untouched
    assert (folder / "stale-abc" / "old.ckpt").exists()  # stale-*/ left alone
    assert not (folder / "stale-abc" / "old.ckpt.corrupt").exists()


def test_a_process_whose_rank_0_never_scans_raises(tmp_path):
    from solo_plugins.checkpoints import set_aside_unreadable

    folder, _ = _checkpoint_folder(tmp_path)
    with pytest.raises(RuntimeError, match="waited 0 s for rank 0 to check the checkpoints"):
        set_aside_unreadable(str(folder), rank=1, timeout=0.3)


def test_the_integrity_check_reads_the_structure_not_the_tensors(tmp_path):
    from solo_plugins.checkpoints import readable_checkpoint

    folder, good = _checkpoint_folder(tmp_path)
    assert readable_checkpoint(folder / "epoch=0.ckpt")
    assert not readable_checkpoint(folder / "last.ckpt")
    (folder / "empty.ckpt").write_bytes(b"")
    assert not readable_checkpoint(folder / "empty.ckpt")
    # a flipped byte inside the pickle of the structure fails its CRC
    start = good.index(b"data.pkl") + len(b"data.pkl")
    damaged = bytearray(good)
    damaged[start + 40] ^= 0xFF
    (folder / "damaged.ckpt").write_bytes(bytes(damaged))
    assert not readable_checkpoint(folder / "damaged.ckpt")


def test_a_new_run_s_missing_folder_is_scanned_too(tmp_path):
    """A run that has saved nothing yet: rank 0 records an empty scan, so the others go on
    at once instead of waiting for a record that would never come."""
    from solo_plugins.checkpoints import set_aside_unreadable

    folder = str(tmp_path / "new-run" / "dhel")
    assert set_aside_unreadable(folder, rank=0) == []
    assert set_aside_unreadable(folder, rank=1, timeout=0.5) == []
