"""MV-DHEL, MV-InfoNCE and MV-KCL against float64 loops written from their formulas."""

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from solo_plugins.losses import (
    dhel_loss_func,
    kcl_loss_func,
    mv_dhel_loss_func,
    mv_dhel_loss_terms,
    mv_infonce_loss_func,
    mv_kcl_loss_func,
)
from tests import reference_losses as ref
from tests.gloo import average_gradients

def _parameter(kernel, value):
    return {"s" if "riesz" in kernel else "t": value}


KERNEL_SETTINGS = [("gaussian", 2.0, 16.0), ("log", 1.0, 4.0), ("imq", 1.0, 2.0), ("riesz", -1.0, 2.0),
                   ("gaussian_riesz", 2.0, 1.0)]


def _views(n_views, n=6, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(n_views)]


@pytest.mark.parametrize("n_views", [2, 3, 4])
def test_mv_dhel_and_mv_infonce_match_their_formulas(n_views):
    views = _views(n_views)
    for temperature in (0.1, 0.5):
        torch.testing.assert_close(mv_dhel_loss_func(views, temperature=temperature), ref.mv_dhel(views, temperature),
                                   rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mv_infonce_loss_func(views, temperature=temperature), ref.mv_infonce(views, temperature),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_views", [2, 3, 4])
@pytest.mark.parametrize("kernel,t,gamma", KERNEL_SETTINGS)
def test_mv_kcl_matches_its_formula(n_views, kernel, t, gamma):
    views = _views(n_views)
    torch.testing.assert_close(mv_kcl_loss_func(views, kernel=kernel, gamma=gamma, **_parameter(kernel, t)), ref.mv_kcl(views, kernel, t, gamma),
                               rtol=1e-10, atol=1e-10)


def test_gradients_match_the_formulas():
    views = [v.requires_grad_() for v in _views(3)]
    for ours, theirs in [(lambda: mv_dhel_loss_func(views, temperature=0.2), lambda: ref.mv_dhel(views, 0.2)),
                         (lambda: mv_infonce_loss_func(views, temperature=0.2), lambda: ref.mv_infonce(views, 0.2)),
                         (lambda: mv_kcl_loss_func(views, kernel="gaussian", t=2.0, gamma=4.0),
                          lambda: ref.mv_kcl(views, "gaussian", 2.0, 4.0))]:
        got = torch.autograd.grad(ours(), views)
        want = torch.autograd.grad(theirs(), views)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)


def test_two_views_are_the_two_view_losses():
    z1, z2 = (v.float() for v in _views(2, n=32, d=16))
    torch.testing.assert_close(mv_dhel_loss_func([z1, z2], temperature=0.3), dhel_loss_func(z1, z2, temperature=0.3, include_augs=True),
                               rtol=1e-6, atol=1e-6)
    for kernel, t, gamma in KERNEL_SETTINGS:
        torch.testing.assert_close(mv_kcl_loss_func([z1, z2], kernel=kernel, gamma=gamma, **_parameter(kernel, t)), kcl_loss_func(z1, z2, kernel=kernel, gamma=gamma, **_parameter(kernel, t)),
                                   rtol=1e-6, atol=1e-6)


def test_one_stacked_tensor_is_the_same_as_a_list():
    views = _views(4)
    assert mv_dhel_loss_func(torch.stack(views), temperature=0.3) == mv_dhel_loss_func(views, temperature=0.3)
    assert mv_infonce_loss_func(torch.stack(views), temperature=0.3) == mv_infonce_loss_func(views, temperature=0.3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_at_small_temperatures_is_finite_and_close(dtype):
    views64 = _views(4, n=64, d=32)
    views = [v.to(dtype).requires_grad_() for v in views64]
    for loss_fn, reference in [(mv_dhel_loss_func, ref.mv_dhel), (mv_infonce_loss_func, ref.mv_infonce)]:
        loss = loss_fn(views, temperature=0.05)
        grads = torch.autograd.grad(loss, views)
        assert loss.dtype == torch.float32 and all(torch.isfinite(g).all() for g in grads)
        expected = reference([v.detach().double() for v in views], 0.05)
        assert abs(loss.item() - expected.item()) < 1e-3 * abs(expected.item())


def test_collapse_is_finite():
    same = torch.randn(1, 8).repeat(16, 1)
    views = [same.clone().requires_grad_() for _ in range(3)]
    for loss in (mv_dhel_loss_func(views, temperature=0.1), mv_infonce_loss_func(views, temperature=0.1),
                 mv_kcl_loss_func(views, kernel="riesz", s=-1.0, gamma=1.0), mv_kcl_loss_func(views, kernel="gaussian", t=2.0, gamma=16.0)):
        grads = torch.autograd.grad(loss, views)
        assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)


def test_terms_add_up():
    parts = mv_dhel_loss_terms(_views(3), temperature=0.3)
    torch.testing.assert_close(parts.loss, parts.alignment + parts.uniformity)


@pytest.mark.parametrize("bad,match", [
    ([torch.randn(4, 3)], "V >= 2"),
    ([torch.randn(4, 3), torch.randn(5, 3)], "same shape"),
    (torch.randn(4, 3), r"\(V, N, D\)"),
    ([torch.randn(1, 3), torch.randn(1, 3)], "global batch of at least 2"),
])
def test_bad_views_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        mv_dhel_loss_func(bad)


MV_LOSSES = {
    "mv_dhel": lambda views: mv_dhel_loss_func(views, gather_distributed=True, temperature=0.2),
    "mv_infonce": lambda views: mv_infonce_loss_func(views, gather_distributed=True, temperature=0.2),
    "mv_kcl": lambda views: mv_kcl_loss_func(views, gather_distributed=True, kernel="gaussian", t=2.0, gamma=16.0),
    "mv_kcl_riesz": lambda views: mv_kcl_loss_func(views, gather_distributed=True, kernel="riesz", s=-1.0, gamma=2.0),
}


def _model():
    torch.manual_seed(123)
    return torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6)).double()


def _inputs(n_total):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(n_total, 10, generator=gen, dtype=torch.float64)
    return [base + 0.5 * torch.randn(n_total, 10, generator=gen, dtype=torch.float64) for _ in range(3)]


def _worker(rank, world, init_file, sizes, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        start = sum(sizes[:rank])
        local = [x[start : start + sizes[rank]] for x in _inputs(sum(sizes))]
        results = {}
        for name, loss_fn in MV_LOSSES.items():
            model = _model()
            loss = loss_fn([model(x) for x in local])
            loss.backward()
            average_gradients(model, world)
            averaged = loss.detach().clone()
            dist.all_reduce(averaged)
            results[name] = (averaged / world, [p.grad.clone() for p in model.parameters()])
        if rank == 0:
            torch.save(results, out_file)
        dist.barrier()  # every rank done with its collectives before any tears gloo down
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_with_unequal_shards_equal_one_process():
    sizes = (3, 5)
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "out.pt")
        mp.spawn(_worker, args=(2, os.path.join(tmp, "init"), list(sizes), out_file), nprocs=2, join=True)
        results = torch.load(out_file)
    for name, loss_fn in MV_LOSSES.items():
        model = _model()
        loss = loss_fn([model(x) for x in _inputs(sum(sizes))])
        loss.backward()
        got_loss, got_grads = results[name]
        torch.testing.assert_close(got_loss, loss.detach(), rtol=1e-9, atol=1e-12, msg=name)
        for got, want in zip(got_grads, [p.grad for p in model.parameters()]):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-11, msg=name)
