"""The Riesz kernels' distances in bounded memory: |a_i - b_j|² from differences, with
cdist's backward run in row blocks, against a float64 brute force; what they keep for
backward does not grow with the dimension D, and each backward block stays within its size."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from solo_plugins.losses import kcl
from solo_plugins.losses.kcl import energy_to_others, squared_distances


def test_squared_distances_match_brute_force_values_and_gradients(monkeypatch):
    monkeypatch.setattr(kcl, "DIFFERENCE_BLOCK", 7 * 5)  # 1 row a block at (N, D) = (7, 5): many blocks
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(7, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(9, 7, generator=gen, dtype=torch.float64)
    got = squared_distances(a, b)
    want = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-14)
    grads = torch.autograd.grad((got * weights).sum(), (a, b))
    want_grads = torch.autograd.grad((want * weights).sum(), (a, b))
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-13)
    assert torch.autograd.gradcheck(squared_distances, (a[:4].detach().requires_grad_(), b[:3].detach().requires_grad_()))


def test_nearly_coinciding_points_keep_their_distance_and_gradient():
    a = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    b = torch.tensor([[1.0, 3e-4, 0.0]], requires_grad=True)
    d2 = squared_distances(a, b)
    assert d2.item() == pytest.approx(9e-8, rel=1e-5)  # 2 - 2<a, b> would give 0 in float32
    (grad_a,) = torch.autograd.grad(d2.sum(), a)
    torch.testing.assert_close(grad_a, torch.tensor([[0.0, -6e-4, 0.0]]))


def _saved_bytes_beyond_inputs(n, d, kernel):
    x = torch.nn.functional.normalize(torch.randn(n, d), dim=1).requires_grad_()
    inputs = {x.untyped_storage().data_ptr()}
    saved = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in inputs:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        energy_to_others(x, x, 0, kernel, 1.0).sum()
    return sum(saved.values())


@pytest.mark.parametrize("kernel", ["riesz", "gaussian_riesz"])
def test_saved_for_backward_does_not_grow_with_dimension(kernel):
    small, large = _saved_bytes_beyond_inputs(64, 8, kernel), _saved_bytes_beyond_inputs(64, 1024, kernel)
    assert small == large
    assert 0 < large <= 8 * 64 * 64 * 4  # a few (n, N) float32 tensors


class _CdistBackwardCalls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.shapes = []  # (rows of x1, rows of x2, D) of each call to cdist's backward

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._cdist_backward.default:
            self.shapes.append((args[1].shape[0], args[2].shape[0], args[1].shape[1]))
        return func(*args, **(kwargs or {}))


def test_cdist_backward_runs_in_blocks_of_bounded_size(monkeypatch):
    """On CUDA cdist's backward holds a (rows of x1, rows of x2, D) buffer: each call's must
    stay within the block, whatever N and D."""
    n, d = 96, 256
    monkeypatch.setattr(kcl, "DIFFERENCE_BLOCK", 4 * n * d)  # 4 rows a block
    x = torch.nn.functional.normalize(torch.randn(n, d, dtype=torch.float64), dim=1).requires_grad_()
    with _CdistBackwardCalls() as log:
        energy_to_others(x, x, 0, "riesz", 1.0).sum().backward()
    assert len(log.shapes) == 2 * (n // 4)  # one per block for each input
    assert all(rows * others * dim <= 4 * n * d for rows, others, dim in log.shapes)
    reference = x.detach().clone().requires_grad_()
    monkeypatch.setattr(kcl, "DIFFERENCE_BLOCK", n * n * d)  # one block: torch.cdist's own backward
    energy_to_others(reference, reference, 0, "riesz", 1.0).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-12, atol=1e-12)
