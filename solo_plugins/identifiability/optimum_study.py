"""The finite-batch optimum study: every loss setting of a config x latent dimension d x batch
size M, the best configuration from several random starts (float64), a row each in
``results.csv`` (resumable), then ``results.md`` and one figure.

    solo-plugins-identifiability --config-name finite_batch_optimum.yaml [overrides]
"""

import json
import math
import os
import time
from typing import Callable, Dict, List, Sequence

from solo_plugins._version import __version__, source_commit
from solo_plugins.analysis.results import Table
from solo_plugins.identifiability.optimum import best_of_starts, compare
from solo_plugins.identifiability.plots import plot_min_distance
from solo_plugins.identifiability.training import check_loss_spec, loss_function

KEY_FIELDS = ("setting", "latent_dim", "batch_size")
COLUMNS = [
    *KEY_FIELDS,
    "loss",
    "loss_kwargs",
    "hp",  # default | tuned
    "known",  # simplex | cross-polytope | "" (no known optimum at this (d, M))
    "is_known",  # true | false | "" : the found optimum is the known configuration, aligned
    "loss_value",
    "known_loss",
    "alignment",  # mean ||z1_i - z2_i||² at the optimum found
    "gram_values",  # the distinct off-diagonal inner products of the anchors (JSON)
    "min_distance",
    "collapsed",
    "starts",
    "starts_at_best",  # starts whose loss is within 1e-7 of the best
    "stalled",  # starts that ended with a gradient entry above the stall threshold
    "grad_max",
    "iterations",
    "seconds",
    "version",
    "commit",
]


