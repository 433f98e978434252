"""The finite-batch optimum of each loss, with no encoder in the way: M positive pairs
(z1_i, z2_i) on the unit sphere in d dimensions are themselves the parameters, optimized in
float64 from several random starts until the gradient vanishes.

The configurations known to minimize this family of losses (Koromilas et al., ICML 2024, and
the energy-minimization results behind them): for M <= d + 1 the regular simplex, whose Gram
matrix has every off-diagonal entry -1/(M-1), with each positive on its anchor (aligned); at
M = 2d the cross-polytope (±e_i; off-diagonal inner products 0 and -1), aligned. Elsewhere
what is found is reported without being called optimal.

The parameters are unconstrained vectors; every loss normalizes its inputs, so the points are
their directions (the loss is scale-invariant in each row, and L-BFGS on the raw vectors
converges to a stationary point on the sphere).
"""

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def regular_simplex(m: int, d: int, dtype=torch.float64) -> torch.Tensor:
    """(m, d) vertices of the regular simplex on the unit sphere (m <= d + 1): every pairwise
    inner product is -1/(m-1)."""
    if not 2 <= m <= d + 1:
        raise ValueError(f"a regular simplex of m points needs 2 <= m <= d + 1; got m={m}, d={d}")
    centred = torch.eye(m, dtype=dtype) - 1.0 / m  # the vertices e_i - mean in R^m, in an (m-1)-dim subspace
    basis = torch.linalg.svd(centred)[2][: m - 1]  # orthonormal basis of that subspace
    points = F.normalize(centred @ basis.T, dim=1)
    return torch.cat([points, points.new_zeros(m, d - (m - 1))], 1)


def cross_polytope(d: int, dtype=torch.float64) -> torch.Tensor:
    """(2d, d) points ±e_i."""
    eye = torch.eye(d, dtype=dtype)
    return torch.cat([eye, -eye])


def known_optimum(m: int, d: int) -> Optional[Tuple[str, torch.Tensor]]:
    """(name, points) of the configuration known to be optimal at (m, d), or None."""
    if m <= d + 1:
        return "simplex", regular_simplex(m, d)
    if m == 2 * d:
        return "cross-polytope", cross_polytope(d)
    return None


@dataclass
class Optimum:
    """The best configuration found from the random starts, and how the starts ended."""

    z1: torch.Tensor
    z2: torch.Tensor
    loss: float
    grad_norm: float  # of the best start, at its end
    iterations: int
    start_losses: List[float]
    stalled: int  # starts that ended with the gradient above the stall threshold


def optimize(loss: Loss, m: int, d: int, seed: int, tolerance: float = 1e-9, max_iterations: int = 5000,
             aligned: bool = False) -> Tuple[torch.Tensor, torch.Tensor, float, float, int]:
    """One start: L-BFGS (strong Wolfe) on (2, m, d) float64 vectors drawn from a standard
    normal with ``seed``; stops when the gradient's largest entry is below ``tolerance``.
    With ``aligned`` the positives are the anchors themselves (one (m, d) set of vectors).
    Returns (z1, z2, loss, gradient's largest entry, iterations), the points normalized."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, m, d, generator=g, dtype=torch.float64)
    x = (x[:1] if aligned else x).clone().requires_grad_()
    second = 0 if aligned else 1
    opt = torch.optim.LBFGS([x], lr=1, max_iter=max_iterations, tolerance_grad=tolerance, tolerance_change=0,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss(x[0], x[second])
        value.backward()
        return value

    opt.step(closure)
    x.grad = None
    value = loss(x[0], x[second])
    value.backward()
    iterations = opt.state[opt._params[0]].get("n_iter", 0)
    z = F.normalize(x.detach(), dim=2)
    return z[0], z[second], float(value), float(x.grad.detach().abs().max()), int(iterations)


def best_of_starts(loss: Loss, m: int, d: int, starts: int, tolerance: float = 1e-9,
                   max_iterations: int = 5000, stall: float = 1e-6, aligned: bool = False) -> Optimum:
    """The best of ``starts`` runs of :func:`optimize`; a start whose gradient's largest entry
    is still above ``stall`` at its end counts as stalled."""
    results = [optimize(loss, m, d, 1000 * m + 17 * d + s, tolerance, max_iterations, aligned) for s in range(starts)]
    best = min(results, key=lambda r: r[2])
    return Optimum(best[0], best[1], best[2], best[3], best[4], [r[2] for r in results],
                   sum(r[3] > stall for r in results))


def distinct_values(values: torch.Tensor, tolerance: float = 1e-4) -> List[float]:
    """The distinct values of a 1-d tensor, merging those closer than ``tolerance``
    (each reported as its cluster's mean)."""
    out: List[List[float]] = []
    for v in sorted(values.tolist()):
        if out and v - out[-1][-1] <= tolerance:
            out[-1].append(v)
        else:
            out.append([v])
    return [sum(c) / len(c) for c in out]


def describe(z1: torch.Tensor, z2: torch.Tensor) -> Dict:
    """Measurements of a configuration: the alignment of positives (mean ||z1_i - z2_i||²),
    the distinct off-diagonal inner products of the anchors z1, their minimum pairwise
    distance, and whether the anchors coincide anywhere (collapse)."""
    m = z1.shape[0]
    gram = z1 @ z1.T
    off = gram[~torch.eye(m, dtype=torch.bool)]
    d2 = (2 - 2 * off).clamp_min(0)
    return {
        "alignment": float((z1 - z2).pow(2).sum(1).mean()),
        "gram_values": distinct_values(off),
        "min_distance": float(d2.min().sqrt()),
        "collapsed": bool(d2.min() < 1e-6),
    }


def compare(loss: Loss, found: Optimum, m: int, d: int, tolerance: float = 1e-6) -> Dict:
    """The found optimum against the known one at (m, d), where there is one: the known
    configuration's loss (aligned), and whether the found one is it (aligned to ``tolerance``,
    one off-diagonal value equal to the known one's to ``tolerance`` in each)."""
    out = {**describe(found.z1, found.z2), "loss": found.loss}
    known = known_optimum(m, d)
    if known is None:
        return {**out, "known": "", "known_loss": math.nan, "is_known": None}
    name, points = known
    with torch.no_grad():
        known_loss = float(loss(points, points))
    expected = distinct_values((points @ points.T)[~torch.eye(m, dtype=torch.bool)])
    found_values = out["gram_values"]
    same_values = len(found_values) == len(expected) and all(
        abs(a - b) <= tolerance ** 0.5 for a, b in zip(found_values, expected))
    is_known = out["alignment"] <= tolerance and same_values and found.loss <= known_loss + tolerance
    return {**out, "known": name, "known_loss": known_loss, "is_known": bool(is_known)}
