"""A pretraining at a batch size that only the chunked options make possible on one machine:
Fashion-MNIST (60,000 training images), small CNN, with ``loss_chunk_size`` and
``forward_chunk_size``, next to the same config without them under the same memory cap.

Each run is its own process, its address space capped at ``--memory-gib`` (so that a run
that does not fit fails with an allocation error instead of taking the machine down); its
peak resident memory and time are measured from outside.

    python scripts/large_batch.py --batch-size 16384 --epochs 2 --out runs/large_batch
"""

import argparse
import os
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(name, overrides, memory_gib, log):
    def cap():
        limit = int(memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    command = [sys.executable, "-m", "solo_plugins.commands.pretrain", "--config-path",
               os.path.join(REPO, "configs", "pretrain", "fashion_mnist"), "--config-name", f"{name}.yaml", *overrides]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.time()
    with open(log, "w") as f:
        code = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, preexec_fn=cap).returncode
    seconds = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(log) as f:
        lines = [line.strip() for line in f.read().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line and "Error executing job" not in line]
    tail = (errors or lines or [""])[-1]
    # ru_maxrss of children is that of the largest process so far (the trainer; its data
    # workers are smaller): the runs go from the smaller to the larger
    return code, seconds, max(peak, before) / 2**20, tail[:200]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="infonce")
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--loss-chunk", type=int, default=1024)
    parser.add_argument("--forward-chunk", type=int, default=1024)
    parser.add_argument("--memory-gib", type=float, default=22.0)
    parser.add_argument("--data", default="datasets/fashion_mnist_full")
    parser.add_argument("--out", default="runs/large_batch")
    parser.add_argument("--runs", nargs="+", default=["chunked", "whole"], choices=["chunked", "whole"])
    args = parser.parse_args()

    from solo_plugins.data.export import export_fashion_mnist

    data = export_fashion_mnist(args.data)  # all 60,000 training images (skipped when already there)
    os.makedirs(args.out, exist_ok=True)
    common = [f"data.train_path={data}/train", f"data.val_path={data}/val", f"max_epochs={args.epochs}",
              f"optimizer.batch_size={args.batch_size}", "optimizer.lr=0.01",  # solo scales it by batch/256
              "scheduler.warmup_epochs=0", "+limit_val_batches=0", "auto_resume.enabled=false", "data.num_workers=2"]
    rows = []
    for label, extra in (
        ("chunked", [f"+method_kwargs.loss_chunk_size={args.loss_chunk}",
                     f"+method_kwargs.forward_chunk_size={args.forward_chunk}"]),
        ("whole", []),
    ):
        if label not in args.runs:
            continue
        out = os.path.join(args.out, label)
        code, seconds, peak_gib, tail = run(args.method, common + extra + [f"checkpoint.dir={out}/trained_models"],
                                            args.memory_gib, os.path.join(args.out, f"{label}.log"))
        rows.append((label, code, seconds, peak_gib, tail))
        print(f"{label}: exit {code}, {seconds:.0f} s, peak RSS {peak_gib:.2f} GiB; {tail}", flush=True)
    print(f"\n{args.method}, batch {args.batch_size} x 2 views, {args.epochs} epochs, small CNN, 28x28, "
          f"address space capped at {args.memory_gib:g} GiB")
    print("| run | options | result | time | peak resident memory |")
    print("|---|---|---|---|---|")
    for label, code, seconds, peak_gib, tail in rows:
        options = (f"loss_chunk_size={args.loss_chunk}, forward_chunk_size={args.forward_chunk}"
                   if label == "chunked" else "none")
        result = "finished" if code == 0 else f"failed: {tail}"
        print(f"| {label} | {options} | {result} | {seconds:.0f} s | {peak_gib:.2f} GiB |")


if __name__ == "__main__":
    main()
