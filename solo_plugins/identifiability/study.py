"""The latent-recovery study's grid: which runs, trained in which groups, and their rows.

Stages (each row's ``stage``):

- ``selection``: per batch size, each method's small hyperparameter grid on separate seeds;
- ``main``: every method at d = ``latent_dim`` and every batch size for ``steps`` steps, at its
  shipped default and, where the selection chose another value, at that value (``hp`` says
  which), and the ablations (e.g. DHEL with ``include_augs: false``);
- ``same_samples``: the defaults at the batch sizes given, each for as many steps as make
  ``steps x samples_of_batch`` samples;
- ``high_dim``: the defaults at a second latent dimension.

Runs that share a latent dimension, a batch size and a number of steps are trained together
(:func:`solo_plugins.identifiability.training.train_group`); a group is re-formed from the runs
without a row when the study is started again. Each run's row (with its convergence curve) is
also kept in ``runs/<run>/row.json``.
"""

import json
import os
import statistics
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from solo_plugins._version import __version__, source_commit
from solo_plugins.analysis.results import Table, write_json
from solo_plugins.engine import Launch, execute_plan
from solo_plugins.identifiability.measures import MEASUREMENTS
from solo_plugins.identifiability.training import GroupSettings, Model, check_loss_spec, train_group
from solo_plugins.launch import Task

KEY_FIELDS = ("stage", "method", "variant", "latent_dim", "batch_size", "steps", "seed")
COLUMNS = [
    *KEY_FIELDS,
    "hp",  # default | tuned | grid (selection) | ablation
    "samples",  # batch_size x steps
    "loss",
    "loss_kwargs",  # JSON of every setting of the loss
    "kappa",
    "hidden",
    "lr",
    *MEASUREMENTS,
    "loss_oracle",  # the same loss at the true latents, on the large batch
    "train_loss",  # mean training loss over the last 100 steps
    "diverged_step",  # first step with a non-finite loss; "" if none
    "seconds",  # the group's wall time divided by its runs
    "group_seconds",
    "group_runs",
    "version",
    "commit",
]


def study_table(out_dir: str) -> Table:
    return Table(os.path.join(out_dir, "results.csv"), COLUMNS, KEY_FIELDS)


@dataclass(frozen=True)
class Run:
    stage: str
    method: str
    variant: str  # "" or "key=value[,key=value]" of the loss settings changed from the default
    hp: str
    latent_dim: int
    batch_size: int
    steps: int
    seed: int
    spec: Tuple[Tuple[str, object], ...]

    @property
    def key(self) -> Tuple[str, ...]:
        return tuple(str(getattr(self, f)) for f in KEY_FIELDS)

    @property
    def run_id(self) -> str:
        variant = "-" + self.variant.replace("=", "").replace(",", "-") if self.variant else ""
        return f"{self.stage}-d{self.latent_dim}-{self.method}{variant}-b{self.batch_size}-t{self.steps}-s{self.seed}"


def variant_name(change: Dict) -> str:
    return ",".join(f"{k}={_text(v)}" for k, v in sorted(change.items()))


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _spec(default: Dict, change: Dict) -> Tuple[Tuple[str, object], ...]:
    return tuple(sorted({**default, **change}.items()))


