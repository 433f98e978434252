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
from solo.losses import dcl_loss_func


@pytest.mark.parametrize("weight_sigma", [None, 0.5])
def test_dcl_loss(weight_sigma):
    b, f = 32, 128
    z1 = torch.randn(b, f).requires_grad_()
    z2 = torch.randn(b, f).requires_grad_()

    loss = dcl_loss_func(z1, z2, temperature=0.1, weight_sigma=weight_sigma)
    initial_loss = loss.item()
    assert loss != 0

    for _ in range(20):
        loss = dcl_loss_func(z1, z2, temperature=0.1, weight_sigma=weight_sigma)
        loss.backward()

        z1.data.add_(-0.5 * z1.grad)
        z2.data.add_(-0.5 * z2.grad)

        z1.grad = z2.grad = None

    assert loss < initial_loss


def test_dcl_removes_the_positive_from_the_denominator():
    # two pairs: each anchor's only negatives are the other pair's two features
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = -1 / 0.5 + torch.log(torch.tensor(2.0))  # -s/t + log(exp(0) + exp(0))
    assert torch.allclose(dcl_loss_func(z1, z2, temperature=0.5), expected)


def test_dcl_loss_is_computed_in_float32_under_autocast():
    torch.manual_seed(0)
    z1 = torch.randn(64, 128)
    z2 = z1 + 0.3 * torch.randn(64, 128)
    reference = dcl_loss_func(z1.double(), z2.double(), temperature=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = dcl_loss_func(z1, z2, temperature=0.05)
    assert abs(loss.item() - reference.item()) < 1e-5 * abs(reference.item())


def test_dcl_loss_rejects_a_global_batch_of_one():
    z = torch.randn(1, 128)
    with pytest.raises(ValueError, match="global batch of at least 2"):
        dcl_loss_func(z, z)
