import math

import torch
from solo.losses import dhel_loss_func


def dhel_reference(z1, z2, temperature):
    """DHEL written from its formula, in float64 with explicit loops."""
    x = [row / row.norm() for row in z1.double()]
    y = [row / row.norm() for row in z2.double()]
    n = len(x)
    total = 0.0
    for i in range(n):
        total -= float(x[i] @ y[i]) / temperature
        total += math.log(sum(math.exp(float(x[i] @ x[j]) / temperature) for j in range(n) if j != i))
        total += math.log(sum(math.exp(float(y[i] @ y[j]) / temperature) for j in range(n) if j != i))
    return total / n


def test_dhel_loss():
    b, f = 32, 128
    z1 = torch.randn(b, f).requires_grad_()
    z2 = torch.randn(b, f).requires_grad_()

    loss = dhel_loss_func(z1, z2, temperature=0.3)
    initial_loss = loss.item()
    assert loss != 0

    for _ in range(20):
        loss = dhel_loss_func(z1, z2, temperature=0.3)
        loss.backward()

        z1.data.add_(-0.5 * z1.grad)
        z2.data.add_(-0.5 * z2.grad)

        z1.grad = z2.grad = None

    assert loss < initial_loss


def test_dhel_matches_its_formula():
    torch.manual_seed(0)
    z1, z2 = torch.randn(7, 5, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    for temperature in (0.05, 0.3, 1.0):
        loss = dhel_loss_func(z1, z2, temperature=temperature)
        assert abs(loss.item() - dhel_reference(z1, z2, temperature)) < 1e-10


def test_dhel_is_finite_in_half_precision_at_small_temperatures():
    torch.manual_seed(0)
    z1 = torch.randn(64, 32).to(torch.bfloat16).requires_grad_()
    z2 = torch.randn(64, 32).to(torch.bfloat16).requires_grad_()
    loss = dhel_loss_func(z1, z2, temperature=0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    expected = dhel_reference(z1.detach(), z2.detach(), 0.05)
    assert abs(loss.item() - expected) < 1e-3 * abs(expected)
