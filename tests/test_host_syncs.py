"""No host-device sync in the losses and the training step: every op they dispatch is logged
(``HostSyncLog``) on CPU and on ``meta`` inputs; a read of a device value
(``aten::_local_scalar_dense``) or a tensor made of host data fails the test."""

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from solo_plugins.device import HostSyncLog
from solo_plugins.distributed import equal_shards
from solo_plugins.losses import (
    dcl_loss_func,
    dhel_loss_func,
    infonce_loss_func,
    kcl_loss_func,
    mv_dhel_loss_func,
    mv_infonce_loss_func,
    mv_kcl_loss_func,
)
from solo_plugins.losses.kcl import KERNELS
from tests.gloo import run_on_two_ranks

LOSSES = {
    "infonce": lambda a, b: infonce_loss_func(a, b, gather_distributed=True, temperature=0.2),
    "dhel": lambda a, b: dhel_loss_func(a, b, gather_distributed=True, temperature=0.3),
    "dhel_no_augs": lambda a, b: dhel_loss_func(a, b, gather_distributed=True, temperature=0.3, include_augs=False),
    "dcl": lambda a, b: dcl_loss_func(a, b, gather_distributed=True, temperature=0.1),
    "dclw": lambda a, b: dcl_loss_func(a, b, gather_distributed=True, temperature=0.1, weight_sigma=0.5),
    "dclw_grad": lambda a, b: dcl_loss_func(a, b, gather_distributed=True, temperature=0.1, weight_sigma=0.5, weight_grad=True),
    **{f"kcl_{k}": (lambda a, b, k=k: kcl_loss_func(a, b, gather_distributed=True, kernel=k, **({"s": -1.0} if "riesz" in k else {"t": 2.0}))) for k in KERNELS},
    "mv_dhel": lambda a, b: mv_dhel_loss_func([a, b, 2 * a], gather_distributed=True),
    "mv_infonce": lambda a, b: mv_infonce_loss_func([a, b, 2 * a], gather_distributed=True),
    "mv_kcl_imq": lambda a, b: mv_kcl_loss_func([a, b, 2 * a], gather_distributed=True, kernel="imq", t=1.0),
    "mv_kcl_riesz": lambda a, b: mv_kcl_loss_func([a, b, 2 * a], gather_distributed=True, kernel="riesz", s=-1.0),
    # the tiled path (chunk_size): rows in tiles, recomputed in backward
    "infonce_tiled": lambda a, b: infonce_loss_func(a, b, gather_distributed=True, temperature=0.2, chunk_size=4),
    "dclw_tiled": lambda a, b: dcl_loss_func(a, b, gather_distributed=True, temperature=0.1, weight_sigma=0.5, chunk_size=4),
    "dhel_tiled": lambda a, b: dhel_loss_func(a, b, gather_distributed=True, temperature=0.3, chunk_size=4),
    "kcl_imq_tiled": lambda a, b: kcl_loss_func(a, b, gather_distributed=True, kernel="imq", t=1.0, chunk_size=4),
    "kcl_riesz_tiled": lambda a, b: kcl_loss_func(a, b, gather_distributed=True, kernel="riesz", s=-1.0, chunk_size=4),
    "mv_infonce_tiled": lambda a, b: mv_infonce_loss_func([a, b, 2 * a], gather_distributed=True, chunk_size=4),
}


def _inputs(device, dtype=torch.float32, n=6, d=5):
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, d, generator=gen, dtype=dtype).to(device).requires_grad_() for _ in range(2))
    return a, b


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_forward_and_backward_issue_no_host_sync(name, device):
    for dtype in (torch.float32, torch.bfloat16):
        a, b = _inputs(device, dtype)
        with HostSyncLog() as log:
            LOSSES[name](a, b).backward()
        assert len(log.ops) > 20
        assert not log.problems(), f"{name} ({dtype}): {log.problems()}"


def test_the_log_catches_each_kind_of_sync():
    x = torch.randn(4, 4, device="meta")
    with HostSyncLog() as log:
        x.sum().item()
    assert log.syncs
    for build in (lambda t: t.new_tensor(2.0), lambda t: t.__setitem__((0, 1), float("-inf"))):
        y = torch.zeros(4, 4)
        with HostSyncLog() as log:
            build(y)
        assert log.host_copies
    with HostSyncLog() as log:
        torch.zeros(3, device="meta").add_(torch.ones(3))
    assert log.host_copies and "CPU tensor" in log.host_copies[0]


# The training step of every method, on CPU and on the meta device (model and batch moved
# there): solo's BaseMethod step (backbone, online classifier) and the method's loss.
solo_methods = pytest.importorskip("solo.methods")


