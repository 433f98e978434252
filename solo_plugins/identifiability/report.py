"""The latent-recovery study's report: results.md (tables with paired 95% intervals over seeds,
rank correlations with bootstrap intervals), curves.csv and the plots."""

import csv
import os
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from solo_plugins.analysis.statistics import spearman_interval
from solo_plugins.identifiability.plots import plot_all
from solo_plugins.identifiability.rows import (
    BASELINES,
    CHALLENGERS,
    UNIFORMITY_METRICS,
    by_seed,
    grid_table,
    interval_text,
    mean_std_text,
    methods_of,
    number,
    same_samples_rows,
    sizes_of,
    stage_rows,
    untrained,
)
from solo_plugins.identifiability.study import KEY_FIELDS, read_curves, selected, study_table


def value_table(rows: List[Dict], column: str, digits: int = 3) -> List[str]:
    return grid_table(methods_of(rows), sizes_of(rows), lambda m, b: mean_std_text(
        by_seed(rows, column, method=m, batch_size=b).values(), digits))


def difference_table(rows: List[Dict], column: str, pairs: Sequence[Tuple[str, str]], digits: int = 3) -> List[str]:
    sizes = sizes_of(rows)
    names = set(methods_of(rows))
    lines = ["| difference | " + " | ".join(f"b={b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for m, base in pairs:
        if m in names and base in names:
            cells = [interval_text(by_seed(rows, column, method=m, batch_size=b), by_seed(rows, column, method=base, batch_size=b),
                               digits) for b in sizes]
            lines.append(f"| {m} − {base} | " + " | ".join(cells) + " |")
    return lines


def selection_table(rows: List[Dict]) -> List[str]:
    sel = [r for r in rows if r["stage"] == "selection"]
    d = int(sel[0]["latent_dim"]) if sel else 0
    return grid_table(methods_of(sel), sizes_of(sel), lambda m, b: selected(rows, m, b, d) or "default")


def loss_gap_table(rows: List[Dict]) -> List[str]:
    """Final loss at the training batch size, at the large batch, and at the true latents."""

    def cell(m, b):
        sel = [r for r in rows if r["method"] == m and int(r["batch_size"]) == b]
        vals = [tuple(number(r.get(c)) for c in ("loss_batch", "loss_large", "loss_oracle")) for r in sel]
        vals = [v for v in vals if None not in v]
        if not vals:
            return "—"
        mean = [statistics.mean(v[i] for v in vals) for i in range(3)]
        return f"{mean[0]:.3f} / {mean[1]:.3f} / {mean[2]:.3f}"

    return grid_table(methods_of(rows), sizes_of(rows), cell)


def curve_table(curves: List[Dict], stage: str, column: str = "r2") -> List[str]:
    """Mean ``column`` over seeds at each curve step, per method and batch size (defaults)."""
    points = [c for c in curves if c["stage"] == stage and c["variant"] == "" and number(c.get(column)) is not None]
    steps = sorted({int(c["step"]) for c in points})
    lines = ["| method | batch | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for m in methods_of(points):
        for b in sorted({int(c["batch_size"]) for c in points if c["method"] == m}):
            cells = []
            for s in steps:
                vals = [float(c[column]) for c in points if c["method"] == m and int(c["batch_size"]) == b and int(c["step"]) == s]
                cells.append(f"{statistics.mean(vals):.3f}" if vals else "—")
            lines.append(f"| {m} | {b} | " + " | ".join(cells) + " |")
    return lines


def steps_to_reach(curves: List[Dict], stage: str, fraction: float = 0.95) -> Dict[Tuple[str, int], Optional[int]]:
    """{(method, batch): the first curve step whose mean R² reaches ``fraction`` of the final
    mean R²} for the default rows: how fast each loss gets near where it ends."""
    out = {}
    points = [c for c in curves if c["stage"] == stage and c["variant"] == "" and number(c.get("r2")) is not None]
    for m in methods_of(points):
        for b in sorted({int(c["batch_size"]) for c in points if c["method"] == m}):
            means = {}
            for c in points:
                if c["method"] == m and int(c["batch_size"]) == b:
                    means.setdefault(int(c["step"]), []).append(float(c["r2"]))
            series = sorted((s, statistics.mean(v)) for s, v in means.items())
            final = series[-1][1]
            out[(m, b)] = next((s for s, v in series if v >= fraction * final), None) if final > 0 else None
    return out


def correlations(rows: List[Dict], target: str = "r2") -> Dict[str, object]:
    """Spearman's rho (bootstrap 95% interval) of each uniformity metric with ``target``
    across every finished run of the given rows."""
    out = {}
    for metric in UNIFORMITY_METRICS:
        pairs = [(number(r.get(metric)), number(r.get(target))) for r in rows]
        pairs = [p for p in pairs if None not in p]
        if len(pairs) >= 3:
            out[metric] = spearman_interval([p[0] for p in pairs], [p[1] for p in pairs])
    return out


def ablation_table(rows: List[Dict]) -> List[str]:
    main = [r for r in rows if r["stage"] == "main" and r["method"] == "dhel"]
    ablations = sorted({r["variant"] for r in main if r["hp"] == "ablation"})
    sizes = sizes_of(main)
    lines = ["| DHEL | " + " | ".join(f"b={b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for variant in ablations:
        for column in ("r2", "procrustes"):
            cells = [interval_text(by_seed(main, column, variant=variant, batch_size=b), by_seed(main, column, variant="", batch_size=b))
                     for b in sizes]
            lines.append(f"| {column}: {variant} − default | " + " | ".join(cells) + " |")
    return lines


def write_curves(curves: List[Dict], path: str) -> None:
    fields = list(KEY_FIELDS) + ["hp", "step", "r2", "procrustes", "alignment", "uniformity", "wasserstein",
                                 "effective_rank", "loss_batch"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(curves)


def results_markdown(rows: List[Dict], curves: List[Dict], cfg: Optional[Dict] = None) -> str:
    cfg = cfg or {}
    main = [r for r in rows if r["stage"] == "main"]
    seeds = sorted({int(r["seed"]) for r in main})
    pairs = [(c, b) for c in CHALLENGERS for b in BASELINES]
    total = sum(float(r["seconds"]) for r in rows if number(r.get("seconds")) is not None)
    diverged = [r for r in rows if str(r.get("diverged_step", "")) != ""]
    lines = [
        "# Latent recovery, every table of the study",
        "",
        f"{len(rows)} runs, {total / 60:.0f} minutes of training and measurement in all. Main seeds: "
        f"{', '.join(map(str, seeds))}. Values are mean ± std over seeds; differences are paired by seed "
        "(same mixing, initial weights and data) with a 95% Student-t interval, * where it excludes 0. "
        "R²: linear regression from the normalized embedding to z (1 = identified up to a linear map); "
        "Procrustes: mean squared error after the best orthogonal map (0 = identified up to a rotation).",
        "",
        f"Diverged runs (a non-finite loss): {len(diverged)}"
        + (" — " + ", ".join(f"{r['stage']} {r['method']} {r['variant']} b{r['batch_size']} s{r['seed']}"
                           for r in diverged[:20]) if diverged else "") + ".",
    ]
    reference = untrained(curves, cfg.get("latent_dim", main[0]["latent_dim"] if main else ""))
    if reference:
        lines += ["", f"Reference: the untrained encoders (the same {len(reference['r2'])} seeds, before the first step) "
                  f"give R² {mean_std_text(reference['r2'])} and Procrustes {mean_std_text(reference['procrustes'])}: "
                  "a random MLP keeps much of z linearly; a loss has to beat this."]
    for choice in ("default", "tuned"):
        chosen = stage_rows(rows, "main", choice)
        if not chosen:
            continue
        label = "shipped defaults" if choice == "default" else "per-batch-size tuned hyperparameters"
        for column, digits in (("r2", 3), ("procrustes", 3)):
            lines += ["", f"## {column} at d = {chosen[0]['latent_dim']}, equal steps, {label}", ""]
            lines += value_table(chosen, column, digits)
            lines += ["", "Paired differences:", ""] + difference_table(chosen, column, pairs, digits)
    if any(r["stage"] == "selection" for r in rows):
        lines += ["", "## The selection's picks (best mean R² on the selection seeds; default on ties)", ""]
        lines += selection_table(rows)
    same = same_samples_rows(rows)
    if stage_rows(rows, "same_samples"):
        lines += ["", "## r2 at equal samples seen (defaults)", ""] + value_table(same, "r2")
        lines += ["", "Paired differences:", ""] + difference_table(same, "r2", pairs)
    high = stage_rows(rows, "high_dim")
    if high:
        lines += ["", f"## d = {high[0]['latent_dim']} (defaults): r2 and Procrustes", ""] + value_table(high, "r2")
        lines += [""] + value_table(high, "procrustes")
        lines += ["", "Paired differences (r2):", ""] + difference_table(high, "r2", pairs)
        lines += ["", "Paired differences (Procrustes):", ""] + difference_table(high, "procrustes", pairs)
    if any(r["hp"] == "ablation" for r in rows):
        lines += ["", "## DHEL's decoupling: include_augs=false against the default (true), paired", ""]
        lines += ablation_table(rows)
    defaults = stage_rows(rows, "main")
    if defaults:
        lines += ["", "## Loss at the end: training batch size / large batch "
                  f"({cfg.get('large_batch', 'large')} pairs) / the true latents on the large batch (defaults)", ""]
        lines += loss_gap_table(defaults)
    if curves:
        lines += ["", "## Convergence: mean R² over seeds along training (defaults, equal steps)", ""]
        lines += curve_table(curves, "main")
        reach = steps_to_reach(curves, "main")
        sizes = sorted({b for _, b in reach})
        lines += ["", "First curve step at 95% of the final mean R²:", "",
                  "| method | " + " | ".join(f"b={b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
        for m in methods_of([{"method": m} for m, _ in reach]):
            lines.append(f"| {m} | " + " | ".join(str(reach.get((m, b), "—")) for b in sizes) + " |")
    d10 = [r for r in rows if str(r["latent_dim"]) == str(cfg.get("latent_dim", rows[0]["latent_dim"] if rows else ""))
           and r["hp"] != "ablation"]
    for target in ("r2", "procrustes"):
        corr = correlations(d10, target)
        if not corr:
            continue
        lines += ["", f"## Which uniformity metric tracks identifiability: Spearman's rho with {target} across "
                  f"all {corr[next(iter(corr))].n} runs at d = {d10[0]['latent_dim']} (bootstrap 95% interval)", "",
                  "| metric | rho | 95% interval |", "|---|---|---|"]
        for metric, c in corr.items():
            lines.append(f"| {metric} | {c.rho:+.3f} | [{c.low:+.3f}, {c.high:+.3f}] |")
        by_size = {}
        for b in sizes_of(defaults):
            sel = [r for r in defaults if int(r["batch_size"]) == b]
            if len(sel) >= 3:
                by_size[b] = correlations(sel, target)
        if by_size:
            lines += ["", f"Within one batch size (main stage, defaults; rho with {target}):", "",
                      "| metric | " + " | ".join(f"b={b}" for b in by_size) + " |", "|---|" + "---|" * len(by_size)]
            for metric in UNIFORMITY_METRICS:
                lines.append(f"| {metric} | " + " | ".join(
                    f"{c[metric].rho:+.2f}" if metric in c else "—" for c in by_size.values()) + " |")
    return "\n".join(lines) + "\n"


def write_report(out_dir: str, cfg: Optional[Dict] = None) -> str:
    rows = study_table(out_dir).read()
    curves = read_curves(out_dir)
    write_curves(curves, os.path.join(out_dir, "curves.csv"))
    text = results_markdown(rows, curves, cfg)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    if rows:
        plot_all(rows, curves, out_dir)
    return text
