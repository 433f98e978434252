"""Multi-view losses: MV-DHEL, MV-InfoNCE (Koromilas et al., "A Principled Framework for
Multi-View Contrastive Learning"; official code: pakoromilas/Multi-View-CL) and MV-KCL.

Every loss takes V >= 2 views of the same N samples, as a sequence of V (N, D) tensors or one
(V, N, D) tensor; row i of every view is the same sample. Like the two-view losses they work
in log space and in float32 under fp16/bf16, and with ``gather_distributed=True`` they take their
negatives from the global batch (each view gathered with gradients) and return this rank's
share of the global mean.
"""

import itertools
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch

from solo_plugins.distributed import gather_rows, global_mean, resolve_gather
from solo_plugins.losses._common import (
    LossTerms,
    check_global_batch,
    check_positive,
    full_precision,
    log_sum_exp_others,
    normalized_float32,
    terms,
)
from solo_plugins.losses._tiled import check_chunk_size
from solo_plugins.losses.kcl import energy_to_others, kernel_parameter, kernels

Views = Union[Sequence[torch.Tensor], torch.Tensor]


def check_views(views: Views) -> List[torch.Tensor]:
    """The views as a list of V >= 2 floating (N, D) tensors of one shape, N >= 2."""
    if isinstance(views, torch.Tensor):
        if views.dim() != 3:
            raise ValueError(f"views as one tensor must have shape (V, N, D); got {tuple(views.shape)}")
        views = list(views.unbind(0))
    views = list(views)
    if len(views) < 2:
        raise ValueError(f"views needs V >= 2 views; got {len(views)}")
    for v in views:
        if not isinstance(v, torch.Tensor) or v.dim() != 2:
            raise ValueError("every view must be a torch.Tensor of shape (N, D)")
        if not v.is_floating_point():
            raise ValueError(f"views must be floating point; got {v.dtype}")
    shapes = {tuple(v.shape) for v in views}
    if len(shapes) != 1:
        raise ValueError(f"all views must have the same shape (N, D); got {sorted(shapes)}")
    if views[0].shape[0] < 1:
        raise ValueError("views need at least one row")
    return views


def _normalized_and_gathered(views: Views, *, gather: bool) -> Tuple[List[torch.Tensor], List[torch.Tensor], int]:
    local = list(normalized_float32(*check_views(views)))
    gathered = gather_rows(*local, gather=gather)
    check_global_batch(gathered[0].rows.shape[0])
    return local, [g.rows for g in gathered], gathered[0].offset


def _log_sum_exp_positives(local: List[torch.Tensor], temperature: float) -> torch.Tensor:
    """log Σ_{v<w} exp(<x_i^v, x_i^w>/τ), one value per local row."""
    pairs = [(a * b).sum(dim=1) for a, b in itertools.combinations(local, 2)]
    return torch.logsumexp(torch.stack(pairs) / temperature, dim=0)


@full_precision
def mv_dhel_loss_terms(views: Views, *, temperature: float = 0.3, chunk_size: Optional[int] = None,
                       gather_distributed: Optional[bool] = None) -> LossTerms:
    """MV-DHEL with its alignment and uniformity parts; see :func:`mv_dhel_loss_func`.

    Example:
        >>> import torch
        >>> loss, alignment, uniformity = mv_dhel_loss_terms([torch.randn(8, 16) for _ in range(3)])
        >>> bool(torch.allclose(loss, alignment + uniformity))
        True
    """
    check_positive("temperature", temperature)
    check_chunk_size(chunk_size)
    gather = resolve_gather(gather_distributed)
    local, everyone, offset = _normalized_and_gathered(views, gather=gather)
    n_global = everyone[0].shape[0]
    alignment = global_mean(-_log_sum_exp_positives(local, temperature), n_global, gathered=gather)
    spread = sum(log_sum_exp_others(x, x_all, offset, temperature, chunk_size) for x, x_all in zip(local, everyone))
    return terms(alignment, global_mean(spread, n_global, gathered=gather))


