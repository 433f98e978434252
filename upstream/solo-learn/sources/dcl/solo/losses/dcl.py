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

import math
from typing import Optional

import torch
import torch.nn.functional as F
from solo.utils.misc import concat_all_gather_no_grad, gather, get_rank


def dcl_loss_func(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.1,
    weight_sigma: Optional[float] = None,
) -> torch.Tensor:
    """Computes DCL's loss (Decoupled Contrastive Learning) given batches of projected features
    z1 and z2 from two views. Each of the 2N features is an anchor; for normalized features x,
    y and s(a, b) = <a, b>, the anchor x_i gives

        -w_i * s(x_i, y_i) / t + log sum_{j != i} [ exp(s(x_i, x_j) / t) + exp(s(x_i, y_j) / t) ]

    (the positive is removed from the denominator), and y_i the same with x and y swapped.
    DCL has w_i = 1; DCLW (weight_sigma = sigma) weights the positives with
    w_i = 2 - exp(s(x_i, y_i) / sigma) / mean_k exp(s(x_k, y_k) / sigma), without gradient.
    Negatives come from the whole (gathered) batch, which must hold at least 2 samples. Computed
    in (at least) float32 with autocast disabled, so that the similarities are not rounded to
    half precision.

    Args:
        z1 (torch.Tensor): N x D Tensor containing projected features from view 1.
        z2 (torch.Tensor): N x D Tensor containing projected features from view 2.
        temperature (float, optional): temperature of the softmax. Defaults to 0.1.
        weight_sigma (Optional[float], optional): sigma of DCLW's weights; None for DCL.
            Defaults to None.

    Return:
        torch.Tensor: DCL (or DCLW) loss.
    """

    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1 = F.normalize(z1.to(torch.promote_types(z1.dtype, torch.float32)), dim=-1)
        z2 = F.normalize(z2.to(torch.promote_types(z2.dtype, torch.float32)), dim=-1)
        gathered_z1, gathered_z2 = gather(z1), gather(z2)
        if gathered_z1.size(0) < 2:
            raise ValueError("DCL needs a global batch of at least 2 samples (its negatives)")
        start = z1.size(0) * get_rank()

        positive = (z1 * z2).sum(dim=1)
        if weight_sigma is not None:
            with torch.no_grad():
                # 2 - exp(s_i / sigma) / mean_k exp(s_k / sigma), in log space
                all_positives = concat_all_gather_no_grad(positive)
                log_mean = torch.logsumexp(all_positives / weight_sigma, 0)
                log_mean = log_mean - math.log(gathered_z1.size(0))
                weight = 2 - torch.exp(positive / weight_sigma - log_mean)
            positive = weight * positive

        losses = []
        for x, same_view, other_view in (
            (z1, gathered_z1, gathered_z2),
            (z2, gathered_z2, gathered_z1),
        ):
            logits = torch.cat((x @ same_view.T, x @ other_view.T), dim=1) / temperature
            # the anchor itself and its positive, in the columns of this process
            logits[:, start:].fill_diagonal_(float("-inf"))
            positives_start = same_view.size(0) + start
            logits[:, positives_start:].fill_diagonal_(float("-inf"))
            losses.append(-positive / temperature + torch.logsumexp(logits, dim=1))
        return torch.cat(losses).mean()
