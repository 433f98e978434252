"""The gradient-vs-batch-size analysis of docs/analysis.md.

    python scripts/gradient_vs_batch_size.py --out docs [--batches 256]

Writes gradient_vs_batch_size.csv and .png to --out and prints, per loss, the batch size
from which the relative bias of the mini-batch gradient stays under 5%.
"""

import argparse
import os
import time

from solo_plugins.analysis.gradient_vs_batch_size import (
    clustered_pairs,
    first_batch_size_below,
    gradient_statistics,
)
from solo_plugins.analysis.plots import plot_gradient_vs_batch_size

SIZES = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", type=int, default=256, help="mini-batches drawn per batch size")
    parser.add_argument("--n", type=int, default=2048, help="fixed pairs the batches are drawn from")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    z1, z2 = clustered_pairs(n=args.n)
    stats = gradient_statistics(z1, z2, [b for b in SIZES if b <= args.n // 2], batches=args.batches)
    with open(os.path.join(args.out, "gradient_vs_batch_size.csv"), "w") as f:
        f.write("loss,batch_size,net_bias,bias,noise,std\n")
        for name, by_size in stats.items():
            for b, s in by_size.items():
                f.write(f"{name},{b},{s['net_bias']:.6f},{s['bias']:.6f},{s['noise']:.6f},{s['std']:.6f}\n")
    plot_gradient_vs_batch_size(stats, args.batches, os.path.join(args.out, "gradient_vs_batch_size.png"))
    print(f"N = {args.n} pairs, {args.batches} batches per size, {time.time() - start:.0f} s")
    for name, by_size in stats.items():
        row = "  ".join(f"b{b}: {s['net_bias']:.3f}/{s['std']:.2f}" for b, s in by_size.items())
        print(f"{name:8s} bias<5% from b = {first_batch_size_below(by_size)}   (net bias/std) {row}")


if __name__ == "__main__":
    main()
