"""Gathering embeddings across processes, with gradients, for batch-wide losses.

Contrastive losses need every other sample of the *global* batch as a negative. The
gather below keeps the autograd graph: the gradient that reaches a rank is the sum over
all ranks of the gradients with respect to that rank's rows (each rank's loss depends on
everyone's embeddings). DDP's gradient averaging then yields the gradient of the
rank-averaged loss, which is what one process would compute on the whole batch.

Gathering is explicit: every loss takes ``gather_distributed`` (as lightly's losses do).
With it off, a loss computed by one rank alone (a validation hook, a probe on rank 0)
uses that rank's rows and enters no collective, so it cannot wait for the others.

Ranks may hold different numbers of rows (a last, smaller batch; uneven sharding): sizes
are exchanged first (one host-device sync per call) and the rows are padded for
``all_gather``. Inside :func:`equal_shards` the exchange is skipped and a gather costs no
sync: solo-learn's training loaders give every rank the same batch size.
"""

import contextlib
import threading
import warnings
from typing import Iterator, List, NamedTuple, Optional, Tuple

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: List[int]) -> torch.Tensor:  # type: ignore[override]
        me = dist.get_rank()
        ctx.start = sum(sizes[:me])
        ctx.stop = ctx.start + sizes[me]
        longest = max(sizes)
        if x.shape[0] < longest:
            pad = x.new_zeros((longest - x.shape[0],) + tuple(x.shape[1:]))
            x = torch.cat([x, pad])
        buffers = [torch.empty_like(x) for _ in sizes]
        dist.all_gather(buffers, x.contiguous())
        return torch.cat([buf[:n] for buf, n in zip(buffers, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None


class GatheredRows(NamedTuple):
    """Rows of every rank, concatenated in rank order.

    ``offset`` is the position of this rank's first row in ``rows``: local row ``i`` is
    global row ``offset + i``. Positive pairs and self-pairs are found from these positions.
    """

    rows: torch.Tensor
    offset: int


_shards = threading.local()


@contextlib.contextmanager
def equal_shards() -> Iterator[None]:
    """Declares that every rank passes the same number of rows to the losses called inside,
    so that gathering them needs no exchange of sizes and no host-device sync.

    solo-learn's training loaders guarantee it (``DistributedSampler`` pads every rank to
    the same length and the last batch is dropped; DALI drops it too); the methods call
    their losses inside it. Outside, ranks may hold any sizes.

    Example:
        >>> import torch
        >>> from solo_plugins.losses import dhel_loss_func
        >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> with equal_shards():
        ...     loss = dhel_loss_func(z1, z2, gather_distributed=True)
    """
    previous = getattr(_shards, "equal", False)
    _shards.equal = True
    try:
        yield
    finally:
        _shards.equal = previous


def _shard_sizes(n_local: int, like: torch.Tensor) -> List[int]:
    """Every rank's number of rows: known inside :func:`equal_shards`, else exchanged (one
    all_gather and one host-device sync)."""
    if getattr(_shards, "equal", False):
        return [n_local] * dist.get_world_size()
    mine = like.new_full((1,), n_local, dtype=torch.long)  # built on the device: no copy
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    return torch.cat(everyone).to("cpu", copy=True).tolist()  # the one copy to the host


_warned_about_the_default = False


def resolve_gather(gather_distributed: Optional[bool]) -> bool:
    """The losses' ``gather_distributed`` option: True gathers the global batch across
    ranks, False keeps this rank's rows (no collective). Not passed (None) means False, and
    while a process group of more than one rank exists that gives one UserWarning per
    process: before 0.4 the losses gathered whenever a group existed."""
    global _warned_about_the_default
    if gather_distributed is None:
        if is_distributed() and not _warned_about_the_default:
            _warned_about_the_default = True
            warnings.warn(
                "a solo_plugins loss was called in a process group without gather_distributed: it "
                "uses this rank's rows only (since 0.4). Pass gather_distributed=True for negatives "
                "from the global batch (the loss then waits for every rank), or False to silence this.",
                UserWarning, stacklevel=4)
        return False
    if not isinstance(gather_distributed, bool):
        raise ValueError(f"gather_distributed must be True, False or None; got {gather_distributed!r}")
    return gather_distributed


def gather_rows(*tensors: torch.Tensor, gather: bool = True) -> Tuple[GatheredRows, ...]:
    """Gathers each (n_local, ...) tensor into (n_global, ...) with gradients.

    On one process, without torch.distributed, or with ``gather=False`` this returns the
    tensors themselves, with offset 0, at no cost. All tensors must have the same number of
    rows; their sizes are exchanged once for all of them (not at all inside
    :func:`equal_shards`).
    """
    if not gather or not is_distributed():
        return tuple(GatheredRows(t, 0) for t in tensors)
    sizes = _shard_sizes(tensors[0].shape[0], tensors[0])
    offset = sum(sizes[: dist.get_rank()])
    return tuple(GatheredRows(_GatherRows.apply(t, sizes), offset) for t in tensors)


def global_mean(per_row: torch.Tensor, n_global: int, *, gathered: bool = True) -> torch.Tensor:
    """Mean over the global batch of per-row terms computed on this rank's rows.

    Returned as this rank's share scaled so that averaging over ranks (what DDP does with
    gradients and what ``sync_dist`` does with logged values) gives the exact global mean,
    also when ranks hold different numbers of rows. With equal shards it is the local mean;
    without gathering (``gathered=False``, ``n_global`` the local count) it is the local mean.
    """
    return per_row.sum() * ((world_size() if gathered else 1) / n_global)
