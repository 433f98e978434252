"""The latent-recovery study's figures (matplotlib, PNG)."""

import math
import os
import statistics
from typing import Dict, List, Optional, Sequence

from solo_plugins.analysis.plots import _pyplot
from solo_plugins.analysis.statistics import t_quantile
from solo_plugins.identifiability.rows import (
    UNIFORMITY_METRICS,
    by_seed,
    converged_count,
    methods_of,
    same_samples_rows,
    sizes_of,
    stage_rows,
    untrained,
)


def _mean_ci(values: List[float]):
    if not values:
        return float("nan"), 0.0
    if len(values) < 2:
        return values[0], 0.0
    return statistics.mean(values), t_quantile(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def plot_r2_vs_batch_size(rows: List[Dict], out_dir: str, curves: List[Dict] = ()) -> str:
    """R² against batch size per method (mean and 95% interval over seeds): shipped defaults,
    tuned, and at equal samples seen."""
    plt = _pyplot()
    panels = [("equal steps, defaults", stage_rows(rows, "main")),
              ("equal steps, tuned", stage_rows(rows, "main", "tuned"))]
    if stage_rows(rows, "same_samples"):
        panels.append(("equal samples, defaults", same_samples_rows(rows)))
    panels = [(t, p) for t, p in panels if p]
    reference = untrained(list(curves), rows[0]["latent_dim"] if rows else "").get("r2", []) if curves else []
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False, sharey=True)
    for ax, (title, sel) in zip(axes[0], panels):
        for m in methods_of(sel):
            sizes = [b for b in sizes_of(sel) if by_seed(sel, "r2", method=m, batch_size=b)]
            stats = [_mean_ci(list(by_seed(sel, "r2", method=m, batch_size=b).values())) for b in sizes]
            ax.errorbar(sizes, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", capsize=3, label=m)
        if reference:
            ax.axhline(statistics.mean(reference), color="grey", linestyle="--", label="untrained")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("linear R² of z (held out)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "r2_vs_batch_size.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_convergence(curves: List[Dict], out_dir: str, column: str = "r2") -> str:
    """Mean ``column`` over seeds against training step, one panel per batch size (defaults)."""
    plt = _pyplot()
    points = [c for c in curves if c["stage"] == "main" and c["variant"] == "" and c.get(column) is not None]
    sizes = sorted({int(c["batch_size"]) for c in points})
    cols = min(4, len(sizes)) or 1
    fig, axes = plt.subplots(math.ceil(len(sizes) / cols) or 1, cols, figsize=(4.2 * cols, 3.4 * math.ceil(len(sizes) / cols)),
                             squeeze=False, sharey=True)
    for ax, b in zip(axes.flat, sizes):
        for m in methods_of(points):
            series: Dict[int, List[float]] = {}
            for c in points:
                if c["method"] == m and int(c["batch_size"]) == b and math.isfinite(float(c[column])):
                    series.setdefault(int(c["step"]), []).append(float(c[column]))
            steps = sorted(series)
            ax.plot(steps, [statistics.mean(series[s]) for s in steps], marker=".", label=m)
        ax.set_title(f"batch {b}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(sizes):]:
        ax.axis("off")
    axes[0][0].set_ylabel(column)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, f"convergence_{column}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_metric_correlations(rows: List[Dict], out_dir: str) -> str:
    """Each uniformity metric against R² over every run at the main latent dimension."""
    plt = _pyplot()
    d = rows[0]["latent_dim"] if rows else ""
    main = [r for r in rows if r["latent_dim"] == d and r["hp"] != "ablation"]
    fig, axes = plt.subplots(1, len(UNIFORMITY_METRICS), figsize=(4.5 * len(UNIFORMITY_METRICS), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], UNIFORMITY_METRICS):
        for m in methods_of(main):
            pts = [(float(r[metric]), float(r["r2"])) for r in main if r["method"] == m
                   and r.get(metric) not in ("", None) and r.get("r2") not in ("", None)]
            pts = [p for p in pts if all(math.isfinite(v) for v in p)]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, alpha=0.5, label=m)
        ax.set_xlabel(metric)
        ax.set_ylabel("R²")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    path = os.path.join(out_dir, "metric_correlations.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(rows: List[Dict], curves: List[Dict], out_dir: str) -> List[str]:
    paths = [plot_r2_vs_batch_size(rows, out_dir, curves), plot_metric_correlations(rows, out_dir)]
    if curves:
        paths += [plot_convergence(curves, out_dir, "r2"), plot_convergence(curves, out_dir, "procrustes")]
    return paths


# ------------------------------------------------------------------ the converged stage


def plot_early_vs_converged(rows: List[Dict], out_dir: str) -> str:
    """R² and Procrustes against batch size per method: at the early step (dashed) and at
    convergence or the cap (solid; hollow markers where not every run converged)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {}
    for ax, column in zip(axes, ("r2", "procrustes")):
        for m in methods_of(rows):
            sizes = [b for b in sizes_of(rows) if by_seed(rows, column, method=m, batch_size=b)]
            late = [statistics.mean(by_seed(rows, column, method=m, batch_size=b).values()) for b in sizes]
            early = [statistics.mean(by_seed(rows, f"{column}_early", method=m, batch_size=b).values() or [float("nan")])
                     for b in sizes]
            line, = ax.plot(sizes, late, marker="o", label=f"{m}", color=colors.get(m))
            colors[m] = line.get_color()
            ax.plot(sizes, early, linestyle="--", marker=".", color=colors[m], alpha=0.6)
            partial = [(b, v) for b, v in zip(sizes, late) if converged_count(rows, m, b)[0] < converged_count(rows, m, b)[1]]
            if partial:
                ax.plot([p[0] for p in partial], [p[1] for p in partial], "o", markerfacecolor="white",
                        markeredgecolor=colors[m], markersize=9)
        ax.axvline(int(rows[0]["latent_dim"]) + 1, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel({"r2": "linear R² of z", "procrustes": "Procrustes error"}[column])
        ax.grid(alpha=0.3)
    axes[0].set_title(f"solid: converged (hollow: not all runs); dashed: step {rows[0]['early_step']}", fontsize=9)
    axes[1].set_title("dotted line: batch = d + 1", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "early_vs_converged.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(curves: List[Dict], out_dir: str) -> Optional[str]:
    """Mean R² over seeds along training, one panel per batch size (defaults); a run's curve
    ends where it stopped, so later means are over the runs still training."""
    if not curves:
        return None
    plt = _pyplot()
    sizes = sorted({int(c["batch_size"]) for c in curves})
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.8 * len(sizes), 3.6), squeeze=False, sharey=True)
    for ax, b in zip(axes[0], sizes):
        for m in methods_of(curves):
            points: Dict[int, List[float]] = {}
            for c in curves:
                if c["method"] == m and int(c["batch_size"]) == b:
                    points.setdefault(int(c["step"]), []).append(float(c["r2"]))
            steps = sorted(points)
            ax.plot(steps, [statistics.mean(points[s]) for s in steps], label=m)
        ax.set_title(f"b = {b}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("R² (mean over runs still training)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "convergence_curves.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------- the finite-batch optimum


def plot_min_distance(rows: List[Dict], settings: Sequence[str], out_dir: str, local_minima: Sequence = ()) -> str:
    """The optimum's minimum pairwise distance against M, one panel per d, a line per
    setting; the simplex's and the cross-polytope's distances as grey marks. Rows whose key
    (setting, latent_dim, batch_size) is in ``local_minima`` are left out of the lines."""
    local_minima = set(local_minima)
    plt = _pyplot()
    dims = sorted({int(r["latent_dim"]) for r in rows})
    fig, axes = plt.subplots(1, len(dims), figsize=(3.6 * len(dims), 3.6), squeeze=False)
    for ax, d in zip(axes[0], dims):
        for name in settings:
            mine = sorted((int(r["batch_size"]), float(r["min_distance"])) for r in rows
                          if r["setting"] == name and int(r["latent_dim"]) == d
                          and (r["setting"], r["latent_dim"], r["batch_size"]) not in local_minima)
            if mine:
                ax.plot([m for m, _ in mine], [v for _, v in mine], marker=".", label=name, alpha=0.8)
        simplex = [(m, math.sqrt(2 + 2 / (m - 1))) for m in range(2, d + 2)]
        ax.plot([m for m, _ in simplex], [v for _, v in simplex], "k_", markersize=12, label="simplex")
        ax.plot([2 * d], [math.sqrt(2)], "kx", label="cross-polytope")
        ax.axvline(d + 1, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"d = {d}")
        ax.set_xlabel("M (pairs)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("minimum distance between anchors")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("the optimum of each loss (local minima left out); dotted: M = d + 1", fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, "min_distance.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
