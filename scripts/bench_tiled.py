"""Peak memory and time of each loss, whole block against tiled (``chunk_size``), forward +
backward, measured in one run.

Each measurement runs in a fresh process (so that its peak memory is its own): inputs of
(N, D) float32 are made, the process's resident set size is read, the loss runs forward and
backward once (N >= 16,384) or five times (median), and the peak RSS above the starting point
(the peak reset after the imports and a small warm-up call) is the memory; glibc's mmap
threshold is fixed at 1 MiB so that freed tiles go back to the system. On CUDA the peak allocated memory is read instead. The whole block is not run
where its N² block alone would not leave room on the machine (said in the table).

    python scripts/bench_tiled.py                         # N = 4,096, 16,384, 32,768
    python scripts/bench_tiled.py --sizes 1024 2048 --chunk 256
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

LOSSES = {
    "infonce": ("infonce_loss_func", {"temperature": 0.2}, 2),
    "dcl": ("dcl_loss_func", {"temperature": 0.1}, 2),
    "dclw": ("dcl_loss_func", {"temperature": 0.1, "weight_sigma": 0.5}, 2),
    "dhel": ("dhel_loss_func", {"temperature": 0.3}, 1),
    "kcl gaussian": ("kcl_loss_func", {"kernel": "gaussian", "t": 2.0, "gamma": 16.0}, 1),
    "kcl imq": ("kcl_loss_func", {"kernel": "imq", "t": 1.0, "gamma": 16.0}, 1),
    "kcl riesz": ("kcl_loss_func", {"kernel": "riesz", "s": -1.0, "gamma": 1.0}, 1),
    "mv-infonce (3 views)": ("mv_infonce_loss_func", {"temperature": 0.2}, 3),
    "mv-dhel (3 views)": ("mv_dhel_loss_func", {"temperature": 0.3}, 1),
    "mv-kcl (3 views)": ("mv_kcl_loss_func", {"kernel": "gaussian", "t": 2.0, "gamma": 16.0}, 1),
}
# Distances from differences cost N·n·D per pass: these run at the smallest size only.
SMALL_ONLY = ("kcl imq", "kcl riesz", "mv-infonce (3 views)", "mv-dhel (3 views)", "mv-kcl (3 views)")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current
    one, so that the imports' own peak does not count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(name: str, n: int, dim: int, chunk, repeats: int, device: str) -> dict:
    """One measurement, in this process."""
    import solo_plugins.losses as losses

    func, kwargs, _ = LOSSES[name]
    fn = getattr(losses, func)
    gen = torch.Generator().manual_seed(0)
    z1 = torch.randn(n, dim, generator=gen)
    z2 = z1 + torch.randn(n, dim, generator=gen)
    views = 3 if name.startswith("mv-") else 2
    inputs = [z1, z2, z1 + torch.randn(n, dim, generator=gen)][:views]
    inputs = [z.to(device).requires_grad_() for z in inputs]
    call = (lambda: fn(inputs, chunk_size=chunk, **kwargs)) if views == 3 else (
        lambda: fn(*inputs, chunk_size=chunk, **kwargs))
    # one small call first: thread pools and the first allocations happen outside the measurement
    small = [z[:64].detach().requires_grad_() for z in inputs]
    (fn(small, chunk_size=chunk and 16, **kwargs) if views == 3 else fn(*small, chunk_size=chunk and 16, **kwargs)).backward()
    times = []
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        base = _rss_bytes()
    for _ in range(repeats):
        start = time.perf_counter()
        call().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        for z in inputs:
            z.grad = None
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _peak_rss_bytes() - base
    return {"seconds": statistics.median(times), "peak_bytes": peak}


def block_bytes(name: str, n: int) -> int:
    """The float32 similarity block the whole-block form holds at least twice (forward and
    the gradient): (2N)² for InfoNCE/DCL, N² per view for the others, (3N)² for MV-InfoNCE."""
    scale = LOSSES[name][2]
    return 4 * (scale * n) ** 2


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384, 32768])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--memory-gib", type=float, default=24.0, help="the machine's memory")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement, as JSON
    args = parser.parse_args()
    if args.one:
        name, n, chunk, repeats = json.loads(args.one)
        print(json.dumps(measure(name, n, args.dim, chunk, repeats, args.device)))
        return

    def one(name, n, chunk, repeats, fixed_mmap):
        # A fixed mmap threshold: glibc otherwise raises it after large frees and keeps freed
        # tiles in its heap, which the resident set size would count as the loss's memory.
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 20)) if fixed_mmap else None
        out = subprocess.run([sys.executable, __file__, "--dim", str(args.dim), "--device", args.device,
                              "--one", json.dumps([name, n, chunk, repeats])], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            return None, out.stderr.strip().splitlines()[-1][:120]
        return json.loads(out.stdout.strip().splitlines()[-1]), ""

    def child(name, n, chunk, repeats):
        """Memory from a run with the fixed mmap threshold; below N = 16,384, where its page
        faults would weigh on the time, the time from a run with glibc's defaults."""
        memory, error = one(name, n, chunk, 1, args.device == "cpu")
        if memory is None or n >= 16384 or args.device != "cpu":
            return memory, error
        timing, error = one(name, n, chunk, repeats, False)
        return (None, error) if timing is None else ({**memory, "seconds": timing["seconds"]}, "")

    print(f"torch {torch.__version__}, {args.device}, threads {torch.get_num_threads()}, D = {args.dim}, "
          f"chunk_size = {args.chunk}; peak memory above the inputs (CPU: resident set size)")
    print("| N | loss | whole s | whole GiB | tiled s | tiled GiB | time ratio | memory ratio |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for n in args.sizes:
        for name in args.losses:
            if name in SMALL_ONLY and n != min(args.sizes):
                continue
            repeats = 5 if n < 16384 else 1
            tiled, error = child(name, n, args.chunk, repeats)
            if tiled is None:
                print(f"| {n} | {name} | tiled failed: {error} |", flush=True)
                continue
            # 3 blocks: logits, their exp (or gradient) and the gradient, as autograd keeps them
            if 3 * block_bytes(name, n) > args.memory_gib * 2**30:
                whole = f"not run: its N² block alone is {block_bytes(name, n) / 2**30:.0f} GiB"
                print(f"| {n} | {name} | {whole} | | {tiled['seconds']:.2f} | {tiled['peak_bytes'] / 2**30:.2f} | | |",
                      flush=True)
                continue
            full, error = child(name, n, None, repeats)
            if full is None:
                print(f"| {n} | {name} | failed: {error} | | {tiled['seconds']:.2f} | "
                      f"{tiled['peak_bytes'] / 2**30:.2f} | | |", flush=True)
                continue
            print(f"| {n} | {name} | {full['seconds']:.2f} | {full['peak_bytes'] / 2**30:.2f} | "
                  f"{tiled['seconds']:.2f} | {tiled['peak_bytes'] / 2**30:.2f} | "
                  f"{tiled['seconds'] / full['seconds']:.2f}x | {tiled['peak_bytes'] / max(full['peak_bytes'], 1):.3f}x |",
                  flush=True)


if __name__ == "__main__":
    main()
