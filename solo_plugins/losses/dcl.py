"""DCL and DCLW: Decoupled Contrastive Learning (Yeh et al., ECCV 2022)."""

import math
import warnings
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
def dcl_loss_terms(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float = 0.1,
    weight_sigma: Optional[float] = None,
    weight_grad: bool = False,
    chunk_size: Optional[int] = None,
    gather_distributed: Optional[bool] = None,
) -> LossTerms:
    """DCL (or DCLW) with its alignment and uniformity parts; see :func:`dcl_loss_func`.

    Example:
        >>> import torch
        >>> loss, alignment, uniformity = dcl_loss_terms(torch.randn(8, 16), torch.randn(8, 16))
        >>> bool(torch.allclose(loss, alignment + uniformity))
        True
    """
    check_pair(z1, z2)
    check_positive("temperature", temperature)
    check_chunk_size(chunk_size)
    if weight_sigma is not None:
        check_positive("weight_sigma", weight_sigma)
    gather = resolve_gather(gather_distributed)
    x, y, x_all, y_all, offset = normalized_and_gathered(z1, z2, gather=gather)
    n_global = x_all.shape[0]

    spread = both_views_log_sum_exp(x, y, x_all, y_all, offset, temperature, True, chunk_size)

    similarity = (x * y).sum(dim=1)
    positive = similarity / temperature
    if weight_sigma is not None:
        with torch.set_grad_enabled(weight_grad and torch.is_grad_enabled()):
            all_similarities = (x_all * y_all).sum(dim=1)
            # 2 - exp(s_i/σ) / mean_k exp(s_k/σ), in log space: no overflow for small σ.
            log_mean = torch.logsumexp(all_similarities / weight_sigma, 0) - math.log(n_global)
            weight = 2 - torch.exp(similarity / weight_sigma - log_mean)
        positive = weight * positive
    alignment = global_mean(-positive.repeat(2), 2 * n_global, gathered=gather)
    return terms(alignment, global_mean(spread, 2 * n_global, gathered=gather))


def dcl_loss_func(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float = 0.1,
    weight_sigma: Optional[float] = None,
    weight_grad: bool = False,
    chunk_size: Optional[int] = None,
    gather_distributed: Optional[bool] = None,
) -> torch.Tensor:
    """Decoupled Contrastive Learning loss, and its weighted form DCLW.

    Symmetric over the two views; for view x (and likewise for y with the roles swapped):

        mean_i [ -w_i·s(x_i, y_i)/τ + log Σ_{j≠i} ( exp(s(x_i, x_j)/τ) + exp(s(x_i, y_j)/τ) ) ]

    The positive pair is removed from the denominator. With ``weight_sigma=None`` (DCL)
    w_i = 1; with ``weight_sigma=σ`` (DCLW)
    w_i = 2 - exp(s(x_i, y_i)/σ) / mean_k exp(s(x_k, y_k)/σ), the mean over the whole
    (global) batch. By default no gradient flows through w, as in lightly's DCLWLoss;
    ``weight_grad=True`` lets it flow, as the reference code of Yeh et al. does.

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views; row i pairs with row i of z1.
        temperature: τ > 0.
        weight_sigma: σ > 0 for DCLW (the paper uses 0.5), None for DCL.
        weight_grad: differentiate through the DCLW weights w (default False).
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
        >>> dcl = dcl_loss_func(z1, z2, temperature=0.1)
        >>> dclw = dcl_loss_func(z1, z2, temperature=0.1, weight_sigma=0.5)
        >>> dcl.shape, dcl.dtype
        (torch.Size([]), torch.float32)

    Reference:
        Yeh, Hong, Hsu, Liu, Chen, LeCun. Decoupled Contrastive Learning. ECCV 2022.
        https://arxiv.org/abs/2110.06848
    """
    return dcl_loss_terms(z1, z2, temperature=temperature, weight_sigma=weight_sigma, weight_grad=weight_grad,
                          chunk_size=chunk_size, gather_distributed=gather_distributed).loss


