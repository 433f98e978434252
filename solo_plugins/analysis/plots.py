"""The comparison's figures (matplotlib, written as PNG)."""

import os
import statistics
from typing import Dict, List

from solo_plugins.analysis.report import (
    PROBES,
    batch_sizes,
    default_rows,
    hyperparameter_curves,
    method_order,
    values_by_seed,
)
from solo_plugins.analysis.results import METRICS, REFERENCE_ROWS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_err(values: List[float]):
    if not values:
        return float("nan"), 0.0
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def plot_accuracy_vs_batch_size(rows: List[Dict], out_dir: str) -> str:
    """One panel per probe: each method's accuracy (mean ± std over seeds) against batch
    size, the reference rows as horizontal lines."""
    plt = _pyplot()
    rows = default_rows(rows)
    sizes = batch_sizes(rows)
    probes = [c for c in PROBES if any(r.get(c) not in (None, "") for r in rows)]
    fig, axes = plt.subplots(1, len(probes), figsize=(5 * len(probes), 4), squeeze=False)
    for ax, column in zip(axes[0], probes):
        for i, m in enumerate(method_order(rows)):
            if m in REFERENCE_ROWS:
                mean, _ = _mean_err(list(values_by_seed(rows, m, None, column).values()))
                if mean == mean:
                    ax.axhline(mean, ls="--", color="gray" if m == "pixels" else "black", lw=1, label=m)
                continue
            stats = [_mean_err(list(values_by_seed(rows, m, b, column).values())) for b in sizes]
            ax.errorbar(sizes, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", capsize=3,
                        label=m, color=f"C{i}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.set_xlabel("batch size")
        ax.set_ylabel(f"{column} (%)")
        ax.set_title(column, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "accuracy_vs_batch_size.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_metrics(rows: List[Dict], out_dir: str) -> str:
    """Bars of each representation metric per method and batch size (random-init hatched)."""
    plt = _pyplot()
    rows = default_rows(rows)
    sizes = batch_sizes(rows)
    methods = [m for m in method_order(rows) if m != "pixels"]
    fig, axes = plt.subplots(2, 4, figsize=(15, 6))
    for ax, metric in zip(axes.flat, METRICS):
        for i, m in enumerate(methods):
            groups = [None] if m in REFERENCE_ROWS else sizes
            for j, b in enumerate(groups):
                vals = [float(r[metric]) for r in rows if r["method"] == m and r.get(metric) not in (None, "")
                        and (b is None or int(r["batch_size"]) == b)]
                if vals:
                    ax.bar(i * (len(sizes) + 1) + j, statistics.mean(vals), color="lightgray" if b is None else f"C{j}",
                           hatch="//" if b is None else None, label=f"batch {b}" if i == 0 and b is not None else None)
        ax.set_xticks([i * (len(sizes) + 1) + (len(sizes) - 1) / 2 for i in range(len(methods))], methods,
                      fontsize=7, rotation=30)
        ax.set_title(metric, fontsize=9)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "metrics.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_hyperparameters(rows: List[Dict], out_dir: str, column: str = "probe_acc1", shipped=None) -> str:
    """Accuracy against each method's own hyperparameter (one panel per method)."""
    plt = _pyplot()
    curves = hyperparameter_curves(rows, column, shipped)
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(4 * max(1, len(curves)), 3.5), squeeze=False)
    for ax, (method, name, points) in zip(axes[0], curves):
        for j, b in enumerate(sorted({b for _, by in points for b in by})):
            xs = [v for v, by in points if b in by]
            stats = [_mean_err(by[b]) for v, by in points if b in by]
            ax.errorbar(xs, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", capsize=3,
                        label=f"batch {b}", color=f"C{j}")
        ax.set_xscale("log")
        values = sorted(v for v, _ in points)
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel(name)
        ax.set_ylabel(f"{column} (%)")
        ax.set_title(method)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "hyperparameter_robustness.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_loss_vs_batch_size(out_dir: str, dim: int = 64, n: int = 4096, sizes=(8, 16, 32, 64, 128, 256, 512)) -> str:
    """Expected loss against batch size on fixed synthetic embeddings: points uniform on
    the sphere, each positive a noisy copy; also written as loss_vs_batch_size.csv."""
    import torch

    from solo_plugins.analysis.loss_vs_batch_size import expected_loss_by_batch_size

    plt = _pyplot()
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
    path = os.path.join(out_dir, "loss_vs_batch_size.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    with open(os.path.join(out_dir, "loss_vs_batch_size.csv"), "w") as f:
        f.write("loss,batch_size,mean,stderr\n")
        for name, by_size in curves.items():
            for b, (mean, err) in by_size.items():
                f.write(f"{name},{b},{mean:.6f},{err:.6f}\n")
    return path


def plot_gradient_vs_batch_size(stats, batches: int, out_path: str) -> str:
    """Relative bias of the mean mini-batch gradient (solid) against its Monte-Carlo noise
    level (dashed: a bias below it is not resolved), and relative spread of one mini-batch
    gradient, against batch size; from
    :func:`~solo_plugins.analysis.gradient_vs_batch_size.gradient_statistics`."""
    plt = _pyplot()
    fig, (ax_bias, ax_std) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, (name, by_size) in enumerate(stats.items()):
        sizes = sorted(by_size)
        ax_bias.plot(sizes, [by_size[b]["bias"] for b in sizes], marker="o", color=f"C{k}", label=name)
        ax_bias.plot(sizes, [by_size[b]["noise"] for b in sizes], ls="--", color=f"C{k}", alpha=0.6)
        ax_std.plot(sizes, [by_size[b]["std"] for b in sizes], marker="o", color=f"C{k}", label=name)
    ax_bias.axhline(0.05, color="grey", lw=0.8)
    ax_bias.set_ylabel("|mean g_b - g_N| / |g_N|")
    ax_bias.set_title(f"Bias of the mean of {batches} batch gradients\n(dashed: its Monte-Carlo noise)", fontsize=10)
    ax_std.set_ylabel("sqrt(E|g_b - E g_b|^2) / |g_N|")
    ax_std.set_title("Spread of one batch gradient", fontsize=10)
    for ax in (ax_bias, ax_std):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path