def batch_sizes(d: int, largest_factor: int, every_up_to: int, extra: Sequence[int] = ()) -> List[int]:
    """M = 2..largest_factor·d: every M up to ``every_up_to``, then the landmarks d, d+1, d+2, 3d/2,
    2d and largest_factor·d (and ``extra``)."""
    top = largest_factor * d
    sizes = set(range(2, min(top, every_up_to) + 1))
    sizes |= {m for m in (d, d + 1, d + 2, (3 * d) // 2, 2 * d, top, *extra) if 2 <= m <= top}
    return sorted(sizes)


def check_optimum_study(cfg: Dict) -> None:
    settings = cfg.get("settings") or {}
    if not settings:
        raise ValueError("settings: give at least one loss setting, e.g. {dhel: {loss: dhel, temperature: 0.3}}")
    for name, spec in settings.items():
        spec = dict(spec)
        hp = spec.pop("hp", "default")
        if hp not in ("default", "tuned"):
            raise ValueError(f"settings.{name}.hp must be default or tuned; got {hp!r}")
        check_loss_spec(spec, f"settings.{name}")
    dims = list(cfg.get("latent_dims") or [])
    if not dims or not all(isinstance(d, int) and d >= 2 for d in dims):
        raise ValueError(f"latent_dims must be a non-empty list of integers >= 2; got {dims}")
    for key in ("starts", "max_iterations", "largest_factor", "every_up_to"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 1:
            raise ValueError(f"{key} must be a positive integer; got {cfg.get(key)!r}")
    for key in ("tolerance", "stall"):
        if not isinstance(cfg.get(key), (int, float)) or not cfg[key] > 0:
            raise ValueError(f"{key} must be a number > 0; got {cfg.get(key)!r}")


def run_optimum_study(cfg: Dict, progress: Callable[[str], None] = print) -> List[Dict]:
    check_optimum_study(cfg)
    out = cfg["out_dir"]
    os.makedirs(out, exist_ok=True)
    table = Table(os.path.join(out, "results.csv"), COLUMNS, KEY_FIELDS, runs_dir=os.path.join(out, "runs"))
    done = {table.key(r) for r in table.read()}
    commit = source_commit()
    tolerance, starts = float(cfg["tolerance"]), int(cfg["starts"])
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(int(cfg["threads"]))
    for d in cfg["latent_dims"]:
        for m in batch_sizes(d, int(cfg["largest_factor"]), int(cfg["every_up_to"])):
            for name, spec in cfg["settings"].items():
                spec = dict(spec)
                hp = spec.pop("hp", "default")
                if table.key({"setting": name, "latent_dim": d, "batch_size": m}) in done:
                    continue
                loss = loss_function(spec)
                start = time.time()
                found = best_of_starts(loss, m, d, starts, tolerance, int(cfg["max_iterations"]), float(cfg["stall"]))
                c = compare(loss, found, m, d)
                row = {
                    "setting": name, "latent_dim": d, "batch_size": m, "loss": spec["loss"],
                    "loss_kwargs": json.dumps({k: v for k, v in spec.items() if k != "loss"}, sort_keys=True),
                    "hp": hp, "known": c["known"], "is_known": "" if c["is_known"] is None else str(c["is_known"]).lower(),
                    "loss_value": f"{found.loss:.12g}",
                    "known_loss": "" if math.isnan(c["known_loss"]) else f"{c['known_loss']:.12g}",
                    "alignment": f"{c['alignment']:.3g}", "gram_values": json.dumps([round(v, 4) for v in c["gram_values"]]),
                    "min_distance": f"{c['min_distance']:.6f}", "collapsed": str(c["collapsed"]).lower(),
                    "starts": starts, "starts_at_best": sum(v <= found.loss + 1e-7 for v in found.start_losses),
                    "stalled": found.stalled, "grad_max": f"{found.grad_norm:.3g}", "iterations": found.iterations,
                    "seconds": round(time.time() - start, 2), "version": __version__, "commit": commit,
                }
                table.add(row)
            progress(f"  d={d} M={m}: {len(cfg['settings'])} settings")
    return table.read()


# ------------------------------------------------------------------------------ report


def _verdict(r: Dict) -> str:
    if r["is_known"] == "true":
        return r["known"]
    values = json.loads(r["gram_values"])
    aligned = float(r["alignment"]) <= 1e-6
    text = ("aligned" if aligned else f"NOT aligned ({float(r['alignment']):.2g})") + ", " + \
        ", ".join(f"{v:+.3f}" for v in values[:4]) + (" ..." if len(values) > 4 else "")
    if r["collapsed"] == "true":
        text += ", COLLAPSED"
    if r["known"]:
        text = f"**not the {r['known']}**: " + text
    return text


def write_optimum_report(out_dir: str, cfg: Dict) -> str:
    table = Table(os.path.join(out_dir, "results.csv"), COLUMNS, KEY_FIELDS, runs_dir=os.path.join(out_dir, "runs"))
    rows = table.read()
    settings = list(cfg["settings"])
    lines = ["# The finite-batch optimum of each loss", "",
             f"M positive pairs on S^(d-1), optimized directly in float64 (L-BFGS, {cfg['starts']} random starts, "
             f"gradient tolerance {cfg['tolerance']}, a start stalled if its gradient ends above {cfg['stall']}); "
             "the best start is reported. "
             "`simplex` / `cross-polytope`: the optimum found is that configuration with aligned positives "
             "and its loss is not above it; otherwise the anchors' distinct off-diagonal inner products.", "",
             "## Summary", "",
             "| setting | loss settings | M <= d + 1: simplex | M = 2d: cross-polytope | M > d + 1 elsewhere: aligned | "
             "collapsed | starts at the best (mean) | stalled starts |", "|---|---|---|---|---|---|---|---|"]
    for name in settings:
        mine = [r for r in rows if r["setting"] == name]
        if not mine:
            continue
        simplex = [r for r in mine if r["known"] == "simplex"]
        cross = [r for r in mine if r["known"] == "cross-polytope"]
        other = [r for r in mine if not r["known"]]
        at_best = sum(int(r["starts_at_best"]) for r in mine) / len(mine)
        lines.append(
            f"| {name} | `{mine[0]['loss_kwargs']}` | {sum(r['is_known'] == 'true' for r in simplex)}/{len(simplex)} | "
            f"{sum(r['is_known'] == 'true' for r in cross)}/{len(cross)} | "
            f"{sum(float(r['alignment']) <= 1e-6 for r in other)}/{len(other)} | "
            f"{sum(r['collapsed'] == 'true' for r in mine)} | {at_best:.1f} of {mine[0]['starts']} | "
            f"{sum(int(r['stalled']) for r in mine)} |")
    dims = sorted({int(r["latent_dim"]) for r in rows})
    for d in dims:
        lines += ["", f"## d = {d}", "", "| M | " + " | ".join(settings) + " |", "|---" * (len(settings) + 1) + "|"]
        for m in sorted({int(r["batch_size"]) for r in rows if int(r["latent_dim"]) == d}):
            cells = []
            for name in settings:
                r = next((r for r in rows if r["setting"] == name and int(r["latent_dim"]) == d
                          and int(r["batch_size"]) == m), None)
                cells.append("" if r is None else f"{_verdict(r)}; min dist {float(r['min_distance']):.3f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    if rows:
        plot_min_distance(rows, settings, out_dir)
    return text
