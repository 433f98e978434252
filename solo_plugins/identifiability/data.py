"""The latent-recovery data process: latents uniform on S^(d-1), von Mises-Fisher positives,
cl-ica's invertible mixing, and each seed's held-out sample."""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def generator_for(seed: int, stream: int) -> torch.Generator:
    """An independent generator per (seed, purpose): 0 mixing, 1 encoder init, 2 training
    data, 3 held-out data."""
    return torch.Generator().manual_seed(1_000_003 * int(seed) + 7919 * int(stream) + 17)


def sample_sphere(n: int, d: int, generator: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    """(n, d) points uniform on the unit sphere S^(d-1)."""
    return F.normalize(torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1).to(dtype)


def sample_vmf(mu: torch.Tensor, kappa: float, generator: torch.Generator) -> torch.Tensor:
    """One draw from the von Mises-Fisher distribution around each row of ``mu`` (unit rows,
    (n, d), d >= 2) with concentration ``kappa`` > 0, by Wood's (1994) rejection sampler.

    The cosine w = <mu, z'> is drawn from its marginal density ∝ exp(kappa·w)(1 - w²)^((d-3)/2)
    by rejection from a Beta((d-1)/2, (d-1)/2) proposal (drawn as a ratio of chi-square
    variables, so that the generator fixes every draw); the direction orthogonal to mu is
    uniform.
    """
    if kappa <= 0:
        raise ValueError(f"kappa must be > 0; got {kappa}")
    n, d = mu.shape
    if d < 2:
        raise ValueError(f"the latent dimension must be >= 2; got {d}")
    mu64 = mu.to(torch.float64)
    m = d - 1
    b = (-2 * kappa + math.sqrt(4 * kappa**2 + m**2)) / m
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m * math.log(1 - x0**2)
    w = torch.empty(n, dtype=torch.float64)
    todo = torch.arange(n)
    while todo.numel():
        k = todo.numel()
        chi_a = torch.randn(k, m, generator=generator, dtype=torch.float64).pow(2).sum(1)
        chi_b = torch.randn(k, m, generator=generator, dtype=torch.float64).pow(2).sum(1)
        beta = chi_a / (chi_a + chi_b)
        u = torch.rand(k, generator=generator, dtype=torch.float64)
        cand = (1 - (1 + b) * beta) / (1 - (1 - b) * beta)
        accept = kappa * cand + m * torch.log(1 - x0 * cand) - c >= torch.log(u)
        w[todo[accept]] = cand[accept]
        todo = todo[~accept]
    v = torch.randn(n, d, generator=generator, dtype=torch.float64)
    v = F.normalize(v - (v * mu64).sum(1, keepdim=True) * mu64, dim=1)
    z = w[:, None] * mu64 + torch.sqrt((1 - w**2).clamp_min(0))[:, None] * v
    return z.to(mu.dtype)


def mixing_weights(d: int, layers: int, generator: torch.Generator, pool: int = 10_000,
                   ratio: float = 0.25) -> torch.Tensor:
    """(layers, d, d) float64 weights of cl-ica's invertible MLP: uniform in [-1, 1], columns
    scaled to unit norm, each kept only when its condition number is at most the ``ratio``
    quantile of ``pool`` such matrices."""
    def draw(k):
        a = torch.rand(k, d, d, generator=generator, dtype=torch.float64) * 2 - 1
        return a / a.norm(dim=1, keepdim=True)

    threshold = torch.linalg.cond(draw(pool)).sort().values[int(pool * ratio)]
    kept = []
    while len(kept) < layers:
        a = draw(64)
        kept += list(a[torch.linalg.cond(a) <= threshold])
    return torch.stack(kept[:layers])


MIXING_SLOPE = 0.2


def mix(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """x = g(z): ``z`` (..., n, d), ``weights`` (..., layers, d, d) as from
    :func:`mixing_weights` (a leading axis per seed); each layer is z Wᵀ, with leaky ReLU
    between layers."""
    x = z
    layers = weights.shape[-3]
    for i in range(layers):
        x = x @ weights[..., i, :, :].transpose(-1, -2).to(x.dtype)
        if i < layers - 1:
            x = F.leaky_relu(x, MIXING_SLOPE)
    return x


def unmix(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """g⁻¹(x): the inverse of :func:`mix` (for tests: g is invertible)."""
    z = x
    layers = weights.shape[-3]
    for i in reversed(range(layers)):
        if i < layers - 1:
            z = torch.where(z >= 0, z, z / MIXING_SLOPE)
        z = z @ torch.linalg.inv(weights[..., i, :, :]).transpose(-1, -2).to(z.dtype)
    return z


@dataclass
class HeldOut:
    """A seed's held-out sample: latents to fit the linear and orthogonal maps on, test latents
    with positives, and their observations."""

    z_fit: torch.Tensor
    x_fit: torch.Tensor
    z: torch.Tensor
    z_pos: torch.Tensor
    x: torch.Tensor
    x_pos: torch.Tensor


def held_out(seed: int, d: int, kappa: float, weights: torch.Tensor, n: int) -> HeldOut:
    g = generator_for(seed, 3)
    z_fit = sample_sphere(n, d, g)
    z = sample_sphere(n, d, g)
    z_pos = sample_vmf(z, kappa, g)
    return HeldOut(z_fit, mix(z_fit, weights), z, z_pos, mix(z, weights), mix(z_pos, weights))
