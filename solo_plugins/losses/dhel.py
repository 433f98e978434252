"""DHEL: Decoupled Hyperspherical Energy Loss (Koromilas et al., ICML 2024)."""

from typing import Optional

import torch

from solo_plugins.distributed import global_mean, resolve_gather
from solo_plugins.losses._common import (
    LossTerms,
    check_pair,
    check_positive,
    full_precision,
    log_sum_exp_others,
    normalized_and_gathered,
    terms,
)
from solo_plugins.losses._tiled import check_chunk_size


@full_precision
def dhel_loss_terms(
    z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.3, include_augs: bool = True,
    chunk_size: Optional[int] = None,
    gather_distributed: Optional[bool] = None,
) -> LossTerms:
    """DHEL's loss with its alignment and uniformity parts; see :func:`dhel_loss_func`.

    Example:
        >>> import torch
        >>> loss, alignment, uniformity = dhel_loss_terms(torch.randn(8, 16), torch.randn(8, 16))
        >>> bool(torch.allclose(loss, alignment + uniformity))
        True
    """
    check_pair(z1, z2)
    check_positive("temperature", temperature)
    check_chunk_size(chunk_size)
    gather = resolve_gather(gather_distributed)
    x, y, x_all, y_all, offset = normalized_and_gathered(z1, z2, gather=gather)
    n_global = x_all.shape[0]

    alignment = global_mean(-(x * y).sum(dim=1) / temperature, n_global, gathered=gather)
    spread = log_sum_exp_others(x, x_all, offset, temperature, chunk_size)
    if include_augs:
        spread = spread + log_sum_exp_others(y, y_all, offset, temperature, chunk_size)
    return terms(alignment, global_mean(spread, n_global, gathered=gather))


def dhel_loss_func(
    z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.3, include_augs: bool = True,
    chunk_size: Optional[int] = None,
    gather_distributed: Optional[bool] = None,
) -> torch.Tensor:
    """Decoupled Hyperspherical Energy Loss.

    For normalized views x = z1/‖z1‖, y = z2/‖z2‖ and s(a, b) = <a, b>:

        mean_i [ -s(x_i, y_i)/τ + log Σ_{j≠i} exp(s(x_i, x_j)/τ) + log Σ_{j≠i} exp(s(y_i, y_j)/τ) ]

    The positive pair never enters the uniformity term (it is decoupled from alignment),
    and negatives are taken within a view. ``include_augs=False`` drops the second view's
    term, as the official implementation allows (its default is True).

    Computed in log space and in float32 whatever the input dtype; with
    ``gather_distributed=True`` the negatives come from the whole global batch (gathered with
    gradients) and the value is this rank's share of the global mean.

    Args:
        z1: (N, D) projections of the first views; not necessarily normalized.
        z2: (N, D) projections of the second views; row i pairs with row i of z1.
        temperature: τ > 0.
        include_augs: also spread the second view.
        chunk_size: None computes the similarity block at once; an integer computes it in
            row tiles of that size, in forward and again in backward, so that memory grows as
            N·D instead of N² (same value and gradients).
        gather_distributed: True takes the negatives from the global batch, gathered from every
            rank with gradients (every rank must call the loss); False uses this rank's rows
            alone and enters no collective. Not given, it is False, with one UserWarning per
            process inside a process group of more than one rank.

    Returns:
        A scalar float32 tensor.

    Example:
        >>> import torch
        >>> z1, z2 = torch.randn(8, 128), torch.randn(8, 128)
        >>> loss = dhel_loss_func(z1, z2, temperature=0.3)
        >>> loss.shape, loss.dtype
        (torch.Size([]), torch.float32)

    Reference:
        Koromilas, Bouritsas, Giannakopoulos, Nicolaou, Panagakis. Bridging Mini-Batch and
        Asymptotic Analysis in Contrastive Learning: From InfoNCE to Kernel-Based Losses.
        ICML 2024. https://arxiv.org/abs/2405.18045
    """
    return dhel_loss_terms(z1, z2, temperature=temperature, include_augs=include_augs, chunk_size=chunk_size,
                           gather_distributed=gather_distributed).loss


class DHELLoss(torch.nn.Module):
    """Module form of :func:`dhel_loss_func`.

    Shapes: ``z1``, ``z2``: (N, D), this rank's rows; with ``gather_distributed=True`` the global
    batch (over all ranks) needs at least 2, else the local one does; output: a scalar.

    Example:
        >>> import torch
        >>> backbone_and_projector = torch.nn.Linear(32, 16)
        >>> view1, view2 = torch.randn(8, 32), torch.randn(8, 32)
        >>> criterion = DHELLoss(temperature=0.3)
        >>> loss = criterion(backbone_and_projector(view1), backbone_and_projector(view2))
        >>> loss.backward()

    Reference: Koromilas et al., ICML 2024, https://arxiv.org/abs/2405.18045
    """

    def __init__(self, *, temperature: float = 0.3, include_augs: bool = True, chunk_size: Optional[int] = None,
                 gather_distributed: Optional[bool] = None):
        super().__init__()
        self.gather_distributed = gather_distributed
        check_positive("temperature", temperature)
        check_chunk_size(chunk_size)
        self.temperature = temperature
        self.include_augs = include_augs
        self.chunk_size = chunk_size

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return dhel_loss_func(z1, z2, temperature=self.temperature, include_augs=self.include_augs,
                              chunk_size=self.chunk_size,
                              gather_distributed=self.gather_distributed)
