import math

import torch
from solo.losses import dcl_loss_func


def dcl_reference(z1, z2, temperature):
    """DCL written from its formula (Yeh et al.), in float64 with explicit loops: the
    positive pair is removed from the denominator; the loss is symmetrized over the views."""
    x = [row / row.norm() for row in z1.double()]
    y = [row / row.norm() for row in z2.double()]
    n = len(x)

    def one_view(a, b):
        total = 0.0
        for i in range(n):
            negatives = sum(
                math.exp(float(a[i] @ a[j]) / temperature) + math.exp(float(a[i] @ b[j]) / temperature)
                for j in range(n)
                if j != i
            )
            total += -float(a[i] @ b[i]) / temperature + math.log(negatives)
        return total / n

    return (one_view(x, y) + one_view(y, x)) / 2


def test_dcl_loss():
    b, f = 32, 128
    z1 = torch.randn(b, f).requires_grad_()
    z2 = torch.randn(b, f).requires_grad_()

    loss = dcl_loss_func(z1, z2, temperature=0.1)
    initial_loss = loss.item()
    assert loss != 0

    for _ in range(20):
        loss = dcl_loss_func(z1, z2, temperature=0.1)
        loss.backward()

        z1.data.add_(-0.5 * z1.grad)
        z2.data.add_(-0.5 * z2.grad)

        z1.grad = z2.grad = None

    assert loss < initial_loss


def test_dcl_matches_its_formula():
    torch.manual_seed(0)
    z1, z2 = torch.randn(7, 5, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    for temperature in (0.1, 0.5):
        loss = dcl_loss_func(z1, z2, temperature=temperature)
        assert abs(loss.item() - dcl_reference(z1, z2, temperature)) < 1e-10


def test_dclw_weights_the_positives():
    torch.manual_seed(0)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    assert not torch.isclose(dcl_loss_func(z1, z2, 0.1, weight_sigma=0.5), dcl_loss_func(z1, z2, 0.1))
