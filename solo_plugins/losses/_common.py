"""Input checks and shared pieces of the contrastive losses."""

import functools
import inspect
from typing import Callable, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from solo_plugins.distributed import gather_rows
from solo_plugins.losses._tiled import EXP_SAFE_RANGE, no_autocast, tiled_log_sum_exp


class LossTerms(NamedTuple):
    """A contrastive loss split into the two parts the paper decouples.

    ``alignment`` pulls positive pairs together; ``uniformity`` spreads the batch (the
    log-sum-exp denominator of the InfoNCE family, or the kernel energy of KCL).
    ``loss = alignment + uniformity``.

    Example:
        >>> import torch
        >>> from solo_plugins.losses import dhel_loss_terms
        >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> terms = dhel_loss_terms(z1, z2)
        >>> bool(torch.allclose(terms.loss, terms.alignment + terms.uniformity))
        True
    """

    loss: torch.Tensor
    alignment: torch.Tensor
    uniformity: torch.Tensor


def terms(alignment: torch.Tensor, uniformity: torch.Tensor) -> LossTerms:
    return LossTerms(alignment + uniformity, alignment, uniformity)


def check_pair(z1: torch.Tensor, z2: torch.Tensor) -> None:
    if not isinstance(z1, torch.Tensor) or not isinstance(z2, torch.Tensor):
        raise ValueError("z1 and z2 must be torch.Tensor of shape (N, D)")
    if z1.dim() != 2 or z2.dim() != 2:
        raise ValueError(
            f"z1 and z2 must be 2-D tensors of shape (N, D); got z1 {tuple(z1.shape)} "
            f"and z2 {tuple(z2.shape)}"
        )
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape (row i of each is a positive pair); got "
            f"z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)}"
        )
    if z1.shape[0] < 1:
        raise ValueError("z1 and z2 need at least one row")
    if not (z1.is_floating_point() and z2.is_floating_point()):
        raise ValueError(f"z1 and z2 must be floating point; got {z1.dtype} and {z2.dtype}")


#: Keyword options that say how a loss is computed, not which loss: not among its settings.
COMPUTATION_OPTIONS = ("chunk_size", "gather_distributed")


def loss_options(loss: Callable) -> Tuple[str, ...]:
    """The settings of a loss function or loss module: its keyword-only options, less those that
    only say how it is computed. The one list the methods' configs, the studies' loss specs and
    the sweep's ``loss_kwargs`` column take their keys from.

    Example:
        >>> from solo_plugins.losses import dhel_loss_func, loss_options
        >>> loss_options(dhel_loss_func)
        ('temperature', 'include_augs')
    """
    params = inspect.signature(loss).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in COMPUTATION_OPTIONS)


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be a number > 0; got {value!r}")


def normalized_float32(*zs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """L2-normalizes in float32 at least (float64 stays float64): fp16/bf16 logits at small
    temperatures overflow or lose the log-sum-exp."""
    return tuple(F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1) for z in zs)


def normalized_and_gathered(z1: torch.Tensor, z2: torch.Tensor, *, gather: bool):
    """Normalized local views and the global ones (gathered across ranks with ``gather``).

    Returns ``x, y, x_all, y_all, offset``: local row i is global row ``offset + i``.
    """
    x, y = normalized_float32(z1, z2)
    (x_all, offset), (y_all, _) = gather_rows(x, y, gather=gather)
    check_global_batch(x_all.shape[0])
    return x, y, x_all, y_all, offset


def check_global_batch(n_global: int) -> None:
    """Every rank sees the same global size, so all of them raise together (no rank waits in
    a collective for one that failed)."""
    if n_global < 2:
        raise ValueError(f"the losses need a global batch of at least 2 samples (a negative per sample); "
                         f"got {n_global}")


def full_precision(loss_fn):
    """Runs a loss with autocast off, so its matmuls stay in float32 under mixed precision."""

    @functools.wraps(loss_fn)
    def wrapper(*args, **kwargs):
        with no_autocast():
            return loss_fn(*args, **kwargs)

    return wrapper


def self_masked_bias(a: torch.Tensor, n_cols: int, offset: int, shift: float) -> torch.Tensor:
    """A (len(a), n_cols) constant ``shift`` with -inf where local row i meets global column
    offset + i: the bias of an addmm that masks the self-pairs as it computes. Masking the
    product afterwards, in place on a slice, would make autograd copy the whole gradient."""
    bias = a.new_full((a.shape[0], n_cols), shift)
    return mask_self(bias, offset, float("-inf"))


