"""The report of the picks evaluated at convergence (``configs/sweep/identifiability_selected.yaml``):
each loss at its pick against InfoNCE at its pick, paired over seeds, per batch size.

The rows are the runs of the config's ``selected`` groups: those trained for it and those
copied from the converged stage where a pick equals a setting that stage ran (their ``hp``
says which: ``default`` or ``tuned``; the trained ones say ``selected``).
"""

from typing import Dict, List

from solo_plugins.identifiability.rows import (
    by_seed,
    converged_count,
    grid_table,
    interval_text,
    mean_std_text,
    methods_of,
    sizes_of,
)
from solo_plugins.identifiability.study import KEY_FIELDS

BASE = "infonce"
MEASURES = (("r2", "R²", 3), ("directions", "Latent directions recovered", 1), ("procrustes", "Procrustes error (lower is better)", 3))


def selected_rows(rows: List[Dict], groups) -> List[Dict]:
    """The rows of the runs of ``groups`` (a converged study's ``selected`` groups)."""
    keys = {r.key for g in groups for r in g.runs}
    return [r for r in rows if tuple(r[f] for f in KEY_FIELDS) in keys]


def _pick_cell(rows: List[Dict], m: str, b: int) -> str:
    sel = [r for r in rows if r["method"] == m and int(r["batch_size"]) == b]
    if not sel:
        return "—"
    setting = sel[0]["variant"] or "default"
    origin = sorted({r["hp"] for r in sel} - {"selected"})
    return setting + (f" (rows of the converged stage's {', '.join(origin)})" if origin else "")


def selected_lines(rows: List[Dict]) -> List[str]:
    """Markdown: the picks, stopping, each measure per cell and the paired differences with
    InfoNCE (mean [95% Student-t interval over seeds], ``*`` when it excludes 0)."""
    methods, sizes = methods_of(rows), sizes_of(rows)
    others = [m for m in methods if m != BASE]

    def stopped(m, b):
        k, n = converged_count(rows, m, b)
        cap = {int(r["steps"]) for r in rows if int(r["batch_size"]) == b}
        return f"{k}/{n} (cap {max(cap):,})" if n else "—"

    lines = ["## The picks evaluated", "", "Variant: the loss settings changed from the shipped default.", "",
             *grid_table(methods, sizes, lambda m, b: _pick_cell(rows, m, b)), "",
             "## Converged runs", "", *grid_table(methods, sizes, stopped), ""]
    for column, name, digits in MEASURES:
        lines += [f"## {name} at convergence or at the cap", "",
                  *grid_table(methods, sizes, lambda m, b: mean_std_text(
                      by_seed(rows, column, method=m, batch_size=b).values(), digits)), "",
                  f"## {name}: each loss at its pick − InfoNCE at its pick, paired by seed", "",
                  *grid_table(others, sizes, lambda m, b: interval_text(
                      by_seed(rows, column, method=m, batch_size=b),
                      by_seed(rows, column, method=BASE, batch_size=b), digits)), ""]
    return lines
