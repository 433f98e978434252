"""The converged stage's report: results.md (each claim at convergence, side by side with the
same runs at the early step), curves.csv and two figures.

Every cell says how many of its runs converged; a run that hit its cap is measured at the cap
and counted as unconverged, never mixed in silently.
"""

import csv
import os
import statistics
from typing import Dict, List, Sequence, Tuple

from solo_plugins.analysis.statistics import spearman_interval
from solo_plugins.identifiability.selection import selection_lines
from solo_plugins.identifiability.converged_study import ConvergedStudy, converged_table
from solo_plugins.identifiability.plots import plot_curves, plot_early_vs_converged
from solo_plugins.identifiability.rows import (
    by_seed,
    converged_count,
    grid_table,
    interval_text,
    mean_std_text,
    methods_of,
    number,
    sizes_of,
)
from solo_plugins.identifiability.selected_report import selected_lines, selected_rows
from solo_plugins.identifiability.study import read_curves

PAIRS = (("dhel", "infonce"), ("dhel", "dcl"), ("kcl", "infonce"), ("kcl", "dcl"))
UNIFORMITY_METRICS = ("uniformity", "wasserstein", "effective_rank")


def _select(rows: List[Dict], stage: str, hp: str = "default") -> List[Dict]:
    return [r for r in rows if r["stage"] == stage and r["hp"] == hp]


def value_table(rows: List[Dict], column: str, digits: int = 3, counts: bool = True) -> List[str]:
    """mean ± std over seeds of ``column`` per method and batch size; with ``counts``, each
    cell ends with (converged/runs)."""

    def cell(m, b):
        text = mean_std_text(by_seed(rows, column, method=m, batch_size=b).values(), digits)
        if counts and text != "—":
            text += " ({}/{})".format(*converged_count(rows, m, b))
        return text

    return grid_table(methods_of(rows), sizes_of(rows), cell)


def stopped_table(rows: List[Dict]) -> List[str]:
    """Converged runs per cell and the median step they stopped at (the cap for the others)."""

    def cell(m, b):
        sel = [r for r in rows if r["method"] == m and int(r["batch_size"]) == b]
        if not sel:
            return "—"
        steps = [int(r["stopped_step"]) for r in sel if r["converged"] == "true"]
        median = f", median step {int(statistics.median(steps)):,}" if steps else ""
        return f"{len(steps)}/{len(sel)}{median} (cap {int(sel[0]['steps']):,})"

    return grid_table(methods_of(rows), sizes_of(rows), cell)


def side_by_side_table(rows: List[Dict], column: str, pairs: Sequence[Tuple[str, str]], digits: int = 3) -> List[str]:
    """Paired differences at the early step and at the stop, per batch size (rows: pairs x
    batch sizes), and whether the sign flipped between the two."""
    names = set(methods_of(rows))
    lines = [f"| difference | batch | at step {rows[0]['early_step']} | at convergence (or cap) | converged | reading |",
             "|---|---|---|---|---|---|"]
    for m, base in pairs:
        if m not in names or base not in names:
            continue
        for b in sizes_of(rows):
            early = interval_text(by_seed(rows, f"{column}_early", method=m, batch_size=b),
                              by_seed(rows, f"{column}_early", method=base, batch_size=b), digits)
            late = interval_text(by_seed(rows, column, method=m, batch_size=b),
                             by_seed(rows, column, method=base, batch_size=b), digits)
            if early == "—" or late == "—":
                continue
            km, nm = converged_count(rows, m, b)
            kb, nb = converged_count(rows, base, b)
            lines.append(f"| {m} − {base} | {b} | {early} | {late} | {km}/{nm}, {kb}/{nb} | "
                         f"{_reading(early, late)} |")
    return lines


def _reading(early: str, late: str) -> str:
    def sign(text):
        if not text.endswith("*"):
            return 0
        return 1 if text.startswith("+") else -1

    a, b = sign(early), sign(late)
    if a and b and a != b:
        return "**flipped**"
    if a and not b:
        return "gone"
    if b and not a:
        return "appears"
    return "same" if a == b and a else ""


def tuned_table(rows: List[Dict], column: str, digits: int = 3) -> List[str]:
    """Tuned − default per method and batch size (paired by seed)."""
    tuned = [r for r in rows if r["hp"] == "tuned"]

    def cell(m, b):
        t = [r for r in tuned if r["method"] == m and int(r["batch_size"]) == b]
        if not t:
            return "—"
        default = by_seed(rows, column, stage=t[0]["stage"], hp="default", method=m, batch_size=b)
        return f"{t[0]['variant']}: " + interval_text(by_seed(t, column), default, digits)

    return grid_table(methods_of(tuned), sizes_of(tuned), cell)


def correlation_lines(rows: List[Dict], target: str) -> List[str]:
    lines = [f"| metric | ρ with {target} at step {rows[0]['early_step']} | ρ at convergence (or cap) |", "|---|---|---|"]
    for metric in UNIFORMITY_METRICS:
        cells = []
        for suffix in ("_early", ""):
            pairs = [(number(r.get(metric + suffix)), number(r.get(target + suffix))) for r in rows]
            pairs = [p for p in pairs if None not in p]
            if len(pairs) < 5:
                cells.append("—")
                continue
            c = spearman_interval([p[0] for p in pairs], [p[1] for p in pairs])
            cells.append(f"{c.rho:+.2f} [{c.low:+.2f}, {c.high:+.2f}] (n={c.n})")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return lines


