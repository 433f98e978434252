"""Forward+backward time and memory of each loss against its floor, against straightforward
forms of the same formulas and against solo-learn's ``simclr_loss_func``, measured in one run.

A loss's floor is the similarity block it cannot avoid, as one matmul + exp + sum, forward
and backward: the (2N, 2N) block of both views for InfoNCE, DCL and DCLW; the two (N, N)
within-view blocks for DHEL and KCL.

Each row times our implementation and its comparison alternately (A B A B ...), and
reports medians and their ratio. Memory: on CUDA the peak allocated during forward and
backward; on CPU (where torch keeps no allocator statistics) the bytes of the tensors
autograd saves for backward, the part of the peak that grows with N².

    python scripts/bench_losses.py                 # N in 256 1024 4096, D = 128
    python scripts/bench_losses.py --sizes 1024 --repeats 20

KCL's Riesz kernel computes N·n·D differences; besides its floor it is compared with its
earlier form, whose distances' backward was torch.cdist's in one piece.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from solo_plugins.losses import dcl_loss_func, dhel_loss_func, infonce_loss_func, kcl_loss_func


def naive_dhel(z1, z2, temperature=0.3):
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    off = 1 - torch.eye(x.shape[0], device=x.device)
    pos = (x * y).sum(1) / temperature
    neg_x = torch.log((torch.exp(x @ x.T / temperature) * off).sum(1))
    neg_y = torch.log((torch.exp(y @ y.T / temperature) * off).sum(1))
    return (-pos + neg_x + neg_y).mean()


def naive_kcl(z1, z2, t=2.0, gamma=16.0):
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    align = torch.exp(-t * (x - y).pow(2).sum(1)).mean()
    energy = torch.exp(-t * torch.pdist(x).pow(2)).mean() + torch.exp(-t * torch.pdist(y).pow(2)).mean()
    return -2 * align + gamma * energy


def naive_dcl(z1, z2, temperature=0.1):
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    off = 1 - torch.eye(x.shape[0], device=x.device)
    pos = (x * y).sum(1) / temperature

    def view(a, b):
        neg = ((torch.exp(a @ a.T / temperature) + torch.exp(a @ b.T / temperature)) * off).sum(1)
        return (-pos + torch.log(neg)).mean()

    return (view(x, y) + view(y, x)) / 2


def naive_infonce(z1, z2, temperature=0.2):
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = torch.exp(u @ u.T / temperature) * (1 - torch.eye(2 * n, device=u.device))
    pos = torch.exp((u * u.roll(n, 0)).sum(1) / temperature)
    return -torch.log(pos / sim.sum(1)).mean()


def floor_2n(z1, z2, temperature=0.1):
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    return torch.exp(u @ u.T / temperature).sum()


def floor_two_blocks(z1, z2, temperature=0.3):
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    return torch.exp(x @ x.T / temperature).sum() + torch.exp(y @ y.T / temperature).sum()


FLOORS = {"dhel": floor_two_blocks, "kcl": floor_two_blocks, "dcl": floor_2n, "dclw": floor_2n, "infonce": floor_2n,
          "kcl_riesz": floor_two_blocks}


def riesz_before(z1, z2, s=-1.0, gamma=1.0):
    """KCL's Riesz loss as this package computed it before its distances' backward ran in row
    blocks: d² by torch.cdist, whose CUDA backward holds an (N, n, D) buffer."""
    from solo_plugins.losses import kcl

    blocked = kcl.squared_distances
    kcl.squared_distances = lambda a, b: torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").square()
    try:
        return kcl_loss_func(z1, z2, kernel="riesz", s=s, gamma=gamma)
    finally:
        kcl.squared_distances = blocked


def solo_simclr():
    from solo.losses.simclr import simclr_loss_func

    def loss(z1, z2, temperature=0.2):
        indexes = torch.arange(z1.shape[0], device=z1.device).repeat(2)
        return simclr_loss_func(torch.cat([z1, z2]), indexes, temperature)

    return loss


def run_once(fn, z1, z2):
    a, b = z1.detach().requires_grad_(), z2.detach().requires_grad_()
    if a.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn(a, b)
    loss.backward()
    if a.is_cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    memory = torch.cuda.max_memory_allocated() - base if a.is_cuda else sum(saved.values())
    return elapsed, memory


def compare(ours, other, z1, z2, repeats):
    for _ in range(2):
        run_once(ours, z1, z2), run_once(other, z1, z2)
    times_a, times_b = [], []
    for _ in range(repeats):
        ta, ma = run_once(ours, z1, z2)
        tb, mb = run_once(other, z1, z2)
        times_a.append(ta)
        times_b.append(tb)
    return statistics.median(times_a), ma, statistics.median(times_b), mb


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args = parser.parse_args()

    simclr = solo_simclr()
    ours = {
        "dhel": lambda a, b: dhel_loss_func(a, b, temperature=0.3),
        "kcl": lambda a, b: kcl_loss_func(a, b, kernel="gaussian", t=2.0, gamma=16.0),
        "dcl": lambda a, b: dcl_loss_func(a, b, temperature=0.1),
        "dclw": lambda a, b: dcl_loss_func(a, b, temperature=0.1, weight_sigma=0.5),
        "infonce": lambda a, b: infonce_loss_func(a, b, temperature=0.2),
        "kcl_riesz": lambda a, b: kcl_loss_func(a, b, kernel="riesz", s=-1.0, gamma=1.0),
    }
    straightforward = {"dhel": naive_dhel, "kcl": naive_kcl, "dcl": naive_dcl, "infonce": naive_infonce,
                       "kcl_riesz": riesz_before}

    mem_label = "peak MiB" if "cuda" in args.devices else "saved MiB"
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, D = {args.dim}, median of {args.repeats}")
    print(f"| device | N | loss | ms | {mem_label} | vs | ms | {mem_label} | time ratio | memory ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for device in args.devices:
        for n in args.sizes:
            gen = torch.Generator().manual_seed(0)
            z1 = torch.randn(n, args.dim, generator=gen).to(device)
            z2 = (z1.cpu() + torch.randn(n, args.dim, generator=gen)).to(device)
            for name, fn in ours.items():
                rivals = [("floor", FLOORS[name]), ("simclr_loss_func", simclr)]
                if name in straightforward:
                    label = "before (cdist)" if name == "kcl_riesz" else "straightforward"
                    rivals.insert(1, (label, straightforward[name]))
                for rival_name, rival in rivals:
                    ta, ma, tb, mb = compare(fn, rival, z1, z2, args.repeats)
                    print(
                        f"| {device} | {n} | {name} | {ta * 1e3:.2f} | {ma / 2**20:.1f} | {rival_name} | "
                        f"{tb * 1e3:.2f} | {mb / 2**20:.1f} | {ta / tb:.2f}x | {ma / max(mb, 1):.2f}x |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
