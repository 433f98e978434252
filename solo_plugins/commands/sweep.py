"""The comparison harness: pretraining + linear evaluation + representation metrics over
methods x batch sizes x seeds, resumable, with a table and the paper's plots.

    solo-plugins-sweep --config-path configs/sweep --config-name digits.yaml [overrides]

Every run is built from the shipped configs ``<config_dir>/pretrain/<dataset>/<method>.yaml``
and ``<config_dir>/linear/<dataset>/linear.yaml`` plus the sweep's overrides. Finished runs
are rows of ``<out_dir>/results.csv`` and are skipped when the sweep is started again; a
run interrupted mid-pretraining is continued by solo-learn's auto-resume.
"""

import csv
import os
import statistics
import time
from typing import Dict, List

from omegaconf import DictConfig, OmegaConf

from solo_plugins.commands._hydra import compose, run_hydra

FIELDS = ["method", "batch_size", "seed", "val_acc1", "val_acc5", "pretrain_s", "linear_s"]
METRICS = [
    "z_alignment",
    "z_uniformity",
    "z_wasserstein_uniformity",
    "feats_wasserstein_uniformity",
    "z_effective_rank",
    "feats_effective_rank",
    "z_rank",
    "feats_rank",
]


def _read_results(path: str) -> List[Dict[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _append(path: str, row: Dict) -> None:
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS + METRICS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def _data_overrides(cfg: DictConfig) -> List[str]:
    if cfg.get("data_root") is None:
        return []
    root = os.path.abspath(cfg.data_root)
    return [f"data.train_path={root}/train", f"data.val_path={root}/val"]


def run_one(cfg: DictConfig, method: str, batch_size: int, seed: int) -> Dict:
    from solo_plugins.commands.linear import linear_eval
    from solo_plugins.commands.metrics import checkpoint_metrics
    from solo_plugins.commands.pretrain import pretrain

    run_id = f"{method}-b{batch_size}-s{seed}"
    ckpt_dir = os.path.abspath(os.path.join(cfg.out_dir, "runs", run_id))
    pre = compose(
        os.path.join(cfg.config_dir, "pretrain", cfg.dataset),
        f"{method}.yaml",
        [
            f"name={run_id}",
            f"optimizer.batch_size={batch_size}",
            f"+seed={seed}",
            f"checkpoint.dir={ckpt_dir}",
            "auto_resume.enabled=True",
            *_data_overrides(cfg),
            *cfg.get("pretrain_overrides", []),
        ],
    )
    start = time.time()
    checkpoint = pretrain(pre)
    pretrain_s = time.time() - start

    lin = compose(
        os.path.join(cfg.config_dir, "linear", cfg.dataset),
        "linear.yaml",
        [
            f"pretrained_feature_extractor='{checkpoint}'",
            f"+seed={seed}",
            *_data_overrides(cfg),
            *cfg.get("linear_overrides", []),
        ],
    )
    start = time.time()
    final = linear_eval(lin)
    linear_s = time.time() - start

    data = OmegaConf.create({"dataset": pre.data.dataset, **_paths(pre)})
    metrics = checkpoint_metrics(os.path.dirname(checkpoint), data, cfg.get("metrics_samples", 1024), seed=seed)
    return {
        "method": method,
        "batch_size": batch_size,
        "seed": seed,
        "val_acc1": final.get("val_acc1"),
        "val_acc5": final.get("val_acc5"),
        "pretrain_s": round(pretrain_s, 1),
        "linear_s": round(linear_s, 1),
        **{k: metrics[k] for k in METRICS},
    }


def _paths(pre: DictConfig) -> Dict:
    out = {"train_path": pre.data.train_path, "val_path": pre.data.val_path}
    if pre.data.get("image_size") is not None:
        out["image_size"] = pre.data.image_size
    return out


_BASELINES_FIRST = ("simclr", "dcl", "dclw", "dhel", "kcl")


def _methods_in_order(rows: List[Dict[str, str]]) -> List[str]:
    """The baselines first, then the paper's methods, then anything else by name."""
    rank = {m: i for i, m in enumerate(_BASELINES_FIRST)}
    return sorted({r["method"] for r in rows}, key=lambda m: (rank.get(m, len(rank)), m))


def _mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def summarize(rows: List[Dict[str, str]], out_dir: str) -> str:
    """results.md: linear top-1 per method and batch size (mean ± std over seeds), then
    the metrics per method at the largest batch size."""
    methods = _methods_in_order(rows)
    sizes = sorted({int(r["batch_size"]) for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"Linear-evaluation top-1 (%), mean ± std over seeds {', '.join(seeds)}", ""]
    lines.append("| method | " + " | ".join(f"batch {b}" for b in sizes) + " |")
    lines.append("|---|" + "---|" * len(sizes))
    for m in methods:
        cells = []
        for b in sizes:
            vals = [float(r["val_acc1"]) for r in rows if r["method"] == m and int(r["batch_size"]) == b]
            cells.append(_mean_std(vals) if vals else "")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", f"Representation metrics on validation images (batch {sizes[-1]}; z = projections, feats = backbone)", ""]
    lines.append("| method | " + " | ".join(METRICS) + " |")
    lines.append("|---|" + "---|" * len(METRICS))
    for m in methods:
        sel = [r for r in rows if r["method"] == m and int(r["batch_size"]) == sizes[-1]]
        if sel:
            lines.append(f"| {m} | " + " | ".join(_mean_std([float(r[k]) for r in sel]) for k in METRICS) + " |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    return text


def plot(rows: List[Dict[str, str]], out_dir: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = _methods_in_order(rows)
    sizes = sorted({int(r["batch_size"]) for r in rows})

    fig, ax = plt.subplots(figsize=(5, 4))
    for m in methods:
        means, errs = [], []
        for b in sizes:
            vals = [float(r["val_acc1"]) for r in rows if r["method"] == m and int(r["batch_size"]) == b]
            means.append(statistics.mean(vals) if vals else float("nan"))
            errs.append(statistics.stdev(vals) if len(vals) > 1 else 0)
        ax.errorbar(sizes, means, yerr=errs, marker="o", capsize=3, label=m)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.set_xlabel("batch size")
    ax.set_ylabel("linear eval top-1 (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "accuracy_vs_batch_size.png"), dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    for ax, metric in zip(axes.flat, METRICS):
        for i, m in enumerate(methods):
            for j, b in enumerate(sizes):
                vals = [float(r[metric]) for r in rows if r["method"] == m and int(r["batch_size"]) == b]
                if vals:
                    ax.bar(i * (len(sizes) + 1) + j, statistics.mean(vals), color=f"C{j}",
                           label=f"batch {b}" if i == 0 else None)
        ax.set_xticks([i * (len(sizes) + 1) + (len(sizes) - 1) / 2 for i in range(len(methods))], methods)
        ax.set_title(metric, fontsize=9)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "metrics.png"), dpi=120)
    plt.close(fig)


def plot_loss_vs_batch_size(out_dir: str, dim: int = 64, n: int = 4096, sizes=(8, 16, 32, 64, 128, 256, 512)) -> None:
    """Expected loss against batch size on fixed synthetic embeddings: points uniform on
    the sphere, each positive a noisy copy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from solo_plugins.analysis.loss_vs_batch_size import expected_loss_by_batch_size

    gen = torch.Generator().manual_seed(0)
    z1 = torch.randn(n, dim, generator=gen)
    z2 = z1 + 0.5 * torch.randn(n, dim, generator=gen)
    curves = expected_loss_by_batch_size(z1, z2, sizes)
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, by_size in curves.items():
        ys = [by_size[b][0] for b in sizes]
        ax.errorbar(sizes, [y - ys[0] for y in ys], yerr=[by_size[b][1] for b in sizes], marker="o",
                    capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel(f"E[loss] - E[loss at batch {sizes[0]}]")
    ax.set_title("Expected loss on fixed embeddings")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "loss_vs_batch_size.png"), dpi=120)
    plt.close(fig)
    with open(os.path.join(out_dir, "loss_vs_batch_size.csv"), "w") as f:
        f.write("loss,batch_size,mean,stderr\n")
        for name, by_size in curves.items():
            for b, (mean, err) in by_size.items():
                f.write(f"{name},{b},{mean:.6f},{err:.6f}\n")


def sweep(cfg: DictConfig) -> str:
    os.makedirs(cfg.out_dir, exist_ok=True)
    results = os.path.join(cfg.out_dir, "results.csv")
    grid = [(m, int(b), int(s)) for s in cfg.seeds for b in cfg.batch_sizes for m in cfg.methods]
    done = {(r["method"], int(r["batch_size"]), int(r["seed"])) for r in _read_results(results)}
    started = time.time()
    todo = [g for g in grid if g not in done]
    print(f"sweep: {len(grid)} runs, {len(grid) - len(todo)} already in {results}", flush=True)
    for k, (method, batch_size, seed) in enumerate(todo, 1):
        print(f"[{len(grid) - len(todo) + k}/{len(grid)}] {method} batch {batch_size} seed {seed} ...", flush=True)
        t0 = time.time()
        row = run_one(cfg, method, batch_size, seed)
        _append(results, row)
        spent = time.time() - started
        eta = spent / k * (len(todo) - k)
        print(
            f"[{len(grid) - len(todo) + k}/{len(grid)}] {method} batch {batch_size} seed {seed}: "
            f"top-1 {row['val_acc1']:.2f} in {time.time() - t0:.0f}s; elapsed {spent:.0f}s, "
            f"about {eta:.0f}s left",
            flush=True,
        )
    rows = [r for r in _read_results(results) if (r["method"], int(r["batch_size"]), int(r["seed"])) in set(grid)]
    table = summarize(rows, cfg.out_dir)
    plot(rows, cfg.out_dir)
    if cfg.get("loss_vs_batch_size", True):
        plot_loss_vs_batch_size(cfg.out_dir)
    print(table)
    print(f"wrote {cfg.out_dir}/results.csv, results.md and PNG plots")
    return table


def main() -> None:
    run_hydra(sweep)


if __name__ == "__main__":
    main()
