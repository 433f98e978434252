"""Per-row reductions over an (n, N) similarity block, computed in row tiles.

Every loss here reduces its N² block row by row (a log-sum-exp, a kernel energy). With
``chunk_size`` set, those rows are computed ``chunk_size`` at a time, in forward and again in
backward, so that autograd keeps only the inputs (O(N·D)) and the result (O(n)) and no more
than a (chunk_size, N) tile exists at a time. Values and gradients are the full block's.
:func:`tiled_log_sum_exp` has an analytic backward (the log-sum-exp losses and KCL's gaussian
kernel); :func:`per_row` recomputes any row function's tiles under autograd (the other KCL
kernels).
"""

from typing import Callable, Optional, Tuple

import torch

#: ``row_fn(rows, start, columns) -> (len(rows),)``: the reduction of rows ``start`` to
#: ``start + len(rows)`` of the block against all of ``columns`` (``start`` places the masks).
RowFn = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]


def check_chunk_size(chunk_size: Optional[int]) -> None:
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None (the whole block at once) or an integer >= 1; got {chunk_size!r}")


# exp(x) stays a normal float32 down to x = -87: while 2/τ stays below this, a row's sum of
# shifted exponentials can neither overflow nor underflow to 0 (see _common.log_sum_exp)
EXP_SAFE_RANGE = 80.0


class _NoAutocast:
    """Autocast off on every device: the losses compute in full precision, and the tiles
    recomputed during backward (which may run inside an autocast region) as in forward."""

    def __enter__(self):
        self._contexts = [torch.autocast(device_type=d, enabled=False) for d in ("cuda", "cpu")]
        for c in self._contexts:
            c.__enter__()

    def __exit__(self, *exc):
        for c in reversed(self._contexts):
            c.__exit__(*exc)


no_autocast = _NoAutocast


class _TiledRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, row_fn: RowFn, chunk_size: int, rows: torch.Tensor, columns: torch.Tensor):  # type: ignore[override]
        ctx.row_fn, ctx.chunk_size = row_fn, chunk_size
        ctx.save_for_backward(rows, columns)
        with torch.no_grad(), _NoAutocast():
            return torch.cat([row_fn(rows[s : s + chunk_size], s, columns)
                              for s in range(0, rows.shape[0], chunk_size)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        rows, columns = ctx.saved_tensors
        chunk = ctx.chunk_size
        grad_rows = torch.zeros_like(rows) if ctx.needs_input_grad[2] else None
        grad_columns = torch.zeros_like(columns) if ctx.needs_input_grad[3] else None
        for s in range(0, rows.shape[0], chunk):
            with torch.enable_grad(), _NoAutocast():
                tile = rows[s : s + chunk].detach().requires_grad_()
                cols = columns.detach().requires_grad_()
                out = ctx.row_fn(tile, s, cols)
                g_tile, g_cols = torch.autograd.grad(out, (tile, cols), grad[s : s + chunk], allow_unused=True)
            if grad_rows is not None and g_tile is not None:
                grad_rows[s : s + chunk] = g_tile
            if grad_columns is not None and g_cols is not None:
                grad_columns += g_cols
        return None, None, grad_rows, grad_columns


def _masked_exp_logits(tile, columns, temperature: float, masked: Tuple[int, ...], row_shift) -> torch.Tensor:
    """exp(<tile_i, column_j>/τ - row_shift_i), 0 where row i meets column m + i for each m in
    ``masked`` (positions relative to the tile's first row): one matmul into a broadcast bias,
    then in place (this runs outside autograd)."""
    out = torch.addmm(-row_shift[:, None], tile, columns.T, alpha=1.0 / temperature)
    out.exp_()
    for m in masked:
        out[:, m : m + tile.shape[0]].diagonal().zero_()
    return out


class _TiledLogSumExp(torch.autograd.Function):
    """log Σ_j exp(<rows_i, columns_j>/τ) over the unmasked columns, per row, in row tiles;
    backward recomputes each tile's softmax and applies it analytically (two matmuls), with
    no autograd graph of its own."""

    @staticmethod
    def forward(ctx, chunk_size: int, temperature: float, masked: Tuple[int, ...], rows, columns):  # type: ignore[override]
        ctx.chunk_size, ctx.temperature, ctx.masked = chunk_size, temperature, masked
        out = torch.empty(rows.shape[0], dtype=rows.dtype, device=rows.device)
        # Shifted by the bound 1/τ (every similarity is <= 1): exp cannot overflow, and while
        # 2/τ <= 80 no row's sum can underflow to 0 (each keeps an entry >= exp(-2/τ)).
        safe = 2.0 / temperature <= EXP_SAFE_RANGE
        with _NoAutocast():
            for s in range(0, rows.shape[0], chunk_size):
                tile = rows[s : s + chunk_size]
                masks = tuple(m + s for m in masked)
                if safe:
                    shift = tile.new_full((tile.shape[0],), 1.0 / temperature)
                    out[s : s + chunk_size] = _masked_exp_logits(tile, columns, temperature, masks, shift).sum(1).log() + shift
                else:
                    logits = torch.addmm(tile.new_full((1,), -1.0 / temperature), tile, columns.T, alpha=1.0 / temperature)
                    for m in masks:
                        logits[:, m : m + tile.shape[0]].diagonal().fill_(float("-inf"))
                    out[s : s + chunk_size] = torch.logsumexp(logits, dim=1) + 1.0 / temperature
        ctx.save_for_backward(rows, columns, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        rows, columns, lse = ctx.saved_tensors
        chunk, temperature = ctx.chunk_size, ctx.temperature
        grad_rows = torch.empty_like(rows) if ctx.needs_input_grad[3] else None
        grad_columns = torch.zeros_like(columns) if ctx.needs_input_grad[4] else None
        with _NoAutocast():
            for s in range(0, rows.shape[0], chunk):
                tile = rows[s : s + chunk]
                # softmax_ij = exp(<tile_i, column_j>/τ - lse_i); d lse_i / d<tile_i, column_j> = softmax_ij / τ
                weights = _masked_exp_logits(tile, columns, temperature, tuple(m + s for m in ctx.masked),
                                             lse[s : s + chunk])
                weights *= (grad[s : s + chunk] / temperature)[:, None]
                if grad_rows is not None:
                    grad_rows[s : s + chunk] = weights @ columns
                if grad_columns is not None:
                    grad_columns.addmm_(weights.T, tile)
        return None, None, None, grad_rows, grad_columns


def tiled_log_sum_exp(rows: torch.Tensor, columns: torch.Tensor, temperature: float, masked: Tuple[int, ...],
                      chunk_size: int) -> torch.Tensor:
    """log Σ_j exp(<rows_i, columns_j>/τ) per row, leaving out column m + i of row i for each
    m in ``masked``, in row tiles of ``chunk_size`` (O((n + N)·D) kept for backward)."""
    return _TiledLogSumExp.apply(chunk_size, temperature, tuple(masked), rows, columns)


def per_row(row_fn: RowFn, rows: torch.Tensor, columns: torch.Tensor, chunk_size: Optional[int]) -> torch.Tensor:
    """``row_fn`` over all rows: at once (``chunk_size=None``), or in tiles of ``chunk_size``
    rows recomputed in backward (memory O((n + N)·D) kept, O(chunk_size·N) at a time)."""
    if chunk_size is None or chunk_size >= rows.shape[0]:
        return row_fn(rows, 0, columns)
    return _TiledRows.apply(row_fn, chunk_size, rows, columns)
