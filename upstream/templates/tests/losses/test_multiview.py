import math

import torch
from solo.losses import (
    dhel_loss_func,
    kcl_loss_func,
    mv_dhel_loss_func,
    mv_infonce_loss_func,
    mv_kcl_loss_func,
)


def mv_dhel_reference(views, temperature):
    """MV-DHEL from its formula, float64 loops: for each sample, minus the log of the sum
    over pairs of its views of exp(similarity/t), plus, per view, the log of the sum over
    the other samples of that view of exp(similarity/t)."""
    xs = [[row / row.norm() for row in v.double()] for v in views]
    n, total = len(xs[0]), 0.0
    for i in range(n):
        positives = sum(
            math.exp(float(xs[v][i] @ xs[w][i]) / temperature)
            for v in range(len(xs))
            for w in range(v + 1, len(xs))
        )
        total -= math.log(positives)
        for x in xs:
            total += math.log(sum(math.exp(float(x[i] @ x[j]) / temperature) for j in range(n) if j != i))
    return total / n


def test_mv_dhel_matches_its_formula_for_3_and_4_views():
    torch.manual_seed(0)
    for n_views in (3, 4):
        views = [torch.randn(6, 5, dtype=torch.float64) for _ in range(n_views)]
        assert abs(mv_dhel_loss_func(views, 0.3).item() - mv_dhel_reference(views, 0.3)) < 1e-10


def test_two_views_are_dhel_and_kcl():
    torch.manual_seed(0)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    assert torch.isclose(mv_dhel_loss_func([z1, z2], 0.3), dhel_loss_func(z1, z2, 0.3), atol=1e-6)
    assert torch.isclose(mv_kcl_loss_func([z1, z2]), kcl_loss_func(z1, z2), atol=1e-6)


def test_multiview_losses_decrease():
    views = [torch.randn(16, 32).requires_grad_() for _ in range(4)]
    for loss_func in (mv_dhel_loss_func, mv_infonce_loss_func, mv_kcl_loss_func):
        initial_loss = loss_func(views).item()
        for _ in range(20):
            loss = loss_func(views)
            grads = torch.autograd.grad(loss, views)
            for view, grad in zip(views, grads):
                view.data.add_(-0.5 * grad)
        assert loss_func(views).item() < initial_loss