def mv_dhel_loss_func(views: Views, *, temperature: float = 0.3, chunk_size: Optional[int] = None,
                      gather_distributed: Optional[bool] = None) -> torch.Tensor:
    """Multi-view DHEL.

    For V normalized views x^1..x^V of N samples and s(a, b) = <a, b>:

        mean_i [ -log Σ_{v<w} exp(s(x_i^v, x_i^w)/τ) + Σ_v log Σ_{j≠i} exp(s(x_i^v, x_j^v)/τ) ]

    as the authors' ``MVDHEL``: every pair of views of a sample is a positive, and each view
    is spread on its own, its negatives being the other samples' same view. With V = 2 it is
    :func:`~solo_plugins.losses.dhel_loss_func` with ``include_augs=True``.

    Args:
        views: V >= 2 views, a sequence of (N, D) tensors or one (V, N, D) tensor; not
            necessarily normalized.
        temperature: τ > 0.
        chunk_size: None, or row tiles of that size (see :func:`~solo_plugins.losses.dhel_loss_func`).
        gather_distributed: True takes the negatives from the global batch, gathered from every
            rank with gradients (every rank must call the loss); False uses this rank's rows
            alone and enters no collective. Not given, it is False, with one UserWarning per
            process inside a process group of more than one rank.

    Returns:
        A scalar float32 tensor.

    Example:
        >>> import torch
        >>> views = [torch.randn(8, 128) for _ in range(4)]
        >>> loss = mv_dhel_loss_func(views, temperature=0.3)
        >>> loss.shape
        torch.Size([])

    Reference:
        Koromilas, Bouritsas, Giannakopoulos, Nicolaou, Panagakis. A Principled Framework for
        Multi-View Contrastive Learning. https://github.com/pakoromilas/Multi-View-CL
    """
    return mv_dhel_loss_terms(views, temperature=temperature, chunk_size=chunk_size,
                              gather_distributed=gather_distributed).loss


@full_precision
def mv_infonce_loss_terms(views: Views, *, temperature: float = 0.2, chunk_size: Optional[int] = None,
                          gather_distributed: Optional[bool] = None) -> LossTerms:
    """MV-InfoNCE with its alignment and uniformity parts; see :func:`mv_infonce_loss_func`.

    Example:
        >>> import torch
        >>> loss, alignment, uniformity = mv_infonce_loss_terms([torch.randn(8, 16) for _ in range(3)])
        >>> bool(torch.allclose(loss, alignment + uniformity))
        True
    """
    check_positive("temperature", temperature)
    check_chunk_size(chunk_size)
    gather = resolve_gather(gather_distributed)
    local, everyone, offset = _normalized_and_gathered(views, gather=gather)
    n_global = everyone[0].shape[0]
    columns = torch.cat(everyone)
    # view v's self-pairs sit in view v's block of the columns
    per_view = [log_sum_exp_others(x, columns, v * n_global + offset, temperature, chunk_size)
                for v, x in enumerate(local)]
    denominator = torch.logsumexp(torch.stack(per_view), dim=0)
    positives = math.log(2.0) + _log_sum_exp_positives(local, temperature)
    return terms(global_mean(-positives, n_global, gathered=gather),
                 global_mean(denominator, n_global, gathered=gather))


def mv_infonce_loss_func(views: Views, *, temperature: float = 0.2, chunk_size: Optional[int] = None,
                         gather_distributed: Optional[bool] = None) -> torch.Tensor:
    """Multi-view InfoNCE, as the authors' ``MVINFONCE``.

    With all V·N normalized views z and sample i's views x_i^1..x_i^V:

        mean_i [ -log(2 Σ_{v<w} exp(s(x_i^v, x_i^w)/τ)) + log Σ_v Σ_{b≠(v,i)} exp(s(x_i^v, z_b)/τ) ]

    one log-ratio per sample: the positives are every pair of its views, the denominator
    every similarity of any of its views to any other view of the batch (its own views
    included). With V = 2 this is not SimCLR's NT-Xent (which averages one log-ratio per
    view); it is the authors' multi-view form.

    Args:
        views: V >= 2 views, a sequence of (N, D) tensors or one (V, N, D) tensor.
        temperature: τ > 0.
        chunk_size: None, or row tiles of that size (see :func:`~solo_plugins.losses.dhel_loss_func`).
        gather_distributed: True takes the negatives from the global batch, gathered from every
            rank with gradients (every rank must call the loss); False uses this rank's rows
            alone and enters no collective. Not given, it is False, with one UserWarning per
            process inside a process group of more than one rank.

    Returns:
        A scalar float32 tensor.

    Example:
        >>> import torch
        >>> loss = mv_infonce_loss_func(torch.randn(4, 8, 128), temperature=0.2)  # 4 views of 8 samples
        >>> loss.shape
        torch.Size([])

    Reference:
        Koromilas et al. A Principled Framework for Multi-View Contrastive Learning.
        https://github.com/pakoromilas/Multi-View-CL
    """
    return mv_infonce_loss_terms(views, temperature=temperature, chunk_size=chunk_size,
                                 gather_distributed=gather_distributed).loss


