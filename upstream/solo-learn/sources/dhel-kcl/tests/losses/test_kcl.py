# Copyright 2023 solo-learn development team.

# Permission is hereby granted, free of charge, to any person obtaining a copy of
# this software and associated documentation files (the "Software"), to deal in
# the Software without restriction, including without limitation the rights to use,
# copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the
# Software, and to permit persons to whom the Software is furnished to do so,
# subject to the following conditions:

# The above copyright notice and this permission notice shall be included in all copies
# or substantial portions of the Software.

# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
# INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
# PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
# FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
# OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
# DEALINGS IN THE SOFTWARE.

import pytest
import torch
from solo.losses import kcl_loss_func


@pytest.mark.parametrize(
    "kernel,t", [("gaussian", 2.0), ("log", 1.0), ("imq", 2.0), ("riesz", -1.0)]
)
def test_kcl_loss(kernel, t):
    b, f = 32, 128
    z1 = torch.randn(b, f).requires_grad_()
    z2 = torch.randn(b, f).requires_grad_()

    loss = kcl_loss_func(z1, z2, kernel=kernel, t=t, gamma=16.0)
    initial_loss = loss.item()
    assert loss != 0

    for _ in range(20):
        loss = kcl_loss_func(z1, z2, kernel=kernel, t=t, gamma=16.0)
        loss.backward()

        z1.data.add_(-0.5 * z1.grad)
        z2.data.add_(-0.5 * z2.grad)

        z1.grad = z2.grad = None

    assert loss < initial_loss


def test_kcl_riesz_is_finite_at_collapse():
    z = torch.ones(8, 16, requires_grad=True)
    loss = kcl_loss_func(z, z, kernel="riesz", t=-1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_kcl_rejects_riesz_with_a_positive_exponent():
    # its alignment -2 d^(-t) would fall without limit as a positive pair closes
    with pytest.raises(ValueError, match="needs t < 0"):
        kcl_loss_func(torch.randn(4, 8), torch.randn(4, 8), kernel="riesz", t=1.0)


def test_kcl_rejects_an_unknown_kernel():
    with pytest.raises(ValueError, match="kernel must be one of"):
        kcl_loss_func(torch.randn(4, 8), torch.randn(4, 8), kernel="laplace")


@pytest.mark.parametrize("kernel,t", [("gaussian", 2.0), ("log", 1.0), ("imq", 2.0)])
def test_kcl_loss_is_computed_in_float32_under_autocast(kernel, t):
    torch.manual_seed(0)
    z1 = torch.randn(64, 128)
    z2 = z1 + 0.3 * torch.randn(64, 128)
    reference = kcl_loss_func(z1.double(), z2.double(), kernel=kernel, t=t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = kcl_loss_func(z1, z2, kernel=kernel, t=t)
    assert abs(loss.item() - reference.item()) < 1e-5 * abs(reference.item())


def test_kcl_loss_rejects_a_global_batch_of_one():
    z = torch.randn(1, 128)
    with pytest.raises(ValueError, match="global batch of at least 2"):
        kcl_loss_func(z, z)
