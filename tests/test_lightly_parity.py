"""The baselines against another library's implementation: lightly 1.6.0's NTXentLoss
(InfoNCE), DCLLoss and DCLWLoss, values and gradients in float64, in one process and, with
gathering on, in two gloo processes (each rank's value and input gradients).

DCLW only in one process: lightly weights the positives over each rank's own rows, this
package over the global batch (docs/losses.md)."""

import warnings

import pytest
import torch
import torch.distributed as dist

lightly_loss = pytest.importorskip("lightly.loss")

from solo_plugins.losses import dcl_loss_func, infonce_loss_func  # noqa: E402
from tests.gloo import run_on_two_ranks  # noqa: E402

PAIRS = {  # name: (ours, lightly's), each (z1, z2, gather) -> loss
    "infonce": (lambda a, b, g: infonce_loss_func(a, b, temperature=0.2, gather_distributed=g),
                lambda a, b, g: lightly_loss.NTXentLoss(temperature=0.2, gather_distributed=g)(a, b)),
    "dcl": (lambda a, b, g: dcl_loss_func(a, b, temperature=0.1, gather_distributed=g),
            lambda a, b, g: lightly_loss.DCLLoss(temperature=0.1, gather_distributed=g)(a, b)),
}
DCLW = (lambda a, b: dcl_loss_func(a, b, temperature=0.1, weight_sigma=0.5),
        lambda a, b: lightly_loss.DCLWLoss(temperature=0.1, sigma=0.5)(a, b))


def _pair(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 7, generator=gen, dtype=torch.float64)
    return a, a + 0.7 * torch.randn(n, 7, generator=gen, dtype=torch.float64)


def _value_and_grads(fn, a, b, *gather):
    a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lightly's DCL weight copies a tensor with torch.tensor()
        loss = fn(a, b, *gather)
    loss.backward()
    return loss.detach(), a.grad, b.grad


@pytest.mark.parametrize("name", list(PAIRS) + ["dclw"])
@pytest.mark.parametrize("n", [2, 9])
def test_one_process_equals_lightly(name, n):
    a, b = _pair(n)
    ours, theirs = (PAIRS[name] if name != "dclw" else DCLW)
    args = (False,) if name != "dclw" else ()
    for got, want in zip(_value_and_grads(ours, a, b, *args), _value_and_grads(theirs, a, b, *args)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


def _worker(rank, world, init_file, sizes, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        a, b = _pair(sum(sizes), seed=1)
        mine = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
        results = {name: [_value_and_grads(fn, a[mine], b[mine], True) for fn in pair] for name, pair in PAIRS.items()}
        torch.save(results, f"{out_file}.{rank}")
        dist.barrier()  # every rank done with its collectives before any tears gloo down
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_equal_lightly_with_gathering_on():
    ranks = run_on_two_ranks(_worker, [5, 5])
    for rank, results in enumerate(ranks):
        for name, (ours, theirs) in results.items():
            for got, want in zip(ours, theirs):
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13, msg=f"{name} rank {rank}")
    # and the ranks' mean is the one-process value on the whole batch
    a, b = _pair(10, seed=1)
    for name, (ours, _) in PAIRS.items():
        whole = _value_and_grads(ours, a, b, False)[0]
        torch.testing.assert_close((ranks[0][name][0][0] + ranks[1][name][0][0]) / 2, whole, rtol=1e-12, atol=1e-13)
