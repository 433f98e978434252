"""Representation metrics of the paper's analysis: alignment and uniformity (Wang & Isola,
ICML 2020), the Wasserstein distance to uniformity (Koromilas et al., ICML 2024), rank and
effective rank (RankMe, Garrido et al., ICML 2023). Torch only; any device."""

import math
from functools import lru_cache
from typing import Dict, Optional

import torch
import torch.nn.functional as F


def _unit(z: torch.Tensor) -> torch.Tensor:
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"embeddings must be a 2-D tensor (n, d) with n >= 2; got shape {tuple(z.shape)}")
    return F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2) -> torch.Tensor:
    """E ||x̂ - ŷ||^α over positive pairs (rows of x and y); lower is better. (n, d) each.

    Example:
        >>> import torch
        >>> x = torch.randn(100, 8)
        >>> float(alignment(x, 2 * x))  # the same directions
        0.0
        >>> bool(alignment(x, -x) == 4)  # opposite directions: ||x̂ - (-x̂)||² = 4
        True
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape; got {tuple(x.shape)} and {tuple(y.shape)}")
    return (_unit(x) - _unit(y)).norm(dim=1).pow(alpha).mean()


def _upper_pairs(n: int, device) -> torch.Tensor:
    return torch.triu_indices(n, n, offset=1, device=device)


def uniformity(x: torch.Tensor, t: float = 2) -> torch.Tensor:
    """log E_{i<j} exp(-t ||x̂_i - x̂_j||²); lower is more uniform. (n, d) input.

    Example:
        >>> import torch
        >>> spread, collapsed = torch.randn(500, 16), torch.ones(500, 16)
        >>> bool(uniformity(spread) < uniformity(collapsed)), float(uniformity(collapsed))
        (True, 0.0)
    """
    u = _unit(x)
    i, j = _upper_pairs(u.shape[0], u.device)
    d2 = (2 - 2 * (u @ u.T)[i, j]).clamp_min(0)
    return torch.logsumexp(-t * d2, dim=0) - math.log(d2.numel())


def sphere_inner_product_quantiles(d: int, probs: torch.Tensor, grid: int = 1 << 17) -> torch.Tensor:
    """Quantiles of <u, v> for independent uniform u, v on the sphere S^{d-1}, where
    (s + 1)/2 ~ Beta((d-1)/2, (d-1)/2).

    Written as s = -cos θ, θ has density ∝ sin(θ)^(d-2) on [0, π], smooth for every d >= 2
    (no endpoint singularity, unlike the density in s for d = 2), so its CDF is integrated
    on a fine grid in float64 (error ~1e-9) and inverted by linear interpolation.

    Example:
        >>> import torch
        >>> q = sphere_inner_product_quantiles(3, torch.tensor([0.25, 0.5, 0.75]))
        >>> [round(v, 6) for v in q.tolist()]  # on S², <u, v> is uniform on [-1, 1]
        [-0.5, 0.0, 0.5]
    """
    if d < 2:
        raise ValueError(f"the embedding dimension d must be >= 2; got {d}")
    theta = torch.linspace(0, math.pi, grid + 1, dtype=torch.float64)
    log_density = (d - 2) * torch.log(torch.sin(theta).clamp_min(1e-300)) if d > 2 else torch.zeros_like(theta)
    density = torch.exp(log_density - log_density.max())
    cdf = torch.cat([density.new_zeros(1), torch.cumsum((density[1:] + density[:-1]) / 2, 0)])
    cdf = cdf / cdf[-1]
    p = probs.to(torch.float64).cpu().clamp(0, 1)
    k = torch.searchsorted(cdf, p).clamp(1, grid)
    lo, hi = cdf[k - 1], cdf[k]
    frac = torch.where(hi > lo, (p - lo) / (hi - lo), torch.zeros_like(p))
    angle = theta[k - 1] + frac * (theta[k] - theta[k - 1])
    return -torch.cos(angle)


def wasserstein_uniformity(
    z: torch.Tensor, max_points: Optional[int] = None, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """1-D Wasserstein-1 distance between the off-diagonal inner products of the normalized
    embeddings and the inner products of uniform points on the sphere of the same dimension.

    0 for perfectly uniform embeddings; embeddings confined to a k-dim subspace sit at the
    distance between the d- and k-dimensional inner-product laws. The reference is taken
    from exact quantiles (no sampling), for any d.

    Args:
        z: (n, d) embeddings, any device.
        max_points: use a random subset of this many rows (the pairs grow as n²).
        generator: for the subset.

    Example:
        >>> import torch
        >>> uniform = torch.randn(2000, 16)
        >>> collapsed = torch.randn(2000, 16) * torch.tensor([1.0] * 2 + [0.0] * 14)  # in a 2-d subspace
        >>> bool(wasserstein_uniformity(uniform) < 0.01 < wasserstein_uniformity(collapsed))
        True
    """
    u = _unit(z)
    if max_points is not None and u.shape[0] > max_points:
        keep = torch.randperm(u.shape[0], generator=generator)[:max_points].to(u.device)
        u = u[keep]
    i, j = _upper_pairs(u.shape[0], u.device)
    empirical = torch.sort((u @ u.T)[i, j]).values.double()
    reference = _uniform_reference(u.shape[1], empirical.numel()).to(empirical.device)
    return (empirical - reference).abs().mean()


@lru_cache(maxsize=16)
def _uniform_reference(d: int, m: int) -> torch.Tensor:
    """The m mid-point quantiles of the uniform law's inner products on S^(d-1) (CPU float64;
    kept, since a study measures many embeddings of one size)."""
    probs = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    return sphere_inner_product_quantiles(d, probs)


#: The official DHEL-KCL code's rank tolerance: ``np.linalg.matrix_rank(np.cov(z.T), tol=1e-5)``.
RANK_TOL = 1e-5


def rank(z: torch.Tensor, tol: float = RANK_TOL) -> int:
    """Rank of the embeddings as the paper computes it: the number of singular values of
    their (d, d) float64 covariance (normalized by n - 1, as ``np.cov``) above the absolute
    tolerance ``tol`` (1e-5). It depends on the embeddings' scale, like the paper's. The
    covariance is formed where ``z`` lives; its small SVD runs on the CPU (float64 SVD is
    slow on most accelerators).

    Example:
        >>> import torch
        >>> rank(torch.randn(100, 3) @ torch.randn(3, 16))  # 16-d embeddings in a 3-d subspace
        3
    """
    if z.dim() != 2:
        raise ValueError(f"embeddings must be a 2-D tensor (n, d); got shape {tuple(z.shape)}")
    c = z.detach().to(torch.float64)
    c = c - c.mean(dim=0, keepdim=True)
    cov = c.T @ c / max(c.shape[0] - 1, 1)
    return int((torch.linalg.svdvals(cov.cpu()) > tol).sum())


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe: exp of the entropy of the normalized singular values of the (n, d) embeddings;
    between 1 and min(n, d), near k for rank-k data.

    Example:
        >>> import torch
        >>> round(effective_rank(torch.eye(4)), 3)  # four equal singular values
        4.0
    """
    if z.dim() != 2:
        raise ValueError(f"embeddings must be a 2-D tensor (n, d); got shape {tuple(z.shape)}")
    s = torch.linalg.svdvals(z.to(torch.promote_types(z.dtype, torch.float32)))
    p = s / s.sum() + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))


def representation_metrics(feats: torch.Tensor, z: torch.Tensor, max_samples: int) -> Dict[str, float]:
    """Uniformity, Wasserstein distance to uniformity, rank and effective rank of the first
    ``max_samples`` rows of backbone features and projections, keyed ``feats_*`` / ``z_*``.

    Example:
        >>> import torch
        >>> metrics = representation_metrics(torch.randn(64, 32), torch.randn(64, 8), max_samples=64)
        >>> sorted(metrics)[:3], metrics["z_rank"]
        (['feats_effective_rank', 'feats_rank', 'feats_uniformity'], 8.0)
    """
    out = {}
    for name, emb in (("feats", feats), ("z", z)):
        emb = emb[:max_samples]
        out[f"{name}_uniformity"] = float(uniformity(emb))
        out[f"{name}_wasserstein_uniformity"] = float(wasserstein_uniformity(emb))
        out[f"{name}_rank"] = float(rank(emb))
        out[f"{name}_effective_rank"] = effective_rank(emb)
    return out
