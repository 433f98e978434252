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

from typing import Callable, Tuple

import torch
import torch.nn.functional as F
from solo.utils.misc import gather, get_rank

RIESZ_EPS = 1e-6


def smooth_floor(d2: torch.Tensor, eps: float = RIESZ_EPS) -> torch.Tensor:
    """d2 above eps; below it (d2^2 + eps^2) / (2 eps), which meets d2 with the same slope.

    The Riesz kernel d^(-s) of the paper's code (pakoromilas/DHEL-KCL) has no floor: features
    that coincide (positives once aligned, collapsed features at initialization) make it
    infinite and its gradient NaN. With the floor the kernel is unchanged for d2 >= eps and
    finite below, and nearly coinciding features keep a gradient that pushes them apart.
    """

    return torch.where(d2 < eps, (d2.square() + eps * eps) / (2 * eps), d2)


def kcl_kernels(kernel: str, t: float) -> Tuple[Callable, Callable]:
    """The alignment and uniformity kernels of KCL as functions of the squared distance d2.

    Args:
        kernel (str): gaussian, log, imq or riesz.
        t (float): the kernel's parameter (for riesz, the exponent s < 0).

    Return:
        Tuple[Callable, Callable]: the alignment kernel and the uniformity kernel.
    """

    if kernel == "gaussian":

        def gaussian(d2):
            return torch.exp(-t * d2)

        return gaussian, gaussian
    if kernel == "log":

        def log_align(d2):
            return -torch.log1p(t * d2)

        def log_energy(d2):
            return -0.5 * torch.log1p(t * d2)

        return log_align, log_energy
    if kernel == "imq":

        def imq(d2):
            return t * torch.rsqrt(t * t + d2)

        return imq, imq
    if kernel == "riesz":
        if not t < 0:
            raise ValueError(
                f"kernel 'riesz' needs t < 0 (the exponent s of -d^(-s)); got t={t!r}. With "
                "t > 0 the alignment term -2 d^(-t) has no lower bound: the loss falls without "
                "limit as a positive pair closes, and its minimum is set by the distance floor"
            )

        def riesz(d2):
            return -smooth_floor(d2).pow(-t / 2)

        return riesz, riesz
    raise ValueError(f"kernel must be one of gaussian, log, imq, riesz; got {kernel!r}")


def mean_energy_to_others(
    z: torch.Tensor, gathered_z: torch.Tensor, kernel: Callable, exact: bool
) -> torch.Tensor:
    """Computes 1/(M-1) sum_{j != i} kernel(|z_i - gathered_z_j|^2) for each row i of z, where
    M is the number of gathered rows; with exact, the distances come from differences (the
    Gram matrix loses nearly coinciding points to rounding)."""

    if exact:
        d2 = torch.cdist(z, gathered_z, compute_mode="donot_use_mm_for_euclid_dist").square()
    else:
        d2 = (2 - 2 * z @ gathered_z.T).clamp_min(0)
    others = torch.ones_like(d2, dtype=torch.bool)
    start = z.size(0) * get_rank()
    others[:, start:].fill_diagonal_(False)
    return torch.where(others, kernel(d2), 0).sum(dim=1) / (gathered_z.size(0) - 1)


def kcl_loss_func(
    z1: torch.Tensor,
    z2: torch.Tensor,
    kernel: str = "gaussian",
    t: float = 2.0,
    gamma: float = 16.0,
) -> torch.Tensor:
    """Computes KCL's loss (Kernel Contrastive Learning) given batches of projected features
    z1 and z2 from two views: for normalized features x, y and d2(a, b) = |a - b|^2,

        -2 mean_i K_A(d2(x_i, y_i)) + gamma * [ mean_{i != j} K_U(d2(x_i, x_j))
                                                 + mean_{i != j} K_U(d2(y_i, y_j)) ]

    with the kernels of kcl_kernels. The energy is a U-statistic over the whole (gathered)
    batch, which must hold at least 2 samples, so the expected loss does not depend on the
    batch size. Computed in (at least) float32 with autocast disabled, so that the distances
    are not rounded to half precision.

    Args:
        z1 (torch.Tensor): N x D Tensor containing projected features from view 1.
        z2 (torch.Tensor): N x D Tensor containing projected features from view 2.
        kernel (str, optional): gaussian, log, imq or riesz. Defaults to "gaussian".
        t (float, optional): the kernel's parameter (> 0; for riesz the exponent, < 0).
            Defaults to 2.0.
        gamma (float, optional): weight of the energy (uniformity) term. Defaults to 16.0.

    Return:
        torch.Tensor: KCL loss.
    """

    align_kernel, energy_kernel = kcl_kernels(kernel, t)
    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1 = F.normalize(z1.to(torch.promote_types(z1.dtype, torch.float32)), dim=-1)
        z2 = F.normalize(z2.to(torch.promote_types(z2.dtype, torch.float32)), dim=-1)

        gathered_z1 = gather(z1)
        if gathered_z1.size(0) < 2:
            raise ValueError("KCL needs a global batch of at least 2 samples (its energy)")

        exact = kernel == "riesz"
        alignment = -2 * align_kernel((z1 - z2).square().sum(dim=1))
        energy = mean_energy_to_others(z1, gathered_z1, energy_kernel, exact)
        energy = energy + mean_energy_to_others(z2, gather(z2), energy_kernel, exact)
        return (alignment + gamma * energy).mean()
