"""The scheduling overhead of the slurm launcher: the same sweep of tiny runs (digits, one
pretraining epoch of a few batches, no linear evaluation) through ``launcher=local`` and
``launcher=slurm`` (wait=true) on the cluster ``sinfo`` reaches, each from an empty folder,
one after the other; prints the wall seconds per run of each and their difference.

    scripts/slurm_local.sh up && python scripts/bench_slurm.py [--runs 8] [--quick] [--keep DIR]

``--keep DIR`` leaves the two sweeps' folders (``DIR/local``, ``DIR/slurm``) for a look at
their rows; DIR must not exist yet.
"""

import argparse
import os
import subprocess
import sys
import contextlib
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sweep(out: str, data: str, seeds: int, launcher: str) -> float:
    args = [sys.executable, "-m", "solo_plugins.commands.sweep", "--config-path", os.path.join(REPO, "configs", "sweep"),
            "--config-name", "digits.yaml", f"config_dir={os.path.join(REPO, 'configs')}", f"data_root={data}",
            f"out_dir={out}", "methods=[dhel,kcl]", "batch_sizes=[32]", f"seeds=[{','.join(map(str, range(seeds)))}]",
            "reference_rows=false", "linear_eval=false", "loss_vs_batch_size=false", "metrics_samples=64", "threads=1",
            "pretrain_overrides=['max_epochs=1','+limit_train_batches=2','+limit_val_batches=0','data.num_workers=0']",
            f"launcher={launcher}", "slurm.cpus_per_task=1", "slurm.mem_gb=4"]
    start = time.time()
    run = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, WANDB_MODE="offline"))
    if run.returncode != 0:
        sys.exit(f"{launcher} sweep failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return time.time() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8, help="an even number of runs (2 methods x runs/2 seeds)")
    parser.add_argument("--quick", action="store_true", help="2 runs (what the tests run)")
    parser.add_argument("--keep", metavar="DIR", help="a new folder that keeps both sweeps' folders")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else max(2, args.runs - args.runs % 2)
    if args.keep and os.path.exists(args.keep):
        parser.error(f"--keep {args.keep}: the folder exists already; name a new one")
    if args.keep:
        os.makedirs(args.keep)
    folder = contextlib.nullcontext(os.path.abspath(args.keep)) if args.keep else tempfile.TemporaryDirectory()
    with folder as tmp:
        from solo_plugins.data.export import export_digits

        data = str(export_digits(os.path.join(tmp, "digits")))
        local = sweep(os.path.join(tmp, "local"), data, runs // 2, "local")
        slurm = sweep(os.path.join(tmp, "slurm"), data, runs // 2, "slurm")
    print(f"{runs} tiny runs: local {local:.1f} s ({local / runs:.1f} s a run), slurm {slurm:.1f} s "
          f"({slurm / runs:.1f} s a run); overhead {(slurm - local) / runs:+.1f} s a run, ratio {slurm / local:.2f}")


if __name__ == "__main__":
    main()