def _step_problems(name, device, crops=2, **kwargs):
    from tests.test_methods import CLASSES, FakeViews, base_cfg

    cfg = base_cfg(name, **kwargs)
    if crops != 2:  # 2 large + 2 small crops: the multi-view loss
        cfg.data.num_small_crops = crops - 2
        if name == "infonce":
            cfg.method_kwargs.multiview = True
        cfg.augmentations = [{"crop_size": 32, "num_crops": 2}, {"crop_size": 16, "num_crops": crops - 2}]
    model = CLASSES[name](cfg).to(device)
    if crops == 2:
        idx, views, y = next(iter(DataLoader(FakeViews(4), batch_size=4)))
    else:
        idx, y = torch.arange(4), torch.arange(4)
        views = [torch.randn(4, 3, 32, 32) for _ in range(2)] + [torch.randn(4, 3, 16, 16) for _ in range(2)]
    batch = [idx.to(device), [v.to(device) for v in views], y.to(device)]
    with HostSyncLog() as log:
        model.training_step(batch, 0).backward()
    return log


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize(
    "name,kwargs",
    [("infonce", {}), ("dhel", {}), ("dcl", {}), ("dclw", {}), ("kcl", {})]
    + [("kcl", {"kernel": k, **({"s": -1.0} if "riesz" in k else {"t": 1.0})}) for k in KERNELS if k != "gaussian"],
)
def test_training_step_issues_no_host_sync(name, kwargs, device):
    log = _step_problems(name, device, **kwargs)
    assert not log.problems(), log.problems()


@pytest.mark.parametrize("name", ["infonce", "dhel", "kcl"])
def test_multicrop_training_step_issues_no_host_sync(name):
    log = _step_problems(name, "meta", crops=4)
    assert not log.problems(), log.problems()


# Under torch.distributed (two gloo processes): no sync with equal shards inside
# equal_shards() (what the methods use), exactly one per loss call with uneven shards.


def _worker(rank, world, init_file, sizes, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        gen = torch.Generator().manual_seed(0)
        a_all = torch.randn(sum(sizes), 5, generator=gen, dtype=torch.float64)
        b_all = torch.randn(sum(sizes), 5, generator=gen, dtype=torch.float64)
        start = sum(sizes[:rank])
        results = {}
        for name, loss_fn in LOSSES.items():
            a = a_all[start : start + sizes[rank]].clone().requires_grad_()
            b = b_all[start : start + sizes[rank]].clone().requires_grad_()
            with HostSyncLog() as log:
                if sizes[0] == sizes[1]:
                    with equal_shards():
                        loss = loss_fn(a, b)
                else:
                    loss = loss_fn(a, b)
                loss.backward()
            results[name] = (len(log.syncs), len(log.host_copies), loss.detach(), a.grad, b.grad)
        torch.save(results, f"{out_file}.{rank}")
        dist.barrier()  # every rank done with its collectives before any tears gloo down
    finally:
        dist.destroy_process_group()


def _single_process(loss_fn, sizes):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(sum(sizes), 5, generator=gen, dtype=torch.float64).requires_grad_()
    b = torch.randn(sum(sizes), 5, generator=gen, dtype=torch.float64).requires_grad_()
    loss = loss_fn(a, b)
    loss.backward()
    return loss.detach(), a.grad, b.grad


@pytest.mark.slow
@pytest.mark.parametrize("sizes", [(4, 4), (3, 5)], ids=["equal", "uneven"])
def test_distributed_losses_sync_only_for_uneven_shards_and_stay_exact(sizes):
    ranks = run_on_two_ranks(_worker, sizes)
    expected_syncs = 0 if sizes[0] == sizes[1] else 1
    for name, loss_fn in LOSSES.items():
        want_loss, want_a, want_b = _single_process(loss_fn, sizes)
        for r, results in enumerate(ranks):
            syncs, copies, *_ = results[name]
            assert (syncs, copies) == (expected_syncs, 0), f"{name} rank {r}: {syncs} syncs, {copies} host copies"
        torch.testing.assert_close((ranks[0][name][2] + ranks[1][name][2]) / 2, want_loss, rtol=1e-10, atol=1e-12)
        # each rank's input gradient is its rows' share of the single-process one (DDP averages)
        got_a = torch.cat([ranks[r][name][3] for r in range(2)]) / 2
        got_b = torch.cat([ranks[r][name][4] for r in range(2)]) / 2
        torch.testing.assert_close(got_a, want_a, rtol=1e-9, atol=1e-12, msg=name)
        torch.testing.assert_close(got_b, want_b, rtol=1e-9, atol=1e-12, msg=name)


def test_knn_probe_and_gradient_analysis_build_nothing_on_the_host_for_device_inputs():
    from solo_plugins.analysis.gradient_vs_batch_size import gradient_statistics
    from solo_plugins.evaluation.probes import knn_probe

    x, y = torch.randn(40, 8, device="meta"), torch.zeros(40, dtype=torch.long, device="meta")
    with HostSyncLog() as log:
        knn_probe(x, y, x[:10], y[:10], k=5, chunk_size=4)
    assert not log.host_copies, log.host_copies
    assert len(log.syncs) == 3  # the two label maxima and the final count, not one per chunk
    z = torch.randn(32, 6, device="meta", dtype=torch.float64)
    with HostSyncLog() as log:
        gradient_statistics(z, z, [4, 8], losses={"dhel": lambda a, b: dhel_loss_func(a, b)}, batches=3)
    # the only host data: each batch size's random draws (from a CPU generator), copied once
    assert len(log.host_copies) == 2 and all("(3, 4)" in c or "(3, 8)" in c for c in log.host_copies), log.host_copies
