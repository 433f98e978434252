"""Cost of a DHEL / KCL / DCL training step against solo-learn's own SimCLR step: same
backbone, batch and projector sizes, steps alternated (simclr, dhel, kcl, ... repeated)
in one run; prints median times and ratios.

    python scripts/bench_training_step.py --backbone resnet18 --batch-size 128 --repeats 6
"""

import argparse
import statistics
import time

import torch
from omegaconf import OmegaConf

import solo_plugins  # noqa: F401  (registers the methods)
from solo.methods import METHODS

KWARGS = {
    "simclr": {"temperature": 0.2},
    "dhel": {"temperature": 0.3},
    "kcl": {"kernel": "gaussian", "t": 2.0, "gamma": 16.0},
    "dcl": {"temperature": 0.1},
}


def build(method, backbone, crop):
    cfg = OmegaConf.create(
        {
            "method": method,
            "backbone": {"name": backbone, "kwargs": {}},
            "method_kwargs": {"proj_hidden_dim": 2048, "proj_output_dim": 128, **KWARGS[method]},
            "data": {"dataset": "cifar10", "num_classes": 10, "num_large_crops": 2, "num_small_crops": 0},
            "optimizer": {"name": "sgd", "batch_size": 1, "lr": 0.1, "weight_decay": 1e-5,
                          "classifier_lr": 0.1, "exclude_bias_n_norm_wd": False, "kwargs": {"momentum": 0.9}},
            "scheduler": {"name": "none"},
            "max_epochs": 1,
        }
    )
    model = METHODS[method](cfg)
    model.log_dict = lambda *a, **k: None
    model.log = lambda *a, **k: None
    return model


def step(model, optimizer, batch):
    start = time.perf_counter()
    loss = model.training_step(batch, 0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--methods", nargs="+", default=["simclr", "dhel", "kcl", "dcl"])
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator().manual_seed(0)
    views = [torch.randn(args.batch_size, 3, args.crop, args.crop, generator=gen).to(device) for _ in range(2)]
    batch = [torch.arange(args.batch_size, device=device), views, torch.randint(0, 10, (args.batch_size,), device=device)]
    models, optims = {}, {}
    for m in args.methods:
        torch.manual_seed(0)
        models[m] = build(m, args.backbone, args.crop).to(device).train()
        optims[m] = torch.optim.SGD(models[m].parameters(), lr=0.01)
    times = {m: [] for m in args.methods}
    for r in range(args.repeats + 1):
        for m in args.methods:
            t = step(models[m], optims[m], batch)
            if r:  # the first round warms up
                times[m].append(t)
    base = statistics.median(times[args.methods[0]])
    print(f"torch {torch.__version__} on {device}, {args.backbone}, batch {args.batch_size}, "
          f"{args.crop}x{args.crop}, median of {args.repeats}")
    print(f"| method | step ms | vs {args.methods[0]} |")
    print("|---|---|---|")
    for m in args.methods:
        med = statistics.median(times[m])
        print(f"| {m} | {med * 1e3:.1f} | {med / base:.3f}x |")


if __name__ == "__main__":
    main()
