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
