"""The gradient-vs-batch-size analysis of docs/analysis.md.

    python scripts/gradient_vs_batch_size.py --out docs [--batches 256]
    python scripts/gradient_vs_batch_size.py --out docs --from-csv   # plot and summary again

Writes gradient_vs_batch_size.csv and .png to --out and prints, per loss, the batch size
from which the relative bias of the mini-batch gradient stays under 5%.
"""

import argparse
import csv
import os
import time

from solo_plugins.analysis.gradient_vs_batch_size import (
    clustered_pairs,
    first_batch_size_below,
    gradient_statistics,
)
from solo_plugins.analysis.plots import plot_gradient_vs_batch_size

SIZES = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def read_csv(path: str):
    stats = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            stats.setdefault(row["loss"], {})[int(row["batch_size"])] = {
                k: float(row[k]) for k in ("net_bias", "bias", "noise", "std")}
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", type=int, default=256, help="mini-batches drawn per batch size")
    parser.add_argument("--n", type=int, default=2048, help="fixed pairs the batches are drawn from")
    parser.add_argument("--from-csv", action="store_true", help="re-plot --out's CSV instead of computing")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, "gradient_vs_batch_size.csv")
    start = time.time()
    if args.from_csv:
        stats = read_csv(csv_path)
    else:
        z1, z2 = clustered_pairs(n=args.n)
        stats = gradient_statistics(z1, z2, [b for b in SIZES if b <= args.n // 2], batches=args.batches)
        with open(csv_path, "w") as f:
            f.write("loss,batch_size,net_bias,bias,noise,std\n")
            for name, by_size in stats.items():
                for b, s in by_size.items():
                    f.write(f"{name},{b},{s['net_bias']:.6f},{s['bias']:.6f},{s['noise']:.6f},{s['std']:.6f}\n")
        print(f"N = {args.n} pairs, {args.batches} batches per size, {time.time() - start:.0f} s")
    plot_gradient_vs_batch_size(stats, args.batches, os.path.join(args.out, "gradient_vs_batch_size.png"))
    for name, by_size in stats.items():
        row = "  ".join(f"b{b}: {s['net_bias']:.3f}/{s['std']:.2f}" for b, s in by_size.items())
        print(f"{name:8s} bias<5% from b = {first_batch_size_below(by_size)}   (net bias/std) {row}")


if __name__ == "__main__":
    main()
