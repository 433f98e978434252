"""results.md of a comparison: accuracy per probe with reference rows, paired differences
to the baseline with 95% intervals, representation metrics, hyperparameter variants."""

import json
from typing import Dict, List, Optional

from solo_plugins.analysis.results import METRICS, REFERENCE_ROWS
from solo_plugins.analysis.statistics import mean_std, paired_difference

PROBES = {
    "probe_acc1": "converged logistic-regression probe (L-BFGS on standardized backbone features, "
    "L2 strength chosen on a held-out 20% of the training set)",
    "knn_acc1": "weighted 20-NN probe (cosine, T = 0.07) on backbone features",
    "linear_acc1": "solo-learn's linear evaluation (its LinearModel, SGD on the frozen backbone; "
    "settings in the rows' linear_protocol)",
}
METHOD_ORDER = ("infonce", "dcl", "dclw", "dhel", "kcl", "simclr")


def _num(value) -> Optional[float]:
    return float(value) if value not in (None, "") else None


def method_order(rows: List[Dict]) -> List[str]:
    """The baseline and the paper's methods in a fixed order, then others, then references."""
    rank = {m: i for i, m in enumerate(METHOD_ORDER + REFERENCE_ROWS)}
    refs = {m: len(rank) + 1 for m in REFERENCE_ROWS}
    return sorted({r["method"] for r in rows}, key=lambda m: (refs.get(m, 0), rank.get(m, len(rank)), m))


def default_rows(rows: List[Dict]) -> List[Dict]:
    return [r for r in rows if not r.get("variant")]


def batch_sizes(rows: List[Dict]) -> List[int]:
    return sorted({int(r["batch_size"]) for r in rows if r.get("batch_size") not in (None, "")})


def values_by_seed(rows: List[Dict], method: str, batch_size: Optional[int], column: str, variant: str = "") -> Dict[int, float]:
    """{seed: value} of a method (any batch size for the reference rows)."""
    out = {}
    for r in rows:
        if r["method"] != method or r.get("variant", "") != variant or _num(r.get(column)) is None:
            continue
        if method not in REFERENCE_ROWS and int(r["batch_size"]) != batch_size:
            continue
        out[int(r["seed"])] = _num(r[column])
    return out