@full_precision
def mv_kcl_loss_terms(views: Views, *, kernel: str = "gaussian", t: Optional[float] = None, gamma: float = 16.0,
                      s: Optional[float] = None, chunk_size: Optional[int] = None,
                      gather_distributed: Optional[bool] = None) -> LossTerms:
    """MV-KCL with its alignment and energy parts; see :func:`mv_kcl_loss_func`.

    Example:
        >>> import torch
        >>> loss, alignment, uniformity = mv_kcl_loss_terms([torch.randn(8, 16) for _ in range(3)])
        >>> bool(torch.allclose(loss, alignment + uniformity))
        True
    """
    t = kernel_parameter(kernel, t=t, s=s, gamma=gamma, stacklevel=4)
    check_chunk_size(chunk_size)
    gather = resolve_gather(gather_distributed)
    local, everyone, offset = _normalized_and_gathered(views, gather=gather)
    n_global = everyone[0].shape[0]
    align_kernel = kernels(kernel, t)[0]
    pairs = list(itertools.combinations(local, 2))
    alignment = sum(align_kernel((a - b).square().sum(dim=1)) for a, b in pairs) / len(pairs)
    energy = sum(energy_to_others(x, x_all, offset, kernel, t, chunk_size) for x, x_all in zip(local, everyone))
    scale = gamma * 2.0 / len(local)
    return terms(global_mean(-2.0 * alignment, n_global, gathered=gather),
                 scale * global_mean(energy, n_global, gathered=gather))


def mv_kcl_loss_func(views: Views, *, kernel: str = "gaussian", t: Optional[float] = None, gamma: float = 16.0,
                     s: Optional[float] = None, chunk_size: Optional[int] = None,
                     gather_distributed: Optional[bool] = None) -> torch.Tensor:
    """Multi-view KCL.

        -2 mean_{v<w} mean_i k(x_i^v, x_i^w) + γ (2/V) Σ_v mean_{i≠j} k(x_i^v, x_j^v)

    The alignment is averaged over all pairs of views and the energy is taken within each
    view. **The 2/V factor is this package's choice, not the authors'** (their multi-view
    code has MV-InfoNCE and MV-DHEL, no MV-KCL): it keeps the energy's weight against the
    alignment as in two-view KCL, which this is for V = 2
    (:func:`~solo_plugins.losses.kcl_loss_func`). Kernels and their parameters (``t``, ``s``)
    are KCL's.

    Args:
        views: V >= 2 views, a sequence of (N, D) tensors or one (V, N, D) tensor.
        kernel: gaussian, log, imq, riesz or gaussian_riesz.
        t: the scale of the gaussian, log and imq kernels (> 0; default 2.0).
        gamma: γ >= 0, weight of the energy.
        s: the Riesz exponent of ``riesz`` (< 0) and ``gaussian_riesz``.
        chunk_size: None, or row tiles of that size (see :func:`~solo_plugins.losses.dhel_loss_func`).
        gather_distributed: True takes the negatives from the global batch, gathered from every
            rank with gradients (every rank must call the loss); False uses this rank's rows
            alone and enters no collective. Not given, it is False, with one UserWarning per
            process inside a process group of more than one rank.

    Returns:
        A scalar float32 tensor.

    Example:
        >>> import torch
        >>> loss = mv_kcl_loss_func([torch.randn(8, 64) for _ in range(3)], gamma=16.0)
        >>> loss.shape
        torch.Size([])

    Reference:
        Koromilas et al., ICML 2024, https://arxiv.org/abs/2405.18045 (KCL).
    """
    return mv_kcl_loss_terms(views, kernel=kernel, t=t, gamma=gamma, s=s, chunk_size=chunk_size,
                             gather_distributed=gather_distributed).loss
