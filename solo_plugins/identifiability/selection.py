"""Hyperparameters selected at convergence: the pick per method and batch size from a grid's
rows (``configs/sweep/identifiability_selection.yaml``), and the grid points a pick on an edge
asks for.

The rule (docs/ground_truth.md, "Selected at convergence"): the grid point with the most seeds
converged, then the best mean R² (at convergence, or at the cap for runs that did not
converge); the shipped default wins when it converged on as many seeds as that point and its
mean R² is within the larger of the two points' half-ranges over seeds (max − min) / 2.
"""

import json
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence


NEAR = 0.01  # R² within this of a grid's best counts as near it in the sensitivity table


@dataclass(frozen=True)
class GridPoint:
    settings: Dict  # the loss settings of this point (loss_kwargs)
    converged: int  # seeds converged
    seeds: int
    mean_r2: float
    half_range: float


@dataclass(frozen=True)
class Pick:
    method: str
    batch_size: int
    point: GridPoint
    default: Optional[GridPoint]
    at_cap: bool  # no run of this method and batch size converged: a pick at the cap
    reason: str


def _r2(row: Dict) -> float:
    value = float(row["r2"]) if row.get("r2") not in (None, "") else float("-inf")
    return value if value == value else float("-inf")  # a diverged run (NaN) counts as the worst


def grid_points(rows: Sequence[Dict], method: str, batch_size: int) -> List[GridPoint]:
    """The grid's points for ``method`` at ``batch_size``, each over its seeds."""
    by_setting: Dict[str, List[Dict]] = {}
    for r in rows:
        if r["method"] == method and int(r["batch_size"]) == batch_size and r.get("hp") == "grid":
            by_setting.setdefault(r["loss_kwargs"], []).append(r)
    points = []
    for kwargs, runs in sorted(by_setting.items()):
        r2 = [_r2(r) for r in runs]
        points.append(GridPoint(json.loads(kwargs), sum(r["converged"] == "true" for r in runs), len(runs),
                                statistics.mean(r2), (max(r2) - min(r2)) / 2))
    return points


def pick(rows: Sequence[Dict], method: str, batch_size: int, default: Dict) -> Optional[Pick]:
    """The selected point for ``method`` at ``batch_size``; ``default`` is the shipped loss
    settings (without ``loss``). None when the grid has no rows there."""
    points = grid_points(rows, method, batch_size)
    if not points:
        return None
    best = max(points, key=lambda p: (p.converged, p.mean_r2))
    shipped = next((p for p in points if p.settings == default), None)
    at_cap = all(p.converged == 0 for p in points)
    reason = "most seeds converged, then the best mean R²"
    if shipped is not None and shipped is not best and shipped.converged == best.converged \
            and best.mean_r2 - shipped.mean_r2 <= max(best.half_range, shipped.half_range):
        best, reason = shipped, "the shipped default, within the seeds' half-range of the best"
    elif best is shipped:
        reason = "the shipped default is the best"
    return Pick(method, batch_size, best, shipped, at_cap, reason)


def edge_extensions(pick_: Pick, grid: Dict[str, Sequence[float]]) -> List[Dict]:
    """The points that extend a grid's edge once where the pick lies on it: for each setting
    at its grid's lowest (highest) value, one more point at half (twice) that value, the other
    settings as picked. Settings with a single value are not extended."""
    out = []
    for key, values in grid.items():
        values = sorted(float(v) for v in values)
        if len(values) < 2:
            continue
        at = float(pick_.point.settings[key])
        for edge, factor in ((values[0], 0.5), (values[-1], 2.0)):
            if at == edge:
                out.append({**pick_.point.settings, key: at * factor})
    return out


def _settings_text(settings: Dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} {v}"
                     for k, v in sorted(settings.items()) if k != "kernel")


def _order(text: str) -> List[float]:
    """Sorts "gamma 4, t 1" numerically by its values."""
    return [float(part.split()[-1]) for part in text.split(", ")]


def selection_lines(rows: Sequence[Dict], defaults: Dict[str, Dict], grids: Dict[int, Dict[str, Dict]]) -> List[str]:
    """The picks and the sensitivity tables of a selection's rows (markdown lines): ``defaults``
    holds each method's shipped loss settings, ``grids`` each batch size's grid (as in the
    config), for the edges."""
    sizes = sorted({int(r["batch_size"]) for r in rows if r.get("hp") == "grid"})
    methods = [m for m in defaults if any(r["method"] == m and r.get("hp") == "grid" for r in rows)]
    picks_, spread = [], []
    for b in sizes:
        for m in methods:
            p = pick(rows, m, b, {k: v for k, v in defaults[m].items() if k != "loss"})
            if p is None:
                continue
            edges = edge_extensions(p, (grids.get(b) or {}).get(m) or {})
            shipped = (f"{p.default.mean_r2:.3f} ({p.default.converged}/{p.default.seeds})"
                       if p.default is not None else "not on the grid")
            picks_.append(f"| {m} | {b} | {_settings_text(p.point.settings)} | {p.point.mean_r2:.3f} ± "
                          f"{p.point.half_range:.3f} ({p.point.converged}/{p.point.seeds}) | {shipped} | {p.reason}"
                          f"{'; at the cap' if p.at_cap else ''}"
                          f"{'; on an edge: ' + '; '.join(_settings_text(e) for e in edges) if edges else ''} |")
            points = grid_points(rows, m, b)
            means = [q.mean_r2 for q in points]
            whole = [q for q in points if q.converged == q.seeds]
            near = sum(q >= max(means) - NEAR for q in means)
            spread.append(f"| {m} | {b} | {len(points)} | {len(whole)} | {near} | {min(means):.3f} | {max(means):.3f} | "
                          f"{max(means) - min(means):.3f} |")
    grid = ["## Mean R² at every grid point", "",
            "Mean over the selection seeds (seeds converged/seeds); the pick in bold.", ""]
    for m in methods:
        cells: Dict[str, Dict[int, str]] = {}
        for b in sizes:
            chosen = pick(rows, m, b, {k: v for k, v in defaults[m].items() if k != "loss"})
            for q in grid_points(rows, m, b):
                text = f"{q.mean_r2:.3f} ({q.converged}/{q.seeds})"
                cells.setdefault(_settings_text(q.settings), {})[b] = f"**{text}**" if q == chosen.point else text
        grid += [f"| {m} | " + " | ".join(f"b={b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes),
                 *(f"| {name} | " + " | ".join(by_b.get(b, "—") for b in sizes) + " |"
                   for name, by_b in sorted(cells.items(), key=lambda kv: _order(kv[0]))), ""]
    return ["## Picks at convergence", "",
            "Mean R² ± half-range over the selection seeds (seeds converged/seeds), at convergence or at the cap.", "",
            "| method | batch | pick | its R² | the shipped default's R² | why |", "|---|---|---|---|---|---|",
            *picks_, "",
            "## Sensitivity: the spread of R² over each grid", "",
            f"Points near the best: mean R² within {NEAR} of the grid's best (the settings a user could pick "
            "without losing more than that).", "",
            "| method | batch | grid points | points converged on every seed | points near the best | lowest mean R² "
            "| highest | spread |",
            "|---|---|---|---|---|---|---|---|", *spread, "", *grid]