def _cell(values: List[float]) -> str:
    if not values:
        return "—"
    mean, std = mean_std(values)
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def accuracy_table(rows: List[Dict], column: str) -> List[str]:
    rows = default_rows(rows)
    sizes = batch_sizes(rows)
    lines = ["| method | " + " | ".join(f"batch {b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for m in method_order(rows):
        cells = [_cell(list(values_by_seed(rows, m, b, column).values())) for b in sizes]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def difference_table(rows: List[Dict], column: str, baseline: str) -> List[str]:
    rows = default_rows(rows)
    sizes = batch_sizes(rows)
    lines = ["| method | " + " | ".join(f"batch {b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for m in method_order(rows):
        if m in (baseline,) + REFERENCE_ROWS:
            continue
        cells = []
        for b in sizes:
            d = paired_difference(values_by_seed(rows, m, b, column), values_by_seed(rows, baseline, b, column))
            if d is None:
                cells.append("—")
            elif d.low is None:
                cells.append(f"{d.mean:+.2f} (n=1)")
            else:
                mark = " *" if d.excludes_zero else ""
                cells.append(f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}]{mark}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def metrics_table(rows: List[Dict]) -> List[str]:
    rows = default_rows(rows)
    sizes = batch_sizes(rows)
    lines = ["| method | batch | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for m in method_order(rows):
        if m == "pixels":
            continue
        for b in ([None] if m in REFERENCE_ROWS else sizes):
            sel = [r for r in rows if r["method"] == m and (b is None or int(r["batch_size"]) == b)]
            if sel and all(_num(r.get(METRICS[0])) is not None for r in sel):
                cells = [_cell([float(r[k]) for r in sel]) for k in METRICS]
                lines.append(f"| {m} | {b if b is not None else '—'} | " + " | ".join(cells) + " |")
    return lines


def variant_table(rows: List[Dict], column: str = "probe_acc1", shipped: Optional[Dict] = None) -> List[str]:
    """Each method's own hyperparameter against accuracy, per batch size."""
    lines = ["| method | setting | " + " | ".join(f"batch {b}" for b in batch_sizes(rows)) + " |",
             "|---|---|" + "---|" * len(batch_sizes(rows))]
    for m, name, points in hyperparameter_curves(rows, column, shipped):
        for value, by_size in points:
            cells = [_cell(by_size.get(b, [])) for b in batch_sizes(rows)]
            lines.append(f"| {m} | {name}={value:g} | " + " | ".join(cells) + " |")
    return lines


def hyperparameter_curves(rows: List[Dict], column: str = "probe_acc1", shipped: Optional[Dict] = None):
    """[(method, hyperparameter, [(value, {batch: [accuracies over seeds]}), ...])] for every
    method with variants; the shipped setting is the point at its own value: ``shipped``
    {(method, key): value} where given (keys outside the loss, such as ``views``), else the
    row's ``loss_kwargs``."""
    shipped = shipped or {}
    curves = []
    for m in method_order(rows):
        names = {r["variant"].split("=", 1)[0] for r in rows if r["method"] == m and r.get("variant")}
        for name in sorted(names):
            points: Dict[float, Dict[int, List[float]]] = {}
            for r in rows:
                if r["method"] != m or (r.get("variant") and not r["variant"].startswith(name + "=")):
                    continue
                if r.get("variant"):
                    value = r["variant"].split("=", 1)[1]
                elif (m, name) in shipped:
                    value = shipped[(m, name)]
                else:
                    value = json.loads(r["loss_kwargs"]).get(name) if r.get("loss_kwargs") else None
                if value is None or _num(r.get(column)) is None:
                    continue
                points.setdefault(float(value), {}).setdefault(int(r["batch_size"]), []).append(float(r[column]))
            curves.append((m, name, sorted(points.items())))
    return curves


def results_markdown(rows: List[Dict], baseline: str = "infonce", shipped: Optional[Dict] = None,
                     title: str = "Results") -> str:
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [f"# {title}", "", f"Seeds: {', '.join(map(str, seeds))}. Accuracies are top-1 (%) on the validation set, "
             "mean ± std over seeds. Reference rows: `random-init` (the same network, untrained) and "
             "`pixels` (the evaluation images, flattened), with the same probes."]
    if len(seeds) < 2:
        lines += ["", "**One seed: no claim can be made.** The paired differences below have no interval; "
                  "run at least 3 seeds (`seeds=[0,1,2]`) before reading a difference between methods."]
    for column, title in PROBES.items():
        if not any(_num(r.get(column)) is not None for r in rows):
            continue
        lines += ["", f"## {column}: {title}", ""] + accuracy_table(rows, column)
        if any(r["method"] == baseline for r in rows):
            lines += ["", f"Paired difference to `{baseline}` (same seed), mean and 95% Student-t interval "
                      "over seeds; * marks an interval that excludes 0:", ""]
            lines += difference_table(rows, column, baseline)
    lines += ["", "## Representation metrics (validation images; z = projections, feats = backbone)", ""]
    lines += metrics_table(rows)
    if any(r.get("variant") for r in rows):
        lines += ["", "## Hyperparameter sensitivity (probe_acc1)", ""] + variant_table(rows, shipped=shipped)
    return "\n".join(lines) + "\n"


def console_summary(rows: List[Dict], baseline: str = "infonce") -> str:
    """The tables a command prints: each probe's accuracies and, with several seeds, the paired
    differences of the converged probe (results.md has everything)."""
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [f"Top-1 % on the validation set, mean ± std over seeds {', '.join(map(str, seeds))}; "
             "random-init = the same network untrained, pixels = the raw images."]
    if len(seeds) < 2:
        lines += ["One seed: no claim can be made; run seeds=[0,1,2] before reading a difference."]
    for column, title in PROBES.items():
        if any(_num(r.get(column)) is not None for r in rows):
            lines += ["", f"{column}: {title.split(' (')[0]}", ""] + accuracy_table(rows, column)
    if len(seeds) > 1 and any(r["method"] == baseline for r in rows):
        lines += ["", f"probe_acc1, paired difference to {baseline} [95% interval], * excludes 0:", ""]
        lines += difference_table(rows, "probe_acc1", baseline)
    return "\n".join(lines) + "\n"
