"""KCL: Kernel Contrastive Learning (Koromilas et al., ICML 2024)."""

import warnings
from typing import Callable, Dict, Optional, Tuple

import torch

from solo_plugins.distributed import global_mean, resolve_gather
from solo_plugins.losses._common import (
    LossTerms,
    check_pair,
    full_precision,
    mask_self,
    self_masked_bias,
    normalized_and_gathered,
    terms,
)
from solo_plugins.losses._tiled import check_chunk_size, per_row, tiled_log_sum_exp

KERNELS = ("gaussian", "log", "imq", "riesz", "gaussian_riesz")
#: Kernels whose parameter is the scale ``t`` (the paper's t) ...
SCALE_KERNELS = ("gaussian", "log", "imq")
#: ... and those whose parameter is the Riesz exponent ``s``.
RIESZ_KERNELS = ("riesz", "gaussian_riesz")
DEFAULT_T = 2.0

#: Below this squared distance the Riesz kernel sees a smooth floor instead of d². On the
#: unit sphere a float32 Gram matrix gives d² = 2 - 2<a, b> only to about 1e-7, so the
#: Riesz kernels compute d² from differences, and d^(-s) would be infinite for coinciding
#: embeddings (collapse, common at initialisation). The floor g(x) = (x² + ε²) / (2ε) for
#: x < ε (x itself above) is continuous with its slope at ε: a pair contributes at most
#: (ε/2)^(-s/2), and nearly coinciding pairs keep a gradient that pushes them apart
#: (slope x/ε), where a hard max would give none. Pairs with d² >= ε are computed exactly.
RIESZ_EPS = 1e-6

# Squared distance written on the self-pairs before the kernel is applied: the largest
# distance on the sphere, where every kernel is finite. Its known value is subtracted again.
_SELF_D2 = 4.0

_Kernel = Callable[[torch.Tensor], torch.Tensor]


def _gaussian(t: float) -> _Kernel:
    return lambda d2: torch.exp(-t * d2)


def _log(t: float, scale: float) -> _Kernel:
    return lambda d2: -scale * torch.log1p(t * d2)


def _imq(t: float) -> _Kernel:
    return lambda d2: t * torch.rsqrt(t * t + d2)


def smooth_floor(d2: torch.Tensor, eps: float = RIESZ_EPS) -> torch.Tensor:
    """d² above ``eps``; below it (d²² + eps²) / (2 eps), which meets it with equal slope."""
    return torch.where(d2 < eps, (d2.square() + eps * eps) / (2 * eps), d2)


def _riesz(s: float) -> _Kernel:
    sign = 1.0 if s > 0 else -1.0
    return lambda d2: sign * smooth_floor(d2).pow(-s / 2)


