"""The finite-batch optimum study: every loss setting of a config x latent dimension d x batch
size M, the best configuration from several random starts (float64), a row each in
``results.csv`` (resumable), then ``results.md`` and one figure.

    solo-plugins-identifiability --config-name finite_batch_optimum.yaml [overrides]
"""

import json
import math
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

from solo_plugins._version import __version__, source_commit
from solo_plugins.analysis.results import Table, write_json
from solo_plugins.engine import Launch, execute_plan
from solo_plugins.identifiability.optimum import best_of_starts, compare
from solo_plugins.identifiability.plots import plot_min_distance
from solo_plugins.identifiability.training import check_loss_spec, loss_function
from solo_plugins.launch import Task

KEY_FIELDS = ("setting", "latent_dim", "batch_size")
#: Each row's optimum, beside its row.json: {"z1": [[...]], "z2": [[...]]}.
CONFIGURATION = "configuration.json"
COLUMNS = [
    *KEY_FIELDS,
    "loss",
    "loss_kwargs",
    "hp",  # default | tuned
    "known",  # simplex | cross-polytope | "" (no known optimum at this (d, M))
    "is_known",  # true | false | "" : the found optimum is the known configuration, aligned
    "loss_value",
    "known_loss",
    "aligned_loss",  # the best loss with every positive on its anchor (z2 = z1), same starts
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


def optimum_table(out: str) -> Table:
    return Table(os.path.join(out, "results.csv"), COLUMNS, KEY_FIELDS, runs_dir=os.path.join(out, "runs"))


def run_optimum_study(cfg: Dict, progress: Callable[[str], None] = print) -> List[Dict]:
    """Every latent dimension with rows missing is one task of the engine (in this process, or
    one SLURM array with a task per d)."""
    check_optimum_study(cfg)
    launch = Launch.from_config(cfg)
    out = os.path.abspath(cfg["out_dir"])
    os.makedirs(out, exist_ok=True)
    table = optimum_table(out)
    table.collect()  # rows a job wrote to its run folders but not to the table
    done = {table.key(r) for r in table.read()}
    cfg = {**cfg, "out_dir": out}  # a job may start in another folder
    tasks = [Task(f"d{d}", os.path.join(out, "groups", f"d{d}"), run_optimum_dim, (cfg, int(d)),
                  threads=cfg.get("threads"))
             for d in cfg["latent_dims"]
             if any(table.key({"setting": name, "latent_dim": d, "batch_size": m}) not in done
                    for m in batch_sizes(d, int(cfg["largest_factor"]), int(cfg["every_up_to"]))
                    for name in cfg["settings"])]
    execute_plan(tasks, launch, out, progress=progress,
                 run_here=lambda task: run_optimum_dim(*task.args, progress=progress))
    table.collect()
    return table.read()


def run_optimum_dim(cfg: Dict, d: int, progress: Callable[[str], None] = print) -> None:
    """The rows of latent dimension ``d`` that are missing."""
    table = optimum_table(cfg["out_dir"])
    done = {table.key(r) for r in table.read()}
    commit = source_commit()
    tolerance, starts = float(cfg["tolerance"]), int(cfg["starts"])
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(int(cfg["threads"]))
    out = cfg["out_dir"]
    for m in batch_sizes(d, int(cfg["largest_factor"]), int(cfg["every_up_to"])):
        for name, spec in cfg["settings"].items():
            spec = dict(spec)
            hp = spec.pop("hp", "default")
            if table.key({"setting": name, "latent_dim": d, "batch_size": m}) in done:
                continue
            loss = loss_function(spec)
            start = time.time()
            found = best_of_starts(loss, m, d, starts, tolerance, int(cfg["max_iterations"]), float(cfg["stall"]))
            aligned = best_of_starts(loss, m, d, starts, tolerance, int(cfg["max_iterations"]), float(cfg["stall"]),
                                     aligned=True)
            c = compare(loss, found, m, d)
            row = {
                "setting": name, "latent_dim": d, "batch_size": m, "loss": spec["loss"],
                "loss_kwargs": json.dumps({k: v for k, v in spec.items() if k != "loss"}, sort_keys=True),
                "hp": hp, "known": c["known"], "is_known": "" if c["is_known"] is None else str(c["is_known"]).lower(),
                "loss_value": f"{found.loss:.12g}",
                "known_loss": "" if math.isnan(c["known_loss"]) else f"{c['known_loss']:.12g}",
                "aligned_loss": f"{aligned.loss:.12g}",
                "alignment": f"{c['alignment']:.3g}", "gram_values": json.dumps([round(v, 4) for v in c["gram_values"]]),
                "min_distance": f"{c['min_distance']:.6f}", "collapsed": str(c["collapsed"]).lower(),
                "starts": starts, "starts_at_best": sum(v <= found.loss + 1e-7 for v in found.start_losses),
                "stalled": found.stalled, "grad_max": f"{found.grad_norm:.3g}", "iterations": found.iterations,
                "seconds": round(time.time() - start, 2), "version": __version__, "commit": commit,
            }
            folder = os.path.join(out, "runs", f"{name}-d{d}-m{m}")
            write_json(os.path.join(folder, CONFIGURATION), {"z1": found.z1.tolist(), "z2": found.z2.tolist()})
            table.add(row, run_dir=folder)
        progress(f"  d={d} M={m}: {len(cfg['settings'])} settings")


# ------------------------------------------------------------------------------ report

TOLERANCE = 1e-8  # losses closer than this are equal


def cross_check(rows: List[Dict], cfg: Dict, out_dir: str) -> Dict[tuple, Dict]:
    """For each row: the lowest value its loss takes at any configuration found at the same
    (d, M) by any setting (as found, and with the positives put on their anchors), and which
    setting's configuration gives it. A value below the row's own says its starts ended in a
    local minimum."""
    import torch

    configs: Dict[tuple, Dict[str, tuple]] = {}
    for r in rows:
        path = os.path.join(out_dir, "runs", f"{r['setting']}-d{r['latent_dim']}-m{r['batch_size']}", CONFIGURATION)
        try:
            with open(path) as f:
                z = json.load(f)
        except (OSError, ValueError):
            continue
        z1, z2 = (torch.tensor(z[k], dtype=torch.float64) for k in ("z1", "z2"))
        configs.setdefault((r["latent_dim"], r["batch_size"]), {})[r["setting"]] = (z1, z2)
    out = {}
    for r in rows:
        spec = {k: v for k, v in dict(cfg["settings"].get(r["setting"], {})).items() if k != "hp"}
        if not spec:
            continue
        loss = loss_function(spec)
        best, source = float(r["loss_value"]), r["setting"]
        with torch.no_grad():
            for other, (z1, z2) in configs.get((r["latent_dim"], r["batch_size"]), {}).items():
                for candidate, label in ((z1, z2), other), ((z1, z1), f"{other}, aligned"):
                    value = float(loss(*candidate))
                    if value < best - TOLERANCE:
                        best, source = value, label
        out[(r["setting"], r["latent_dim"], r["batch_size"])] = {"best": best, "from": source}
    return out


def _gram(r: Dict) -> str:
    values = json.loads(r["gram_values"])
    return ", ".join(f"{v:+.3f}" for v in values[:4]) + (" ..." if len(values) > 4 else "")


def verdict(r: Dict, check: Optional[Dict] = None) -> str:
    """What the optimum found is, in words: the known configuration; the known one up to a
    saturated (flat) loss; a local minimum that another configuration beats; not aligned, and
    by how much splitting the positives beats keeping them aligned; or the configuration."""
    loss, aligned_loss = float(r["loss_value"]), float(r["aligned_loss"] or "nan")
    alignment = float(r["alignment"])
    if check and check["best"] < loss - TOLERANCE:
        return f"local minimum: {check['from']}'s configuration is {loss - check['best']:.2g} lower"
    if r["is_known"] == "true":
        return r["known"]
    if r["known"] and abs(loss - float(r["known_loss"])) <= TOLERANCE:
        return f"{r['known']} up to saturation (alignment {alignment:.1g}, loss within {TOLERANCE:g})"
    text = "aligned" if alignment <= 1e-6 else f"**not aligned** ({alignment:.2g}; {aligned_loss - loss:.2g} below aligned)"
    text += ": " + _gram(r) + (", **collapsed**" if r["collapsed"] == "true" else "")
    if r["known"]:
        text = f"**not the {r['known']}** ({loss - float(r['known_loss']):+.2g}): " + text
    return text


def write_optimum_report(out_dir: str, cfg: Dict) -> str:
    table = Table(os.path.join(out_dir, "results.csv"), COLUMNS, KEY_FIELDS, runs_dir=os.path.join(out_dir, "runs"))
    rows = table.read()
    checks = cross_check(rows, cfg, out_dir)
    settings = list(cfg["settings"])
    lines = ["# The finite-batch optimum of each loss", "",
             f"M positive pairs on S^(d-1), optimized directly in float64 (L-BFGS, {cfg['starts']} random starts, "
             f"gradient tolerance {cfg['tolerance']}, a start stalled if its gradient ends above {cfg['stall']}); "
             "the best start is reported, and the same starts are run with every positive on its anchor "
             "(aligned). Every loss is also evaluated at the configurations all the other settings found at the "
             "same (d, M): where one of them is lower, the row is a **local minimum**, not the optimum.", "",
             "Cells: `simplex` / `cross-polytope`: that configuration, aligned, at its loss; "
             "`up to saturation`: its loss, but the optimizer stopped on a flat loss before the positives met; "
             "otherwise the anchors' distinct off-diagonal inner products, and for a configuration that is not "
             "aligned how far it is below the best aligned one.", "",
             "## Summary", "",
             "| setting | loss settings | M <= d + 1: simplex | M = 2d: cross-polytope | elsewhere: aligned | "
             "not aligned and below aligned | local minima | collapsed | starts at the best (mean) | stalled |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in settings:
        mine = [r for r in rows if r["setting"] == name]
        if not mine:
            continue
        verdicts = {id(r): verdict(r, checks.get((name, r["latent_dim"], r["batch_size"]))) for r in mine}
        simplex = [r for r in mine if r["known"] == "simplex"]
        cross = [r for r in mine if r["known"] == "cross-polytope"]
        other = [r for r in mine if not r["known"]]
        split = [r for r in mine if float(r["alignment"]) > 1e-6 and float(r["aligned_loss"] or "nan") > float(
            r["loss_value"]) + TOLERANCE and not verdicts[id(r)].startswith("local")]
        at_best = sum(int(r["starts_at_best"]) for r in mine) / len(mine)
        lines.append(
            f"| {name} | `{mine[0]['loss_kwargs']}` | {sum(verdicts[id(r)].startswith('simplex') for r in simplex)}"
            f"/{len(simplex)} | {sum(verdicts[id(r)].startswith('cross') for r in cross)}/{len(cross)} | "
            f"{sum(float(r['alignment']) <= 1e-6 for r in other)}/{len(other)} | {len(split)} | "
            f"{sum(v.startswith('local') for v in verdicts.values())} | {sum(r['collapsed'] == 'true' for r in mine)} | "
            f"{at_best:.1f} of {mine[0]['starts']} | {sum(int(r['stalled']) for r in mine)} |")
    dims = sorted({int(r["latent_dim"]) for r in rows})
    for d in dims:
        lines += ["", f"## d = {d}", "", "| M | " + " | ".join(settings) + " |", "|---" * (len(settings) + 1) + "|"]
        for m in sorted({int(r["batch_size"]) for r in rows if int(r["latent_dim"]) == d}):
            cells = []
            for name in settings:
                r = next((r for r in rows if r["setting"] == name and int(r["latent_dim"]) == d
                          and int(r["batch_size"]) == m), None)
                cells.append("" if r is None else f"{verdict(r, checks.get((name, r['latent_dim'], r['batch_size'])))}; "
                             f"min dist {float(r['min_distance']):.3f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    if rows:
        local = [key for key, c in checks.items()
                 if c["best"] < float(next(r["loss_value"] for r in rows
                                           if (r["setting"], r["latent_dim"], r["batch_size"]) == key)) - TOLERANCE]
        plot_min_distance(rows, settings, out_dir, local)
    return text
