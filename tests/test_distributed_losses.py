"""Two gloo processes on CPU against one process on the concatenated batch."""

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from solo_plugins.losses import dcl_loss_func, dhel_loss_func, infonce_loss_func, kcl_loss_func
from tests.gloo import average_gradients

LOSSES = {
    "dhel": lambda a, b: dhel_loss_func(a, b, gather_distributed=True, temperature=0.2),
    "dhel_no_augs": lambda a, b: dhel_loss_func(a, b, gather_distributed=True, temperature=0.2, include_augs=False),
    "kcl_gaussian": lambda a, b: kcl_loss_func(a, b, gather_distributed=True, kernel="gaussian", t=2.0, gamma=16.0),
    "kcl_riesz": lambda a, b: kcl_loss_func(a, b, gather_distributed=True, kernel="riesz", s=-1.0, gamma=2.0),
    "dcl": lambda a, b: dcl_loss_func(a, b, gather_distributed=True, temperature=0.1),
    "dclw": lambda a, b: dcl_loss_func(a, b, gather_distributed=True, temperature=0.1, weight_sigma=0.5),
    "infonce": lambda a, b: infonce_loss_func(a, b, gather_distributed=True, temperature=0.2),
}


def _data(n_total, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a1 = torch.randn(n_total, 10, generator=gen, dtype=torch.float64)
    a2 = a1 + 0.5 * torch.randn(n_total, 10, generator=gen, dtype=torch.float64)
    return a1, a2


def _model():
    torch.manual_seed(123)
    return torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6)).double()


def _worker(rank, world, init_file, sizes, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        a1, a2 = _data(sum(sizes))
        start = sum(sizes[:rank])
        local1, local2 = a1[start : start + sizes[rank]], a2[start : start + sizes[rank]]
        results = {}
        for name, loss_fn in LOSSES.items():
            model = _model()
            loss = loss_fn(model(local1), model(local2))
            loss.backward()
            average_gradients(model, world)
            averaged = loss.detach().clone()
            dist.all_reduce(averaged)
            averaged /= world
            results[name] = (averaged, [p.grad.clone() for p in model.parameters()])
        if rank == 0:
            torch.save(results, out_file)
        dist.barrier()  # every rank done with its collectives before any tears gloo down
    finally:
        dist.destroy_process_group()


def _single_process(loss_fn, n_total):
    a1, a2 = _data(n_total)
    model = _model()
    loss = loss_fn(model(a1), model(a2))
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


@pytest.mark.slow
@pytest.mark.parametrize("sizes", [(4, 4), (3, 5), (1, 1)], ids=["equal", "unequal", "one_row_each"])
def test_two_gloo_ranks_equal_one_process_on_the_whole_batch(sizes):
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "out.pt")
        mp.spawn(_worker, args=(2, os.path.join(tmp, "init"), list(sizes), out_file), nprocs=2, join=True)
        results = torch.load(out_file)
    for name, loss_fn in LOSSES.items():
        loss, grads = results[name]
        expected_loss, expected_grads = _single_process(loss_fn, sum(sizes))
        torch.testing.assert_close(loss, expected_loss, rtol=1e-9, atol=1e-12, msg=name)
        for got, want in zip(grads, expected_grads):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-11, msg=name)