class DCLLoss(torch.nn.Module):
    """Module form of :func:`dcl_loss_func` for DCL; DCLW is :class:`DCLWLoss`.

    Shapes: ``z1``, ``z2``: (N, D), this rank's rows; with ``gather_distributed=True`` the global
    batch (over all ranks) needs at least 2, else the local one does; output: a scalar.

    Example:
        >>> import torch
        >>> backbone_and_projector = torch.nn.Linear(32, 16)
        >>> view1, view2 = torch.randn(8, 32), torch.randn(8, 32)
        >>> criterion = DCLLoss(temperature=0.1)
        >>> loss = criterion(backbone_and_projector(view1), backbone_and_projector(view2))
        >>> loss.backward()

    Reference: Yeh et al., ECCV 2022, https://arxiv.org/abs/2110.06848
    """

    def __init__(self, *, temperature: float = 0.1, weight_sigma: Optional[float] = None, weight_grad: bool = False,
                 chunk_size: Optional[int] = None,
                 gather_distributed: Optional[bool] = None):
        super().__init__()
        self.gather_distributed = gather_distributed
        check_positive("temperature", temperature)
        if weight_sigma is not None:
            warnings.warn(f"DCLLoss(weight_sigma={weight_sigma!r}) is DCLW: use DCLWLoss(sigma={weight_sigma!r}); "
                          "DCLLoss will refuse weight_sigma in 0.5", FutureWarning, stacklevel=2)
            check_positive("weight_sigma", weight_sigma)
        check_chunk_size(chunk_size)
        self.temperature, self.weight_sigma, self.weight_grad = temperature, weight_sigma, weight_grad
        self.chunk_size = chunk_size

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return dcl_loss_func(z1, z2, temperature=self.temperature, weight_sigma=self.weight_sigma,
                             weight_grad=self.weight_grad, chunk_size=self.chunk_size,
                             gather_distributed=self.gather_distributed)


class DCLWLoss(torch.nn.Module):
    """DCLW, Decoupled Contrastive Learning with von Mises-Fisher weighting of the positives:
    :func:`dcl_loss_func` with ``weight_sigma=sigma`` (lightly's ``DCLWLoss`` shape).

    The weights are computed over the global batch (with ``gather_distributed=True``, over every
    rank's rows), not over each rank's rows as lightly does.

    Args:
        temperature: τ > 0.
        sigma: σ > 0 of the weighting (the paper uses 0.5).
        weight_grad: differentiate through the weights (Yeh et al.'s reference code); False
            (the default, as lightly) treats them as constants.
        chunk_size: None, or row tiles of that size (see :func:`dcl_loss_func`).

    Shapes: ``z1``, ``z2``: (N, D), this rank's rows; with ``gather_distributed=True`` the global
    batch (over all ranks) needs at least 2, else the local one does; output: a scalar.

    Example:
        >>> import torch
        >>> backbone_and_projector = torch.nn.Linear(32, 16)
        >>> view1, view2 = torch.randn(8, 32), torch.randn(8, 32)
        >>> criterion = DCLWLoss(temperature=0.1, sigma=0.5)
        >>> loss = criterion(backbone_and_projector(view1), backbone_and_projector(view2))
        >>> loss.backward()

    Reference: Yeh et al., ECCV 2022, https://arxiv.org/abs/2110.06848
    """

    def __init__(self, *, temperature: float = 0.1, sigma: float = 0.5, weight_grad: bool = False,
                 chunk_size: Optional[int] = None,
                 gather_distributed: Optional[bool] = None):
        super().__init__()
        self.gather_distributed = gather_distributed
        check_positive("temperature", temperature)
        check_positive("sigma", sigma)
        check_chunk_size(chunk_size)
        self.temperature, self.sigma, self.weight_grad, self.chunk_size = temperature, sigma, weight_grad, chunk_size

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return dcl_loss_func(z1, z2, temperature=self.temperature, weight_sigma=self.sigma,
                             weight_grad=self.weight_grad, chunk_size=self.chunk_size,
                             gather_distributed=self.gather_distributed)
