"""The 2N-view similarity block shared by InfoNCE and DCL."""

import torch


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
    rows = torch.arange(n, device=x.device)
    cols = offset + rows
    bias[rows, cols] = float("-inf")
    bias[n + rows, n_global + cols] = float("-inf")
    if mask_positives:
        bias[rows, n_global + cols] = float("-inf")
        bias[n + rows, cols] = float("-inf")
    return torch.addmm(bias, torch.cat([x, y]), torch.cat([x_all, y_all]).T, alpha=1.0 / temperature)
