"""InfoNCE / NT-Xent, the loss of SimCLR (Chen et al., ICML 2020)."""

from typing import Optional

import torch

from solo_plugins.distributed import global_mean, resolve_gather
from solo_plugins.losses._common import (
    LossTerms,
    both_views_log_sum_exp,
    check_pair,
    check_positive,
    full_precision,
    normalized_and_gathered,
    terms,
)
from solo_plugins.losses._tiled import check_chunk_size


@full_precision
def infonce_loss_terms(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.2,
                       chunk_size: Optional[int] = None, gather_distributed: Optional[bool] = None) -> LossTerms:
    """InfoNCE with its alignment and uniformity parts; see :func:`infonce_loss_func`.

    Example:
        >>> import torch
        >>> loss, alignment, uniformity = infonce_loss_terms(torch.randn(8, 16), torch.randn(8, 16))
        >>> bool(torch.allclose(loss, alignment + uniformity))
        True
    """
    check_pair(z1, z2)
    check_positive("temperature", temperature)
    check_chunk_size(chunk_size)
    gather = resolve_gather(gather_distributed)
    x, y, x_all, y_all, offset = normalized_and_gathered(z1, z2, gather=gather)
    n_global = x_all.shape[0]

    spread = both_views_log_sum_exp(x, y, x_all, y_all, offset, temperature, False, chunk_size)
    positive = ((x * y).sum(dim=1) / temperature).repeat(2)
    alignment = global_mean(-positive, 2 * n_global, gathered=gather)
    return terms(alignment, global_mean(spread, 2 * n_global, gathered=gather))


def infonce_loss_func(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.2,
                      chunk_size: Optional[int] = None, gather_distributed: Optional[bool] = None) -> torch.Tensor:
    """SimCLR's symmetric NT-Xent loss over the 2N views.

    Each of the 2N normalized views u_a is an anchor; its positive u_p is the other view
    of the same image, and every other view is in the denominator, the positive included:

        mean_a [ -s(u_a, u_p)/τ + log Σ_{b≠a} exp(s(u_a, u_b)/τ) ]

    It equals solo-learn's ``simclr_loss_func`` on ``cat([z1, z2])`` with repeated indexes,
    computed in log space, in float32, and gathered over ranks with ``gather_distributed=True``.

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views; row i pairs with row i of z1.
        temperature: τ > 0.
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
        >>> loss = infonce_loss_func(z1, z2, temperature=0.2)
        >>> bool(loss > 0)  # a cross-entropy
        True

    Reference:
        Chen, Kornblith, Norouzi, Hinton. A Simple Framework for Contrastive Learning of
        Visual Representations. ICML 2020. https://arxiv.org/abs/2002.05709
    """
    return infonce_loss_terms(z1, z2, temperature=temperature, chunk_size=chunk_size,
                              gather_distributed=gather_distributed).loss


class InfoNCELoss(torch.nn.Module):
    """Module form of :func:`infonce_loss_func`.

    Shapes: ``z1``, ``z2``: (N, D), this rank's rows; with ``gather_distributed=True`` the global
    batch (over all ranks) needs at least 2, else the local one does; output: a scalar.

    Example:
        >>> import torch
        >>> backbone_and_projector = torch.nn.Linear(32, 16)
        >>> view1, view2 = torch.randn(8, 32), torch.randn(8, 32)
        >>> criterion = InfoNCELoss(temperature=0.2)
        >>> loss = criterion(backbone_and_projector(view1), backbone_and_projector(view2))
        >>> loss.backward()

    Reference: Chen et al., ICML 2020, https://arxiv.org/abs/2002.05709
    """

    def __init__(self, *, temperature: float = 0.2, chunk_size: Optional[int] = None,
                 gather_distributed: Optional[bool] = None):
        super().__init__()
        self.gather_distributed = gather_distributed
        check_positive("temperature", temperature)
        check_chunk_size(chunk_size)
        self.temperature, self.chunk_size = temperature, chunk_size

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return infonce_loss_func(z1, z2, temperature=self.temperature, chunk_size=self.chunk_size,
                                 gather_distributed=self.gather_distributed)
