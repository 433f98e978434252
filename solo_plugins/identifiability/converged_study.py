"""The latent-recovery study's converged stage: its grid, its groups and their rows.

A config (``configs/sweep/identifiability_converged.yaml``) lists settings (a stage name and
a mixing depth), each with batch sizes, and per batch size the step floor and cap and the tuned
loss settings. A group is one (setting, batch size, hyperparameter choice): its runs (methods x
seeds) train together. A batch size may also carry a ``grid`` (per method, lists of values per
loss setting, e.g. ``{kcl: {gamma: [4, 16], t: [1, 2]}}``): each method's grid points x seeds
are one more group, labelled ``<stage> b<B> <method> grid`` with ``hp: grid``
(``configs/sweep/identifiability_selection.yaml``); a setting with ``defaults: false`` has no
default groups. The runs of a group train together by :func:`~solo_plugins.identifiability.convergence.train_to_convergence`,
which saves the group's state in ``groups/<group>.pt`` while it trains; each run's row lands
in ``results.csv`` (and ``runs/<run>/row.json`` with its curve) when the run stops.
"""

import csv
import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from solo_plugins._version import __version__, source_commit
from solo_plugins.analysis.results import Table, write_json
from solo_plugins.engine import Launch, execute_plan
from solo_plugins.identifiability.converged_config import check_converged_study, grid_points
from solo_plugins.identifiability.convergence import Criterion, RunResult, train_to_convergence
from solo_plugins.identifiability.measures import MEASUREMENTS
from solo_plugins.identifiability.study import KEY_FIELDS, Run, rounded, runs_for
from solo_plugins.identifiability.training import GroupSettings, Model
from solo_plugins.launch import Task
from solo_plugins.signals import DeferredSignal

AT_STOP = (*MEASUREMENTS, "min_canonical", "directions", "loss_gap")
EARLY = ("r2", "procrustes", "alignment", "uniformity", "wasserstein", "effective_rank", "min_canonical",
         "directions", "loss_large", "loss_gap")
COLUMNS = [
    *KEY_FIELDS,  # steps: the run's step cap
    "hp",  # default | tuned
    "converged",  # true: the criterion held at stopped_step; false: stopped at the cap
    "stopped_step",
    "min_steps",
    "loss",
    "loss_kwargs",
    "mixing_layers",
    "kappa",
    "hidden",
    "lr",
    *AT_STOP,
    "loss_oracle",
    *(f"{m}_early" for m in EARLY),  # the same run's measurements at early_step
    "early_step",
    "criterion",  # JSON of the convergence criterion
    "diverged_step",
    "seconds",
    "version",
    "commit",
]


def group_id(group: "Group") -> str:
    return group.label.replace(" ", "-")


def run_converged_group(cfg: Dict, label: str, progress: Optional[Callable[[str], None]] = None) -> None:
    """One group of a converged-stage config, as a launcher runs it (a SLURM array task): SLURM's
    warning signal saves the group's state at the next data-chunk boundary before the job is
    requeued, and the requeued job resumes from it."""
    study = ConvergedStudy(cfg, progress=progress or (lambda line: print(line, flush=True)))
    group = next(g for g in study.groups() if g.label == label)
    with DeferredSignal() as warning:
        study.run_group(group, interrupt=warning)


def converged_table(out_dir: str) -> Table:
    return Table(os.path.join(out_dir, "results.csv"), COLUMNS, KEY_FIELDS)


@dataclass(frozen=True)
class Group:
    label: str
    runs: Tuple[Run, ...]
    settings: GroupSettings
    criterion: Criterion


