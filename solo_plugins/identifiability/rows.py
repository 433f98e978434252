"""Reading the latent-recovery rows: selections, per-seed values and their text forms, shared
by the reports and the plots (which import this, never each other's report)."""

import math
import statistics
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from solo_plugins.analysis.statistics import paired_difference
from solo_plugins.identifiability.study import selected

ORDER = ("infonce", "dcl", "dclw", "dhel", "kcl", "kcl_imq")
BASELINES = ("infonce", "dcl")
CHALLENGERS = ("dhel", "kcl", "kcl_imq")
UNIFORMITY_METRICS = ("uniformity", "wasserstein", "effective_rank")


def number(value) -> Optional[float]:
    if value in (None, ""):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def methods_of(rows: List[Dict]) -> List[str]:
    names = {r["method"] for r in rows}
    return [m for m in ORDER if m in names] + sorted(names - set(ORDER))


def by_seed(rows: List[Dict], column: str, **where) -> Dict[int, float]:
    """{seed: value} of the rows matching ``where`` (field=value as strings)."""
    out = {}
    for r in rows:
        if all(str(r.get(k)) == str(v) for k, v in where.items()):
            value = number(r.get(column))
            if value is not None:
                out[int(r["seed"])] = value
    return out


def stage_rows(rows: List[Dict], stage: str, choice: str = "default") -> List[Dict]:
    """The rows of ``stage`` under one hyperparameter choice: ``default`` (the shipped
    settings) or ``tuned`` (per method and batch size, the selection's pick, which is the
    default row when the default won)."""
    picks: Dict[Tuple[str, str, str], str] = {}  # one selection per (method, batch, d), not per row

    def pick(r):
        key = (r["method"], r["batch_size"], r["latent_dim"])
        if key not in picks:
            picks[key] = selected(rows, r["method"], int(r["batch_size"]), int(r["latent_dim"]))
        return picks[key]

    return [r for r in rows if r["stage"] == stage and r["hp"] != "ablation"
            and r["variant"] == ("" if choice == "default" else pick(r))]


def same_samples_rows(rows: List[Dict]) -> List[Dict]:
    """The same-samples stage with the main stage's run that sees as many samples (defaults)."""
    same = stage_rows(rows, "same_samples")
    budget = {int(r["samples"]) for r in same}
    return same + [r for r in stage_rows(rows, "main") if int(r["samples"]) in budget]


def sizes_of(rows: List[Dict]) -> List[int]:
    return sorted({int(r["batch_size"]) for r in rows})


def mean_std_text(values: Sequence[float], digits: int = 3) -> str:
    values = list(values)
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def interval_text(method: Dict[int, float], base: Dict[int, float], digits: int = 3) -> str:
    d = paired_difference(method, base)
    if d is None:
        return "—"
    if d.low is None:
        return f"{d.mean:+.{digits}f} (n=1)"
    mark = " *" if d.excludes_zero else ""
    return f"{d.mean:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}]{mark}"


def untrained(curves: List[Dict], latent_dim) -> Dict[str, List[float]]:
    """Each measurement of the untrained encoders (curve step 0 of the main stage, one value per
    seed): the reference a trained encoder has to beat."""
    first = {}
    for c in curves:
        if c["stage"] == "main" and int(c["step"]) == 0 and str(c["latent_dim"]) == str(latent_dim):
            first.setdefault(int(c["seed"]), c)
    return {m: [float(c[m]) for c in first.values()] for m in ("r2", "procrustes", "effective_rank")} if first else {}


def converged_count(rows: List[Dict], method: str, b: int) -> Tuple[int, int]:
    sel = [r for r in rows if r["method"] == method and int(r["batch_size"]) == b]
    return sum(r["converged"] == "true" for r in sel), len(sel)


def grid_table(methods: Sequence[str], sizes: Sequence[int], cell: Callable[[str, int], str]) -> List[str]:
    """A markdown table with a row per method and a column per batch size; ``cell(method, b)``
    writes each cell."""
    lines = ["| method | " + " | ".join(f"b={b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    return lines + [f"| {m} | " + " | ".join(cell(m, b) for b in sizes) + " |" for m in methods]
