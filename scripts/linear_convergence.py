"""Does solo-learn's linear evaluation converge? Its top-1 at growing epoch budgets.

    python scripts/linear_convergence.py --dataset fashion_mnist --data-root datasets/fashion_mnist \
        --epochs 5 10 20 --setting "false 2.0" --setting "true 0.5" CKPT [CKPT ...]

Each setting is ``feature_batchnorm lr [train_augmentation]``. Prints one line per (checkpoint, setting, epochs);
a run has converged when more epochs stop moving its accuracy. The linear evaluation runs in
a temporary folder and leaves nothing behind.
"""

import argparse
import os
import tempfile
import time

from solo_plugins.commands._hydra import compose
from solo_plugins.commands.linear import linear_eval
from solo_plugins.shipped_configs import configs_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--optimizer", default="sgd", help="sgd, lars or adamw (solo's linear optimizers)")
    parser.add_argument("--cache-features", action="store_true",
                        help="compute the frozen features once (needs train_augmentation false)")
    parser.add_argument("--setting", action="append", default=None,
                        help='"<feature_batchnorm> <lr>", e.g. "true 0.5" (repeatable)')
    args = parser.parse_args()
    root = os.path.abspath(args.data_root)
    for checkpoint in args.checkpoints:
        for setting in args.setting or ["false 2.0", "true 0.5"]:
            batchnorm, lr, augment = (setting.split() + ["true"])[:3]
            for epochs in args.epochs:
                with tempfile.TemporaryDirectory() as tmp:
                    cfg = compose(
                        os.path.join(configs_dir(), "linear", args.dataset),
                        "linear.yaml",
                        [f"pretrained_feature_extractor='{os.path.abspath(checkpoint)}'",
                         f"data.train_path={root}/train", f"data.val_path={root}/val",
                         f"+feature_batchnorm={batchnorm}", f"optimizer.lr={lr}",
                         f"+data.train_augmentation={augment}",
                         f"max_epochs={epochs}", f"optimizer.batch_size={args.batch_size}",
                         f"optimizer.name={args.optimizer}", f"+check_val_every_n_epoch={epochs}",
                         "data.num_workers=1", f"checkpoint.dir={tmp}",
                         f"+cache_features={str(args.cache_features).lower()}"],
                    )
                    start = time.time()
                    final = linear_eval(cfg)
                print(f"{os.path.basename(checkpoint)}  feature_batchnorm={batchnorm} lr={lr} augment={augment} batch={args.batch_size} {args.optimizer} "
                      f"cache={args.cache_features} epochs={epochs:3d}  val_acc1 {final.get('val_acc1', float('nan')):.2f}  "
                      f"({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