CURVE_COLUMNS = ("stage", "method", "variant", "hp", "batch_size", "seed", "step", "r2", "procrustes", "directions",
                 "min_canonical", "alignment", "uniformity", "wasserstein", "effective_rank", "loss_batch",
                 "loss_large", "loss_gap")


def write_curves(curves: List[Dict], path: str) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, CURVE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for c in curves:
            writer.writerow({k: (f"{c[k]:.6g}" if isinstance(c.get(k), float) else c.get(k, "")) for k in CURVE_COLUMNS})


def write_converged_report(out_dir: str, cfg: Dict) -> str:
    rows = converged_table(out_dir).read()
    if any(b.get("selected") for s in cfg.get("settings") or [] for b in s.get("batches") or []):
        # the picks evaluated: their own report
        chosen = [g for g in ConvergedStudy(cfg, progress=lambda line: None).groups() if g.label.endswith(" selected")]
        rows = selected_rows(rows, chosen)
        text = "\n".join(["# The picks of the selection at convergence, evaluated", "",
                          f"{len(rows)} runs ({sum(r['converged'] == 'true' for r in rows)} converged), seeds "
                          f"{', '.join(sorted({r['seed'] for r in rows}, key=int))}. Cells: mean ± std over seeds; "
                          "an unconverged run is measured at its cap.", "", *selected_lines(rows)])
        with open(os.path.join(out_dir, "results.md"), "w") as f:
            f.write(text)
        return text
    main = _select(rows, "converged")
    grids_only = bool(rows) and all(r["hp"] == "grid" for r in rows)
    title = "Hyperparameters selected at convergence: the grids" if grids_only else "The latent-recovery study at convergence"
    lines = [f"# {title}", "",
             f"{len(rows)} runs ({sum(r['converged'] == 'true' for r in rows)} converged). Cells: mean ± std over "
             "seeds (converged/runs); differences: mean [paired 95% Student-t interval], `*` when it excludes 0. "
             "An unconverged run is measured at its cap.", ""]
    if main:
        lines += ["## Stopping", "", *stopped_table(main), "",
                  "## R² at convergence or at the cap (defaults)", "", *value_table(main, "r2"), "",
                  "## R² at the early step, same runs", "", *value_table(main, "r2_early", counts=False), "",
                  "## Procrustes at convergence or at the cap (defaults)", "", *value_table(main, "procrustes"), "",
                  "## Latent directions recovered (canonical correlation >= the criterion's)", "",
                  *value_table(main, "directions", 1), "",
                  "## Effective rank at convergence or at the cap", "", *value_table(main, "effective_rank", 2), "",
                  "## Paired differences, R²: early step vs convergence", "", *side_by_side_table(main, "r2", PAIRS), "",
                  "## Paired differences, Procrustes: early step vs convergence", "",
                  *side_by_side_table(main, "procrustes", PAIRS), "",
                  "## Loss gap (large-batch loss − the loss at the true latents)", "",
                  *value_table(main, "loss_gap", 4), "",
                  "## Uniformity metrics against recovery (Spearman, all runs of the stage)", "",
                  *correlation_lines(main, "procrustes"), "", *correlation_lines(main, "r2"), ""]
    tuned = [r for r in rows if r["stage"] == "converged"]
    if any(r["hp"] == "tuned" for r in tuned):
        lines += ["## Hyperparameter sensitivity: tuned − default, R²", "", *tuned_table(tuned, "r2"), "",
                  f"## Hyperparameter sensitivity: tuned − default, R² at step {tuned[0]['early_step']}, same runs", "",
                  *tuned_table(tuned, "r2_early"), "",
                  "## Hyperparameter sensitivity: tuned − default, Procrustes", "", *tuned_table(tuned, "procrustes"), "",
                  "## R² at convergence or at the cap (tuned)", "", *value_table(_select(rows, "converged", "tuned"), "r2"), ""]
    if any(r["hp"] == "grid" for r in rows):
        defaults = {m: dict(v) for m, v in (cfg.get("methods") or {}).items()}
        grids = {int(b["batch_size"]): b.get("grid") or {} for s in cfg.get("settings") or [] for b in s["batches"]}
        lines += selection_lines(rows, defaults, grids)
    for stage in sorted({r["stage"] for r in rows if r["hp"] != "grid"} - {"converged"}):
        sel = _select(rows, stage)
        lines += [f"## {stage}: R²", "", *value_table(sel, "r2"), "", f"## {stage}: stopping", "",
                  *stopped_table(sel), "", f"## {stage}: paired differences", "",
                  *side_by_side_table(sel, "r2", (("dhel", "infonce"),)), ""]
    text = "\n".join(lines)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    curves = read_curves(out_dir, ("stage", "method", "variant", "hp", "batch_size", "seed"))
    write_curves(curves, os.path.join(out_dir, "curves.csv"))
    if main:
        plot_early_vs_converged(main, out_dir)
        plot_curves([c for c in curves if c["stage"] == "converged" and c["hp"] == "default"], out_dir)
    return text