def check_study(cfg: Dict) -> None:
    """Errors naming the setting, before any run."""
    methods = cfg.get("methods") or {}
    if not methods:
        raise ValueError("methods: give at least one method, e.g. {dhel: {loss: dhel, temperature: 0.3}}")
    for name, spec in methods.items():
        check_loss_spec(dict(spec), f"methods.{name}")
    for section in ("selection", "ablation"):
        grid = (cfg.get(section) or {}).get("grid", {}) if section == "selection" else (cfg.get(section) or {})
        for name, changes in (grid or {}).items():
            if name not in methods:
                raise ValueError(f"{section}: {name!r} is not one of methods {sorted(methods)}")
            for change in changes:
                check_loss_spec({**methods[name], **dict(change)}, f"{section}.{name}")
    for key in ("steps", "latent_dim"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 1:
            raise ValueError(f"{key} must be a positive integer; got {cfg.get(key)!r}")
    for key in ("batch_sizes", "seeds"):
        values = list(cfg.get(key) or [])
        if not values or not all(isinstance(v, int) for v in values):
            raise ValueError(f"{key} must be a non-empty list of integers; got {values}")
    if min(cfg["batch_sizes"]) < 2:
        raise ValueError(f"batch_sizes: every batch size must be >= 2 (a loss needs a negative); got {cfg['batch_sizes']}")
    if cfg.get("eval_every") is not None and cfg["eval_every"] < 1:
        raise ValueError(f"eval_every must be a positive integer or null; got {cfg['eval_every']}")


def runs_for(stage, hp, methods: Dict, changes: Dict[str, List[Dict]], d, b, steps, seeds) -> List[Run]:
    out = []
    for name, default in methods.items():
        for change in changes.get(name, [{}]):
            for s in seeds:
                out.append(Run(stage, name, variant_name(change), hp, d, b, steps, s, _spec(default, change)))
    return out


def selected(rows: List[Dict], method: str, batch_size: int, latent_dim: int, metric: str = "r2") -> str:
    """The variant ("" for the default) with the best mean ``metric`` over the selection
    seeds for ``method`` at ``batch_size``; the default wins ties and a diverged run counts as
    the worst."""
    scores: Dict[str, List[float]] = {}
    for r in rows:
        if (r["stage"], r["method"], str(r["batch_size"]), str(r["latent_dim"])) == (
                "selection", method, str(batch_size), str(latent_dim)):
            value = float(r[metric]) if r.get(metric) not in (None, "", "nan") else float("-inf")
            scores.setdefault(r["variant"], []).append(value if value == value else float("-inf"))
    if not scores:
        return ""
    means = {v: statistics.mean(s) for v, s in scores.items()}
    best = max(means.values())
    return "" if means.get("", float("-inf")) >= best else max(means, key=means.get)


def _change_of(variant: str, changes: List[Dict]) -> Dict:
    for change in changes:
        if variant_name(change) == variant:
            return change
    return {}


class Study:
    """The study of one config (a mapping; see configs/sweep/identifiability.yaml)."""

    def __init__(self, cfg: Dict, progress: Callable[[str], None] = print):
        check_study(cfg)
        self.cfg = cfg
        self.progress = progress
        self.table = study_table(cfg["out_dir"])
        self.methods = {k: dict(v) for k, v in cfg["methods"].items()}
        selection = cfg.get("selection") or {}
        self.grid = {k: [dict(c) for c in v] for k, v in (selection.get("grid") or {}).items()}
        self.selection_seeds = list(selection.get("seeds") or [])
        self.ablation = {k: [dict(c) for c in v] for k, v in (cfg.get("ablation") or {}).items()}

    def settings(self, d: int, b: int, steps: int, curves: bool) -> GroupSettings:
        c = self.cfg
        every = c.get("eval_every")
        return GroupSettings(
            latent_dim=d, kappa=float(c["kappa"]), mixing_layers=int(c["mixing_layers"]),
            hidden=tuple(int(h) for h in c["hidden"]), lr=float(c["lr"]), batch_size=b, steps=steps,
            eval_steps=tuple(range(0, steps, every)) if curves and every else (),
            heldout=int(c["heldout"]), curve_points=int(c.get("curve_points") or c["heldout"]),
            pairwise_points=int(c["pairwise_points"]), large_batch=int(c["large_batch"]),
            loss_batches=int(c.get("loss_batches", 64)), threads=c.get("threads"), final_losses=curves)

    # ------------------------------------------------------------------ the plan, in order

    def stages(self) -> List[Tuple[str, Callable[[List[Dict]], List[Run]]]]:
        """(label, runs given the rows so far): a later group's runs may depend on earlier
        rows (the tuned values on the selection)."""
        c = self.cfg
        d, steps, seeds = c["latent_dim"], c["steps"], list(c["seeds"])
        out = []
        for b in c["batch_sizes"]:
            if self.grid and self.selection_seeds:
                out.append((f"selection d{d} b{b}", lambda rows, b=b: self.selection_runs(d, b, steps)))
            out.append((f"main d{d} b{b}", lambda rows, b=b: self.main_runs(rows, d, b, steps, seeds)))
        same = c.get("same_samples") or {}
        for b in same.get("batch_sizes") or []:
            n = steps * int(same["samples_of_batch"])
            if n % b or n // b == steps:
                continue  # the main stage's run, or not a whole number of steps
            out.append((f"same_samples d{d} b{b}", lambda rows, b=b, n=n: runs_for(
                "same_samples", "default", self.methods, {}, d, b, n // b, seeds)))
        high = c.get("high_dim") or {}
        for b in high.get("batch_sizes") or []:
            out.append((f"high_dim d{high['latent_dim']} b{b}", lambda rows, b=b: runs_for(
                "high_dim", "default", self.methods, {}, int(high["latent_dim"]), b, steps, seeds)))
        return out

    def selection_runs(self, d, b, steps) -> List[Run]:
        changes = {m: [{}] + self.grid.get(m, []) for m in self.methods}
        return runs_for("selection", "grid", self.methods, changes, d, b, steps, self.selection_seeds)

    def main_runs(self, rows, d, b, steps, seeds) -> List[Run]:
        runs = runs_for("main", "default", self.methods, {}, d, b, steps, seeds)
        for name, changes in self.ablation.items():
            runs += runs_for("main", "ablation", {name: self.methods[name]}, {name: changes}, d, b, steps, seeds)
        for name in self.grid:
            chosen = selected(rows, name, b, d)
            if chosen:
                change = _change_of(chosen, self.grid[name])
                runs += runs_for("main", "tuned", {name: self.methods[name]}, {name: [change]}, d, b, steps, seeds)
        return runs

    # ------------------------------------------------------------------------- running

    def run(self) -> List[Dict]:
        """Each stage's runs without rows, one group, through the engine (in this process, or a
        SLURM job per stage: a later stage's runs may depend on the earlier stages' rows, so each
        waits for the one before it)."""
        source_commit()
        launch = Launch.from_config(self.cfg)
        os.makedirs(self.cfg["out_dir"], exist_ok=True)
        stages = self.stages()
        for k, (label, make) in enumerate(stages, 1):
            self.table.collect()  # rows a job wrote to its run folders but not to the table
            rows = self.table.read()
            runs, done = make(rows), {self.table.key(r) for r in rows}
            todo = [r for r in runs if r.key not in done]
            if not todo:
                continue
            self.progress(f"[{k}/{len(stages)}] {label}: {len(todo)} runs ({len(runs) - len(todo)} already done)")
            task = self.task(label)
            if not execute_plan([task], launch, self.cfg["out_dir"],
                                run_here=lambda t, todo=todo: self.run_group(todo, curves=todo[0].stage != "selection"),
                                progress=self.progress):
                break
        self.table.collect()
        return self.table.read()

    def todo(self, make: Callable[[List[Dict]], List[Run]]) -> List[Run]:
        rows = self.table.read()
        done = {self.table.key(r) for r in rows}
        return [r for r in make(rows) if r.key not in done]

    def task(self, label: str) -> Task:
        cfg = {**self.cfg, "out_dir": os.path.abspath(self.cfg["out_dir"])}  # a job may start elsewhere
        name = label.replace(" ", "-")
        return Task(name, os.path.join(cfg["out_dir"], "groups", name), run_study_stage, (cfg, label),
                    threads=self.cfg.get("threads"))

    def run_group(self, runs: Sequence[Run], curves: bool) -> None:
        first = runs[0]
        settings = self.settings(first.latent_dim, first.batch_size, first.steps, curves)
        models = [Model(r.method, r.spec, r.seed) for r in runs]
        result = train_group(models, settings, progress=self.progress)
        commit = source_commit()
        for k, run in enumerate(runs):
            spec = dict(run.spec)
            final = result.final[k]
            row = {
                **{f: getattr(run, f) for f in KEY_FIELDS}, "hp": run.hp,
                "samples": run.batch_size * run.steps, "loss": spec["loss"],
                "loss_kwargs": json.dumps({k2: v for k2, v in spec.items() if k2 != "loss"}, sort_keys=True),
                "kappa": settings.kappa, "hidden": "-".join(map(str, settings.hidden)), "lr": settings.lr,
                **{m: rounded(final.get(m)) for m in MEASUREMENTS},  # no loss_large in the selection
                "loss_oracle": rounded(result.oracle[k]) if result.oracle else "", "train_loss": rounded(result.last_losses[k]),
                "diverged_step": "" if result.diverged_at[k] is None else result.diverged_at[k],
                "seconds": round(result.seconds / len(runs), 2), "group_seconds": round(result.seconds, 1),
                "group_runs": len(runs), "version": __version__, "commit": commit,
            }
            folder = os.path.join(self.cfg["out_dir"], "runs", run.run_id)
            write_json(os.path.join(folder, "curve.json"), {"curve": result.curves[k]})
            self.table.add(row, run_dir=folder)
            self.progress(f"  {run.run_id}: R² {row['r2']}, Procrustes {row['procrustes']}"
                          + (f", diverged at step {row['diverged_step']}" if row["diverged_step"] != "" else ""))
        self.progress(f"  group of {len(runs)} runs in {result.seconds:.0f}s")


def run_study_stage(cfg: Dict, label: str) -> None:
    """One stage's runs without rows, as a launcher runs them (a SLURM job)."""
    study = Study(cfg, progress=lambda line: print(line, flush=True))
    make = dict(study.stages())[label]
    todo = study.todo(make)
    if todo:
        study.run_group(todo, curves=todo[0].stage != "selection")


def rounded(value: Optional[float], digits: int = 6):
    if value is None:
        return ""
    return float(f"{value:.{digits}g}")


def read_curves(out_dir: str, keys: Sequence[str] = KEY_FIELDS + ("hp",)) -> List[Dict]:
    """Every run's convergence curve as rows (the row's ``keys`` + step + measurements), read
    from ``runs/*/curve.json`` beside each ``row.json``."""
    out = []
    runs = os.path.join(out_dir, "runs")
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        try:
            with open(os.path.join(runs, name, "row.json")) as f:
                row = json.load(f)
            with open(os.path.join(runs, name, "curve.json")) as f:
                curve = json.load(f)["curve"]
        except (OSError, ValueError, KeyError):
            continue
        out += [{**{k: row[k] for k in keys}, **point} for point in curve]
    return out