def kernel_parameter(kernel: str, *, t: Optional[float] = None, s: Optional[float] = None,
                     gamma: float = 16.0, stacklevel: int = 3) -> float:
    """The kernel's parameter, from the keyword that names it at the call site: ``t`` (the
    scale, > 0) for gaussian, log and imq, ``s`` (the Riesz exponent) for riesz and
    gaussian_riesz. Raises ValueError, naming the argument and what it accepts, for settings
    KCL rejects. ``t`` given for a Riesz kernel still works in 0.4, with a FutureWarning.

    Example:
        >>> kernel_parameter("gaussian"), kernel_parameter("riesz", s=-1.0)
        (2.0, -1.0)
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0; got {gamma!r}")
    if kernel in SCALE_KERNELS:
        if s is not None:
            raise ValueError(f"s is the Riesz exponent of kernel='riesz' and 'gaussian_riesz'; kernel={kernel!r} "
                             f"takes t (its scale, > 0); got s={s!r}")
        t = DEFAULT_T if t is None else t
        if not t > 0:
            raise ValueError(f"t (the scale of kernel={kernel!r}) must be > 0; got {t!r}")
        return float(t)
    if t is not None:
        if s is not None:
            raise ValueError(f"kernel={kernel!r} takes s (the Riesz exponent); give s alone, not t={t!r} too")
        warnings.warn(f"t for kernel={kernel!r} is renamed s (the Riesz exponent): pass s={t!r}; t will be "
                      "refused for the Riesz kernels in 0.5", FutureWarning, stacklevel=stacklevel)
        s = t
    if s is None:
        raise ValueError(f"kernel={kernel!r} needs s, the Riesz exponent (s < 0 for kernel='riesz'; any s != 0 "
                         "for 'gaussian_riesz')")
    if s == 0 or s != s:
        raise ValueError(f"s (the Riesz exponent) must be non-zero for kernel={kernel!r}; got {s!r}")
    if kernel == "riesz" and s > 0:
        raise ValueError(
            f"kernel='riesz' with s > 0 (got s={s!r}) has an alignment term -2·d^(-s) with no lower bound: "
            "the loss falls without limit as a positive pair's distance d goes to 0, and its minimum is set by "
            "the distance floor, not by the embedding. Use s < 0 (e.g. s=-1.0), or kernel='gaussian_riesz', "
            "whose alignment is gaussian and whose energy takes s > 0")
    return float(s)


def kernels(kernel: str, t: float) -> Tuple[_Kernel, _Kernel]:
    """The (alignment, uniformity) kernels, as functions of the squared distance d²."""
    table: Dict[str, Tuple[_Kernel, _Kernel]] = {
        "gaussian": (_gaussian(t), _gaussian(t)),
        "log": (_log(t, 1.0), _log(t, 0.5)),
        "imq": (_imq(t), _imq(t)),
        "riesz": (_riesz(t), _riesz(t)),
        "gaussian_riesz": (_gaussian(2.0), _riesz(t)),
    }
    return table[kernel]


#: Elements of the (rows, N, D) difference block that :func:`squared_distances` lets
#: torch.cdist's backward hold at a time (64 MiB in float32; at N = 1,024 and D = 128 the
#: unblocked backward holds 512 MiB, at N = 4,096 8 GiB).
DIFFERENCE_BLOCK = 1 << 24

_FROM_DIFFERENCES = "donot_use_mm_for_euclid_dist"


class _SquaredDistances(torch.autograd.Function):
    """torch.cdist(a, b)² from differences, with cdist's backward run in row blocks: on CUDA
    it holds an (n, N, D) buffer, here one of (rows, N, D) at a time."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        d = torch.cdist(a, b, compute_mode=_FROM_DIFFERENCES)
        ctx.save_for_backward(a, b, d)
        return d.square()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        a, b, d = ctx.saved_tensors
        grad_d = 2 * d * grad  # d(d²) = 2d·dd; cdist's backward gives 0 where points coincide
        grad_a = torch.empty_like(a) if ctx.needs_input_grad[0] else None
        grad_b = torch.zeros_like(b) if ctx.needs_input_grad[1] else None
        for rows in _row_blocks(a, b):
            g, block, dist = grad_d[rows].contiguous(), a[rows].contiguous(), d[rows].contiguous()
            if grad_a is not None:
                grad_a[rows] = torch.ops.aten._cdist_backward(g, block, b, 2.0, dist)
            if grad_b is not None:
                grad_b += torch.ops.aten._cdist_backward(g.T.contiguous(), b, block, 2.0, dist.T.contiguous())
        return grad_a, grad_b


