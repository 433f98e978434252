"""How well a mini-batch gradient estimates the full-set gradient, against batch size.

The paper shows that KCL's expected mini-batch loss does not depend on the batch size and
leaves open how its gradient estimate behaves at small batches. Here the embeddings are a
fixed set of N positive pairs and the loss is differentiated with respect to a shared
linear map W (D x D, at the identity) applied to both views, so that every mini-batch
gradient and the full-set gradient live in the same space. For each batch size b, M
batches of b pairs are drawn (without replacement within a batch) and

- relative bias: |mean_M g_b - g_N| / |g_N|, where g_N is the gradient of the loss on all
  N pairs at once; the Monte-Carlo part of it is removed (see ``net_bias``);
- relative std: sqrt(E|g_b - E g_b|^2) / |g_N|, the spread of one batch's gradient.

A U-statistic loss (KCL) has E g_b = g_N at every b >= 2: its bias is Monte-Carlo noise
alone. A log-of-a-sum loss (InfoNCE, DCL, DHEL) is biased at small b.
"""

from typing import Callable, Dict, Sequence

import torch

from solo_plugins.analysis.loss_vs_batch_size import DEFAULT_LOSSES  # the shipped settings


def clustered_pairs(n: int = 2048, dim: int = 32, clusters: int = 10, seed: int = 0):
    """N positive pairs around ``clusters`` centres: z = centre + noise, its positive a
    noisy copy of z (the same shape of data the loss sees on a labelled image set)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=gen)
    z1 = centres[torch.randint(clusters, (n,), generator=gen)] + 0.7 * torch.randn(n, dim, generator=gen)
    z2 = z1 + 0.4 * torch.randn(n, dim, generator=gen)
    return z1.double(), z2.double()


def _gradient(loss_fn: Callable, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    w = torch.eye(z1.shape[1], dtype=z1.dtype, device=z1.device, requires_grad=True)
    (grad,) = torch.autograd.grad(loss_fn(z1 @ w, z2 @ w), w)
    return grad.flatten()


def gradient_statistics(
    z1: torch.Tensor,
    z2: torch.Tensor,
    batch_sizes: Sequence[int],
    losses: Dict[str, Callable] = DEFAULT_LOSSES,
    batches: int = 256,
    seed: int = 0,
) -> Dict[str, Dict[int, Dict[str, float]]]:
    """For each loss and batch size: ``bias`` (raw relative bias of the mean of ``batches``
    mini-batch gradients), ``noise`` (its expected Monte-Carlo part, sqrt(tr Cov / M) / |g_N|),
    ``net_bias`` (sqrt(max(0, bias² - noise²)), the bias net of Monte-Carlo noise) and
    ``std`` (relative spread of one mini-batch gradient)."""
    n = z1.shape[0]
    out: Dict[str, Dict[int, Dict[str, float]]] = {}
    for name, loss_fn in losses.items():
        full = _gradient(loss_fn, z1, z2)
        scale = float(full.norm())
        gen = torch.Generator().manual_seed(seed)
        out[name] = {}
        for b in batch_sizes:
            if not 2 <= b <= n:
                raise ValueError(f"batch sizes must be in [2, {n}]; got {b}")
            # drawn on the CPU (the same batches on any device), copied over once
            picks = torch.stack([torch.randperm(n, generator=gen)[:b] for _ in range(batches)]).to(z1.device)
            grads = torch.stack([_gradient(loss_fn, z1[p], z2[p]) for p in picks])
            mean = grads.mean(dim=0)
            trace_cov = float((grads - mean).square().sum(dim=1).mean()) * batches / (batches - 1)
            bias = float((mean - full).norm()) / scale
            noise = (trace_cov / batches) ** 0.5 / scale
            out[name][b] = {
                "bias": bias,
                "noise": noise,
                "net_bias": max(0.0, bias**2 - noise**2) ** 0.5,
                "std": trace_cov**0.5 / scale,
            }
    return out


def first_batch_size_below(stats: Dict[int, Dict[str, float]], threshold: float = 0.05):
    """The smallest batch size from which the net relative bias stays under ``threshold``."""
    sizes = sorted(stats)
    for i, b in enumerate(sizes):
        if all(stats[c]["net_bias"] < threshold for c in sizes[i:]):
            return b
    return None
