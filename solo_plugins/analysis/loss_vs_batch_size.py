"""Expected loss against batch size on fixed embeddings.

The paper's result: KCL's expected mini-batch loss does not depend on the batch size (its
energy terms are U-statistics), while InfoNCE's grows like log of the batch size.
"""

from typing import Callable, Dict, Sequence

import torch

from solo_plugins.losses import dcl_loss_func, dhel_loss_func, infonce_loss_func, kcl_loss_func

DEFAULT_LOSSES: Dict[str, Callable] = {
    "infonce": lambda a, b: infonce_loss_func(a, b, temperature=0.2),
    "dcl": lambda a, b: dcl_loss_func(a, b, temperature=0.1),
    "dhel": lambda a, b: dhel_loss_func(a, b, temperature=0.3),
    "kcl": lambda a, b: kcl_loss_func(a, b, kernel="gaussian", t=2.0, gamma=16.0),
}


@torch.no_grad()
def expected_loss_by_batch_size(
    z1: torch.Tensor,
    z2: torch.Tensor,
    batch_sizes: Sequence[int],
    losses: Dict[str, Callable] = DEFAULT_LOSSES,
    batches: int = 64,
    seed: int = 0,
) -> Dict[str, Dict[int, tuple]]:
    """Monte-Carlo mean and standard error of each loss over ``batches`` random
    mini-batches (without replacement within a batch) of each size, from the fixed pairs
    (z1[i], z2[i])."""
    gen = torch.Generator().manual_seed(seed)
    n = z1.shape[0]
    out: Dict[str, Dict[int, tuple]] = {name: {} for name in losses}
    for b in batch_sizes:
        if b > n:
            raise ValueError(f"batch size {b} exceeds the {n} embeddings available")
        picks = [torch.randperm(n, generator=gen)[:b] for _ in range(batches)]
        for name, fn in losses.items():
            values = torch.stack([fn(z1[p], z2[p]) for p in picks])
            out[name][b] = (float(values.mean()), float(values.std() / batches**0.5))
    return out
