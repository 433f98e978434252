"""Measurements of a trained encoder against the true latents: R² of the affine map,
the Procrustes error, the canonical correlations, and the representation metrics."""

from typing import Callable, Dict

import torch
import torch.nn.functional as F

from solo_plugins.identifiability.data import HeldOut
from solo_plugins.metrics.representation import alignment, effective_rank, uniformity, wasserstein_uniformity


def r2_linear(h_fit: torch.Tensor, z_fit: torch.Tensor, h: torch.Tensor, z: torch.Tensor) -> float:
    """R² (averaged over the d latent coordinates, as scikit-learn's ``r2_score``) of the
    least-squares affine map from ``h_fit`` to ``z_fit``, evaluated on (h, z)."""
    design = torch.cat([h_fit.double(), h_fit.new_ones(h_fit.shape[0], 1, dtype=torch.float64)], 1)
    coef = torch.linalg.solve(design.T @ design, design.T @ z_fit.double())  # normal equations, float64
    pred = torch.cat([h.double(), h.new_ones(h.shape[0], 1, dtype=torch.float64)], 1) @ coef
    z = z.double()
    residual = (z - pred).pow(2).sum(0)
    total = (z - z.mean(0)).pow(2).sum(0)
    return float((1 - residual / total).mean())


def procrustes_error(h_fit: torch.Tensor, z_fit: torch.Tensor, h: torch.Tensor, z: torch.Tensor) -> float:
    """Mean squared distance ||h R - z||² on (h, z) of the orthogonal R that best maps
    ``h_fit`` onto ``z_fit`` (all rows unit vectors: 0 is exact recovery up to a rotation or
    reflection, about 2 is unrelated directions)."""
    if h_fit.shape[1] != z_fit.shape[1]:
        raise ValueError("the embedding and the latents must have the same dimension for Procrustes")
    u, _, vh = torch.linalg.svd(h_fit.double().T @ z_fit.double())
    rotation = u @ vh
    return float((h.double() @ rotation - z.double()).pow(2).sum(1).mean())


def measure(h_fit, h, h_pos, data: HeldOut, loss: Callable, batch_size: int, pairwise_points: int,
            loss_batches: int) -> Dict[str, float]:
    """Every measurement of one trained encoder on its seed's held-out sample. ``h_fit``,
    ``h``, ``h_pos``: the encoder's outputs on ``x_fit``, ``x`` and ``x_pos``."""
    u_fit, u, u_pos = (F.normalize(t.float(), dim=1) for t in (h_fit, h, h_pos))
    finite = bool(torch.isfinite(u_fit).all() and torch.isfinite(u).all() and torch.isfinite(u_pos).all())
    if not finite:
        return {k: float("nan") for k in MEASUREMENTS if k != "loss_large"}
    sub = slice(0, pairwise_points)
    n_batches = min(loss_batches, u.shape[0] // batch_size)
    with torch.no_grad():
        batch_losses = [float(loss(h[i * batch_size:(i + 1) * batch_size], h_pos[i * batch_size:(i + 1) * batch_size]))
                        for i in range(n_batches)]
        out = {
            "r2": r2_linear(u_fit, data.z_fit, u, data.z),
            "procrustes": procrustes_error(u_fit, data.z_fit, u, data.z),
            "alignment": float(alignment(u, u_pos)),
            "uniformity": float(uniformity(u[sub])),
            "wasserstein": float(wasserstein_uniformity(u[sub])),
            "effective_rank": effective_rank(u),
            "loss_batch": sum(batch_losses) / len(batch_losses),
        }
    return out


MEASUREMENTS = ("r2", "procrustes", "alignment", "uniformity", "wasserstein", "effective_rank",
                "loss_batch", "loss_large")


def canonical_correlations(h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The canonical correlations between the columns of ``h`` (n, p) and ``z`` (n, q),
    largest first (min(p, q) values in [0, 1]), in float64."""
    qh, _ = torch.linalg.qr(h.double() - h.double().mean(0))
    qz, _ = torch.linalg.qr(z.double() - z.double().mean(0))
    return torch.linalg.svdvals(qh.T @ qz).clamp(0, 1)
