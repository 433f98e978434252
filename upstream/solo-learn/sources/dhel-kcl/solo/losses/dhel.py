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

import torch
import torch.nn.functional as F
from solo.utils.misc import gather, get_rank


def log_sum_exp_others(
    z: torch.Tensor, gathered_z: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Computes log sum_{j != i} exp(<z_i, gathered_z_j> / temperature) for each row i of z.

    Args:
        z (torch.Tensor): N x D normalized features of this process.
        gathered_z (torch.Tensor): (N*world_size) x D normalized features of all processes.
        temperature (float): temperature of the softmax.

    Return:
        torch.Tensor: N tensor.
    """

    logits = z @ gathered_z.T / temperature
    # each row's own entry, in the columns of this process
    start = z.size(0) * get_rank()
    logits[:, start:].fill_diagonal_(float("-inf"))
    return torch.logsumexp(logits, dim=1)


def dhel_loss_func(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.3, include_augs: bool = True
) -> torch.Tensor:
    """Computes DHEL's loss (Decoupled Hyperspherical Energy Loss) given batches of projected
    features z1 and z2 from two views: for normalized features x, y and s(a, b) = <a, b>,

        mean_i [ -s(x_i, y_i) / t + log sum_{j != i} exp(s(x_i, x_j) / t)
                 + log sum_{j != i} exp(s(y_i, y_j) / t) ]

    The positive never enters the uniformity terms, whose negatives are taken within each view
    and from the whole (gathered) batch, which must hold at least 2 samples. Computed in (at
    least) float32 with autocast disabled, so that the similarities are not rounded to half
    precision before the exponential.

    Args:
        z1 (torch.Tensor): N x D Tensor containing projected features from view 1.
        z2 (torch.Tensor): N x D Tensor containing projected features from view 2.
        temperature (float, optional): temperature of the softmax. Defaults to 0.3.
        include_augs (bool, optional): also spread the features of view 2. Defaults to True.

    Return:
        torch.Tensor: DHEL loss.
    """

    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1 = F.normalize(z1.to(torch.promote_types(z1.dtype, torch.float32)), dim=-1)
        z2 = F.normalize(z2.to(torch.promote_types(z2.dtype, torch.float32)), dim=-1)

        gathered_z1 = gather(z1)
        if gathered_z1.size(0) < 2:
            raise ValueError("DHEL needs a global batch of at least 2 samples (its negatives)")

        loss = -(z1 * z2).sum(dim=1) / temperature
        loss = loss + log_sum_exp_others(z1, gathered_z1, temperature)
        if include_augs:
            loss = loss + log_sum_exp_others(z2, gather(z2), temperature)
        return loss.mean()