def _row_blocks(a: torch.Tensor, b: torch.Tensor):
    step = max(1, DIFFERENCE_BLOCK // max(1, b.shape[0] * b.shape[1]))
    return [slice(start, start + step) for start in range(0, a.shape[0], step)]


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, N) squared distances |a_i - b_j|² computed from differences (exact for nearly
    coinciding points, unlike 2 - 2<a, b>); its backward needs O(n·N) memory plus a fixed
    block, whatever D."""
    return _SquaredDistances.apply(a, b)


def _mean_energy_to_others(local, everyone, offset: int, kernel: _Kernel, exact_d2: bool = False) -> torch.Tensor:
    """(1/(N-1)) Σ_{j≠i} K(|local_i - everyone_j|²), one value per local row. With
    ``exact_d2`` the distances come from differences, not from the Gram matrix, so that
    nearly coinciding points keep their (tiny) distance."""
    if exact_d2:
        d2 = squared_distances(local, everyone)
    else:
        d2 = (2 - 2 * (local @ everyone.T)).clamp_min(0)
    mask_self(d2, offset, _SELF_D2)
    self_energy = kernel(d2.new_full((), _SELF_D2))
    return (kernel(d2).sum(dim=1) - self_energy) / (everyone.shape[0] - 1)


def _mean_gaussian_energy_to_others(local, everyone, offset: int, t: float) -> torch.Tensor:
    """The gaussian case of :func:`_mean_energy_to_others` in fewer N² passes: on the unit
    sphere exp(-t·d²) = exp(2t<a, b> - 2t), one fused matmul-add, and the self-pairs get
    -inf so that they contribute exactly 0."""
    bias = self_masked_bias(local, everyone.shape[0], offset, -2 * t)
    logits = torch.addmm(bias, local, everyone.T, alpha=2 * t)
    return torch.exp(logits).sum(dim=1) / (everyone.shape[0] - 1)


def energy_to_others(local, everyone, offset: int, kernel: str, t: float, chunk_size: Optional[int] = None) -> torch.Tensor:
    """(1/(N-1)) Σ_{j≠i} k(|local_i - everyone_j|²) with KCL's uniformity kernel, per local row;
    in row tiles of ``chunk_size`` when given."""
    tiled = chunk_size is not None and chunk_size < local.shape[0]
    if kernel == "gaussian":
        if not tiled:
            return _mean_gaussian_energy_to_others(local, everyone, offset, t)
        # Σ_j exp(2t<a, b_j> - 2t) = exp(log Σ_j exp(<a, b_j>/τ) - 2t) with τ = 1/(2t)
        lse = tiled_log_sum_exp(local, everyone, 1.0 / (2 * t), (offset,), chunk_size)
        return torch.exp(lse - 2 * t) / (everyone.shape[0] - 1)
    exact, uniformity_kernel = kernel in ("riesz", "gaussian_riesz"), kernels(kernel, t)[1]

    def rows(tile, start, columns):
        return _mean_energy_to_others(tile, columns, offset + start, uniformity_kernel, exact)

    return per_row(rows, local, everyone, chunk_size)


@full_precision
def kcl_loss_terms(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    kernel: str = "gaussian",
    t: Optional[float] = None,
    gamma: float = 16.0,
    s: Optional[float] = None,
    chunk_size: Optional[int] = None,
    gather_distributed: Optional[bool] = None,
) -> LossTerms:
    """KCL's loss with its alignment and energy parts; see :func:`kcl_loss_func`.

    Example:
        >>> import torch
        >>> loss, alignment, uniformity = kcl_loss_terms(torch.randn(8, 16), torch.randn(8, 16))
        >>> bool(torch.allclose(loss, alignment + uniformity))
        True
    """
    check_pair(z1, z2)
    t = kernel_parameter(kernel, t=t, s=s, gamma=gamma, stacklevel=4)
    check_chunk_size(chunk_size)
    align_kernel = kernels(kernel, t)[0]
    gather = resolve_gather(gather_distributed)
    x, y, x_all, y_all, offset = normalized_and_gathered(z1, z2, gather=gather)
    n_global = x_all.shape[0]

    alignment = global_mean(-2 * align_kernel((x - y).square().sum(dim=1)), n_global, gathered=gather)
    energy = (energy_to_others(x, x_all, offset, kernel, t, chunk_size)
              + energy_to_others(y, y_all, offset, kernel, t, chunk_size))
    return terms(alignment, gamma * global_mean(energy, n_global, gathered=gather))


def kcl_loss_func(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    kernel: str = "gaussian",
    t: Optional[float] = None,
    gamma: float = 16.0,
    s: Optional[float] = None,
    chunk_size: Optional[int] = None,
    gather_distributed: Optional[bool] = None,
) -> torch.Tensor:
    """Kernel Contrastive Learning loss.

    For normalized views x, y and squared distances d² = ‖a - b‖²:

        -2 · mean_i K_A(x_i, y_i) + γ · [ mean_{i≠j} K_U(x_i, x_j) + mean_{i≠j} K_U(y_i, y_j) ]

    Kernels, each with its parameter named at the call site (``t`` a scale, ``s`` an exponent):

    - ``gaussian`` (t > 0): K_A = K_U = exp(-t·d²)
    - ``log`` (t > 0): K_A = -log(t·d² + 1), K_U = -½·log(t·d² + 1)
    - ``imq`` (t > 0): K_A = K_U = t / sqrt(t² + d²)
    - ``riesz`` (s < 0): K = -d^(-s); d² is floored at :data:`RIESZ_EPS` (1e-6) so that
      coinciding embeddings give finite values and gradients. s > 0 is refused: its
      alignment term -2·d^(-s) has no lower bound, so the loss's minimum would be the floor's.
    - ``gaussian_riesz`` (s ≠ 0): K_U is riesz with exponent s (d^(-s) for s > 0), K_A is
      gaussian with t = 2

    The expected value of this loss does not depend on the batch size (the paper's result),
    unlike InfoNCE's. With ``gather_distributed=True`` the energies run over the global batch.

    Args:
        z1: (N, D) projections of the first views; not necessarily normalized.
        z2: (N, D) projections of the second views; row i pairs with row i of z1.
        kernel: one of ``gaussian``, ``log``, ``imq``, ``riesz``, ``gaussian_riesz``.
        t: the scale of the gaussian, log and imq kernels (> 0; default 2.0), the paper's t.
        gamma: γ >= 0, the weight of the energy (uniformity) term.
        s: the Riesz exponent of ``riesz`` (< 0) and ``gaussian_riesz`` (≠ 0); no default.
            Until 0.5, ``t`` given for these kernels is taken as s with a FutureWarning.
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
        >>> loss = kcl_loss_func(z1, z2, kernel="gaussian", t=2.0, gamma=16.0)
        >>> loss.shape, loss.dtype
        (torch.Size([]), torch.float32)

    Reference:
        Koromilas et al. Bridging Mini-Batch and Asymptotic Analysis in Contrastive
        Learning: From InfoNCE to Kernel-Based Losses. ICML 2024.
        https://arxiv.org/abs/2405.18045
    """
    return kcl_loss_terms(z1, z2, kernel=kernel, t=t, gamma=gamma, s=s, chunk_size=chunk_size,
                          gather_distributed=gather_distributed).loss


class KCLLoss(torch.nn.Module):
    """Module form of :func:`kcl_loss_func`.

    Shapes: ``z1``, ``z2``: (N, D), this rank's rows; with ``gather_distributed=True`` the global
    batch (over all ranks) needs at least 2, else the local one does; output: a scalar.

    Example:
        >>> import torch
        >>> backbone_and_projector = torch.nn.Linear(32, 16)
        >>> view1, view2 = torch.randn(8, 32), torch.randn(8, 32)
        >>> criterion = KCLLoss(kernel="gaussian", t=2.0, gamma=16.0)
        >>> loss = criterion(backbone_and_projector(view1), backbone_and_projector(view2))
        >>> loss.backward()

    Reference: Koromilas et al., ICML 2024, https://arxiv.org/abs/2405.18045
    """

    def __init__(self, *, kernel: str = "gaussian", t: Optional[float] = None, gamma: float = 16.0,
                 s: Optional[float] = None, chunk_size: Optional[int] = None,
                 gather_distributed: Optional[bool] = None):
        super().__init__()
        self.gather_distributed = gather_distributed
        parameter = kernel_parameter(kernel, t=t, s=s, gamma=gamma)
        check_chunk_size(chunk_size)
        self.kernel, self.gamma, self.chunk_size = kernel, gamma, chunk_size
        self.t, self.s = (parameter, None) if kernel in SCALE_KERNELS else (None, parameter)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return kcl_loss_func(z1, z2, kernel=self.kernel, t=self.t, gamma=self.gamma, s=self.s,
                             chunk_size=self.chunk_size,
                             gather_distributed=self.gather_distributed)
