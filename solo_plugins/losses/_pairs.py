"""The 2N-view similarity block shared by InfoNCE and DCL."""

import torch

from solo_plugins.losses._common import shifted_logits


def both_views_logits(x, y, x_all, y_all, temperature: float) -> torch.Tensor:
    """Shifted similarities (see ``shifted_logits``) of every local view (rows: x then y)
    to every global view (columns: all x then all y); shape (2n, 2N). One matmul for the
    four view pairs."""
    return shifted_logits(torch.cat([x, y]), torch.cat([x_all, y_all]), temperature)


def mask_views(logits: torch.Tensor, offset: int, n_global: int, diagonal_block: bool, value: float):
    """Writes ``value`` on each local view's own column (``diagonal_block``) or on its
    positive's column (otherwise), in place."""
    n = logits.shape[0] // 2
    if diagonal_block:
        blocks = (logits[:n, :n_global], logits[n:, n_global:])
    else:
        blocks = (logits[:n, n_global:], logits[n:, :n_global])
    for block in blocks:
        block[:, offset : offset + n].diagonal().fill_(value)
    return logits
