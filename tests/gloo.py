"""Two gloo processes on the CPU, for the distributed tests."""

import os
import tempfile

import torch
import torch.multiprocessing as mp


def run_on_two_ranks(worker, sizes):
    """Runs ``worker(rank, 2, init_file, sizes, out_file)`` in 2 processes; each rank saves its
    results to ``f"{out_file}.{rank}"``. Returns the ranks' results, in rank order."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.pt")
        mp.spawn(worker, args=(2, os.path.join(tmp, "init"), list(sizes), out), nprocs=2, join=True)
        return [torch.load(f"{out}.{r}") for r in range(2)]


def average_gradients(module, world):
    """Averages ``module``'s gradients over the ranks, as DistributedDataParallel does after
    backward, with blocking all-reduces: DDP's reducer leaves asynchronous gloo work alive
    past ``destroy_process_group``, and a rank then aborts now and then at exit."""
    import torch.distributed as dist

    for p in module.parameters():
        dist.all_reduce(p.grad)
        p.grad /= world