def shifted_logits(a: torch.Tensor, b: torch.Tensor, temperature: float, mask_offset: int) -> torch.Tensor:
    """(<a_i, b_j> - 1)/τ for unit rows, in one fused matmul-add: the similarities over the
    temperature, shifted by their upper bound 1/τ so that every entry is <= 0; -inf where
    row i meets column mask_offset + i (the self-pairs)."""
    bias = self_masked_bias(a, b.shape[0], mask_offset, -1.0 / temperature)
    return torch.addmm(bias, a, b.T, alpha=1.0 / temperature)


def log_sum_exp(shifted: torch.Tensor, temperature: float) -> torch.Tensor:
    """log Σ_j exp(<a_i, b_j>/τ) per row, from :func:`shifted_logits` (masked entries -inf).

    Each row keeps at least one entry >= -2/τ (similarities are >= -1), so while
    2/τ <= 80 the plain exp-sum-log of the shifted logits can neither overflow nor underflow
    to log(0), and it is cheaper than ``torch.logsumexp``; below τ = 0.025 the latter is used.
    """
    bound = 1.0 / temperature
    if 2 * bound <= EXP_SAFE_RANGE:
        return torch.log(torch.exp(shifted).sum(dim=1)) + bound
    return torch.logsumexp(shifted, dim=1) + bound


def mask_self(scores: torch.Tensor, offset: int, value: float) -> torch.Tensor:
    """Writes ``value`` where local row i meets global column offset + i (in place).

    A ``fill_`` of a diagonal view takes the value as a kernel argument; indexed assignment
    of a Python number would make it a CPU tensor, copied to the device with a host sync."""
    n = scores.shape[0]
    scores[:, offset : offset + n].diagonal().fill_(value)
    return scores


def both_views_logits(x, y, x_all, y_all, offset: int, temperature: float, mask_positives: bool) -> torch.Tensor:
    """Similarities over the temperature, shifted by their bound 1/τ (every entry <= 0), of
    every local view (rows: x then y) to every global view (columns: all x then all y);
    shape (2n, 2N). Each view's own column is -inf, and so is its positive's with
    ``mask_positives``.

    The shift and the -inf entries are one constant bias of a single fused matmul-add:
    masking afterwards in place would make autograd copy the whole (2n, 2N) gradient once
    per masked slice.
    """
    n, n_global = x.shape[0], x_all.shape[0]
    bias = x.new_full((2 * n, 2 * n_global), -1.0 / temperature)
    mask_self(bias[:n], offset, float("-inf"))
    mask_self(bias[n:], n_global + offset, float("-inf"))
    if mask_positives:
        mask_self(bias[:n], n_global + offset, float("-inf"))
        mask_self(bias[n:], offset, float("-inf"))
    return torch.addmm(bias, torch.cat([x, y]), torch.cat([x_all, y_all]).T, alpha=1.0 / temperature)


def log_sum_exp_others(local: torch.Tensor, everyone: torch.Tensor, offset: int, temperature: float,
                       chunk_size: Optional[int] = None) -> torch.Tensor:
    """log Σ_{j≠i} exp(<local_i, everyone_j>/τ) per local row (global row offset + i is
    left out), in row tiles of ``chunk_size`` when given."""

    if chunk_size is not None and chunk_size < local.shape[0]:
        return tiled_log_sum_exp(local, everyone, temperature, (offset,), chunk_size)
    return log_sum_exp(shifted_logits(local, everyone, temperature, offset), temperature)


def both_views_log_sum_exp(x, y, x_all, y_all, offset: int, temperature: float, mask_positives: bool,
                           chunk_size: Optional[int] = None) -> torch.Tensor:
    """Per row of :func:`both_views_logits` (rows x then y), its log-sum-exp; with
    ``chunk_size`` the rows are computed in tiles of that size, each view's on its own."""
    if chunk_size is None or chunk_size >= x.shape[0]:  # one tile: the whole block, as the other losses do
        return log_sum_exp(both_views_logits(x, y, x_all, y_all, offset, temperature, mask_positives), temperature)
    n_global = x_all.shape[0]
    columns = torch.cat([x_all, y_all])
    own_x, own_y = offset, n_global + offset  # the columns of a row's own view
    masked_x, masked_y = ((own_x, own_y), (own_y, own_x)) if mask_positives else ((own_x,), (own_y,))
    return torch.cat([
        tiled_log_sum_exp(x, columns, temperature, masked_x, chunk_size),
        tiled_log_sum_exp(y, columns, temperature, masked_y, chunk_size),
    ])