class ConvergedStudy:
    """The converged stage of one config (a mapping)."""

    def __init__(self, cfg: Dict, progress: Callable[[str], None] = print):
        check_converged_study(cfg)
        self.cfg = cfg
        self.progress = progress
        self.table = converged_table(cfg["out_dir"])
        self.methods = {k: dict(v) for k, v in cfg["methods"].items()}

    def groups(self) -> List[Group]:
        c = self.cfg
        d, seeds = int(c["latent_dim"]), list(c["seeds"])
        criterion = dict(c.get("criterion") or {})
        defaults, tuned, grids = [], [], []
        for setting in c["settings"]:
            methods = {m: self.methods[m] for m in (setting.get("methods") or self.methods)}
            for batch in setting["batches"]:
                b = int(batch["batch_size"])
                settings = GroupSettings(
                    latent_dim=d, kappa=float(c["kappa"]), mixing_layers=int(setting["mixing_layers"]),
                    hidden=tuple(int(h) for h in c["hidden"]), lr=float(c["lr"]), batch_size=b,
                    steps=int(batch["max_steps"]), heldout=int(c["heldout"]),
                    curve_points=int(c["curve_points"]), pairwise_points=int(c["pairwise_points"]),
                    loss_batches=int(c["loss_batches"]), large_batch=int(c["large_batch"]), threads=c.get("threads"),
                    data_chunk=int(c.get("data_chunk", 64)))
                crit = Criterion(**{**criterion, "min_steps": int(batch["min_steps"]),
                                    "max_steps": int(batch["max_steps"])})
                stage, cap = setting["stage"], int(batch["max_steps"])
                if setting.get("defaults", True):
                    runs = runs_for(stage, "default", methods, {}, d, b, cap, seeds)
                    defaults.append(Group(f"{stage} b{b} defaults", tuple(runs), settings, crit))
                for hp in ("tuned", "selected"):
                    changes = {m: [dict(v or {})] for m, v in (batch.get(hp) or {}).items() if m in methods}
                    if changes:
                        runs = runs_for(stage, hp, {m: methods[m] for m in changes}, changes, d, b, cap, seeds)
                        tuned.append(Group(f"{stage} b{b} {hp}", tuple(runs), settings, crit))
                for m, axes in (batch.get("grid") or {}).items():
                    if m in methods:
                        runs = runs_for(stage, "grid", {m: methods[m]}, {m: grid_points(axes)}, d, b, cap, seeds)
                        grids.append(Group(f"{stage} b{b} {m} grid", tuple(runs), settings, crit))
        return defaults + tuned + grids

    def plan(self) -> List[Group]:
        """The config's groups (or those ``groups`` names) that still lack rows."""
        groups = self.groups()
        chosen = self.cfg.get("groups")
        if chosen:
            unknown = sorted(set(chosen) - {g.label for g in groups})
            if unknown:
                raise ValueError(f"groups: {unknown} are not groups of this config; choose from "
                                 f"{[g.label for g in groups]}")
            groups = [g for g in groups if g.label in chosen]
        done = {self.table.key(r) for r in self.table.read()}
        return [g for g in groups if any(r.key not in done for r in g.runs)]

    def task(self, group: Group) -> Task:
        """The group as the engine's launchers take it: one process, ``threads`` torch threads."""
        cfg = {**self.cfg, "out_dir": os.path.abspath(self.cfg["out_dir"])}  # a job may start elsewhere
        return Task(group_id(group), os.path.join(cfg["out_dir"], "groups", group_id(group)), run_converged_group,
                    (cfg, group.label), threads=self.cfg.get("threads"))

    def run(self) -> List[Dict]:
        """Plans the groups without rows, executes them where ``launcher`` says (in this process,
        one after another, or as one SLURM job array), collects the rows."""
        source_commit()
        launch = Launch.from_config(self.cfg)
        out = self.cfg["out_dir"]
        os.makedirs(os.path.join(out, "groups"), exist_ok=True)
        self.collect()
        reused = 0 if launch.dry_run else self.reuse()
        if reused:
            self.progress(f"{reused} rows reused from {self.cfg['reuse_rows']}")
        todo = self.plan()
        by_id = {group_id(g): g for g in todo}
        done = {self.table.key(r) for r in self.table.read()}
        headers = {group_id(g): f"[{k}/{len(todo)}] {g.label}: {sum(r.key not in done for r in g.runs)} runs "
                                f"({sum(r.key in done for r in g.runs)} already done)" for k, g in enumerate(todo, 1)}
        if launch.launcher != "local":
            for line in headers.values():
                self.progress(line)

        def here(task: Task) -> None:  # the local launcher: in this process, with this study's progress
            self.progress(headers[task.run_id])
            self.run_group(by_id[task.run_id])

        if execute_plan([self.task(g) for g in todo], launch, out,
                        run_here=here, progress=self.progress):
            self.collect()
        return self.table.read()

    def collect(self) -> int:
        """Adds to results.csv the rows that runs left in their folders and the table lacks
        (a job that wrote its row file but not the table); returns how many."""
        return self.table.collect()

    def run_group(self, group: Group, interrupt=None) -> None:
        """Trains the group's runs that have no row; its state file holds all of the group's runs
        (those with rows are dropped from it), so that it resumes after any of them landed."""
        by_model = {(r.method, r.spec, r.seed): r for r in group.runs}
        models = [Model(r.method, r.spec, r.seed) for r in group.runs]
        state = os.path.join(self.cfg["out_dir"], "groups", group_id(group) + ".pt")
        os.makedirs(os.path.dirname(state), exist_ok=True)
        commit = source_commit()

        def done(model: Model) -> bool:
            keys = {self.table.key(r) for r in self.table.read()}
            return by_model[(model.name, model.spec, model.seed)].key in keys

        def write(result: RunResult) -> None:
            run = by_model[(result.model.name, result.model.spec, result.model.seed)]
            self.table.add(self.row(run, group, result, commit), run_dir=self.folder(run))
            write_json(os.path.join(self.folder(run), "curve.json"), {"curve": result.curve})
            self.progress(f"  {run.run_id}: {'converged' if result.converged else 'NOT converged'} at step "
                          f"{result.stopped_step}, R² {result.final['r2']:.4f}, "
                          f"{result.final['directions']}/{group.settings.latent_dim} directions")

        train_to_convergence(models, group.settings, group.criterion, write, state_path=state,
                             checkpoint_seconds=60 * float(self.cfg.get("checkpoint_minutes", 5)),
                             early_step=int(self.cfg.get("early_step", 1000)), skip=done, progress=self.progress,
                             interrupt=interrupt)

    def folder(self, run: Run) -> str:
        return os.path.join(self.cfg["out_dir"], "runs", run.run_id)

    def setting(self, run: Run, group: Group) -> Dict:
        """The columns of a row that say how its run was set up (besides its key)."""
        spec, s, c = dict(run.spec), group.settings, group.criterion
        return {
            "min_steps": c.min_steps, "loss": spec["loss"],
            "loss_kwargs": json.dumps({k: v for k, v in spec.items() if k != "loss"}, sort_keys=True),
            "mixing_layers": s.mixing_layers, "kappa": s.kappa, "hidden": "-".join(map(str, s.hidden)), "lr": s.lr,
            "early_step": int(self.cfg.get("early_step", 1000)),
            "criterion": json.dumps({"check_every": c.check_every, "min_canonical": c.min_canonical,
                                     "window": c.window, "r2_tolerance": c.r2_tolerance}, sort_keys=True),
        }

    def reuse(self) -> int:
        """Copies into results.csv the rows of ``reuse_rows`` (another config's table) that are
        runs of this config, set up alike, and that the table lacks; returns how many. A row
        under the same key but set up otherwise is not copied: its run trains here."""
        source = self.cfg.get("reuse_rows")
        if not source:
            return 0
        runs = {r.key: (r, g) for g in self.groups() for r in g.runs}
        have = {self.table.key(r) for r in self.table.read()}
        copied = 0
        with open(source, newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            key = self.table.key(row)
            if key in have or key not in runs:
                continue
            want = {k: str(v) for k, v in self.setting(*runs[key]).items()}
            differs = [k for k, v in want.items() if not _same_text(row.get(k) or "", v)]
            if differs:
                self.progress(f"  not reused, set up otherwise ({', '.join(differs)}): {runs[key][0].run_id}")
                continue
            self.table.add(row)
            copied += 1
        return copied

    def row(self, run: Run, group: Group, result: RunResult, commit: str) -> Dict:
        return {
            **{f: getattr(run, f) for f in KEY_FIELDS}, "hp": run.hp,
            "converged": str(result.converged).lower(), "stopped_step": result.stopped_step,
            **self.setting(run, group),
            **{m: rounded(result.final.get(m)) for m in AT_STOP}, "directions": result.final["directions"],
            "loss_oracle": rounded(result.final.get("loss_oracle")),
            **{f"{m}_early": rounded(result.early.get(m)) for m in EARLY},
            "directions_early": result.early.get("directions", ""),
            "diverged_step": "" if result.diverged_step is None else result.diverged_step,
            "seconds": round(result.seconds, 1), "version": __version__, "commit": commit,
        }


def _same_text(a: str, b: str) -> bool:
    """Two cells of a row equal as numbers or JSON where they parse, else as text."""
    for parse in (float, json.loads):
        try:
            return parse(a) == parse(b)
        except (TypeError, ValueError):
            pass
    return a == b
