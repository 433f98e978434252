"""The comparison harness: methods (and their hyperparameter variants) x batch sizes x
seeds, each pretrained, then evaluated on frozen backbone features by a converged
logistic-regression probe, a weighted kNN probe and solo-learn's linear evaluation, next to
reference rows (the untrained network, the raw pixels); resumable.

    solo-plugins-sweep --config-path configs/sweep --config-name digits.yaml [overrides]

Every run is built from the shipped configs ``<config_dir>/pretrain/<dataset>/<method>.yaml``
and ``<config_dir>/linear/<dataset>/linear.yaml`` plus the sweep's overrides. Finished runs
are rows of ``<out_dir>/results.csv`` and are skipped when the sweep is started again; a
run interrupted mid-pretraining is continued by solo-learn's auto-resume, after any
unreadable checkpoint has been set aside. Tables and plots: ``solo_plugins.analysis``.
"""

import os
import time
from typing import Dict, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from solo_plugins._version import source_commit
from solo_plugins.analysis.plots import (
    plot_accuracy_vs_batch_size,
    plot_hyperparameters,
    plot_loss_vs_batch_size,
    plot_metrics,
)
from solo_plugins.analysis.report import console_summary, results_markdown
from solo_plugins.analysis.results import add_row, read_rows, row_key
from solo_plugins.commands._hydra import run_hydra
from solo_plugins.console import quiet_run_warnings
from solo_plugins.device import config_device
from solo_plugins.engine import Launch, execute_plan
from solo_plugins.launch import Task, read_row
from solo_plugins.sweep.plan import Run, is_current, plan, run_dir, shipped_settings, with_config_ids
from solo_plugins.sweep.runs import redo_linear, redo_probes, row_summary, run_task


def report(rows: List[Dict], out_dir: str, loss_vs_batch_size: bool = True, shipped: Optional[Dict] = None,
           title: str = "Results", missing: Sequence[str] = ()) -> str:
    table = results_markdown(rows, shipped=shipped, title=title)
    if missing:
        table += (f"\n## Missing runs\n\n{len(missing)} planned runs have no row (failed, or not run yet); "
                  f"the tables above are without them: {', '.join(missing)}.\n")
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(table)
    plot_accuracy_vs_batch_size(rows, out_dir)
    plot_metrics(rows, out_dir)
    if any(r.get("variant") for r in rows):
        plot_hyperparameters(rows, out_dir, shipped=shipped)
    if loss_vs_batch_size:
        plot_loss_vs_batch_size(out_dir)
    return table


def collect(cfg: DictConfig, runs: List[Run], results: str) -> int:
    """Adds to results.csv the rows that runs left in their folders (``row.json``) and that
    the table lacks; returns how many."""
    table = {row_key(r): r for r in read_rows(results)}
    added = 0
    for run in runs:
        if run.key in table and is_current(table[run.key], run):
            continue
        row = read_row(run_dir(cfg.out_dir, run))
        if row is not None and is_current(row, run) and row.get("config_id"):
            add_row(results, row, run_dir(cfg.out_dir, run))
            added += 1
    return added


def sweep(cfg: DictConfig) -> str:
    source_commit()  # the code this process runs: read before anything can change the tree
    quiet_run_warnings()
    config_device(cfg)  # a bad value fails here, before any run
    launch = Launch.from_config(OmegaConf.to_container(cfg, resolve=True))  # a bad value fails before any run
    os.makedirs(cfg.out_dir, exist_ok=True)
    results = os.path.join(cfg.out_dir, "results.csv")
    runs = with_config_ids(cfg, plan(cfg))
    collect(cfg, runs, results)
    table = {row_key(r): r for r in read_rows(results)}
    todo = [r for r in runs if not (r.key in table and is_current(table[r.key], r))]
    print(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} already in {results}", flush=True)
    tasks = [run_task(cfg, run) for run in todo]
    finished = [r.run_id for r in runs if r not in todo]
    if launch.action != "status" and not launch.dry_run:  # a dry run changes nothing
        finished_keys = {r.key for r in runs if r not in todo}
        if cfg.get("linear_eval", True):
            redo_linear(cfg, results, finished_keys)
        redo_probes(cfg, results, finished_keys)
    started, landed = time.time(), []

    def on_row(task: Task, row: Dict) -> None:
        add_row(results, row, task.folder)
        landed.append(task)
        k, spent = len(landed), time.time() - started
        print(f"[{len(finished) + k}/{len(runs)}] {task.run_id}: {row_summary(row)}; "
              f"about {spent / k * (len(todo) - k) / 60:.0f} min left", flush=True)

    if not execute_plan(tasks, launch, cfg.out_dir, finished=finished, on_row=on_row,
                        progress=lambda line: print(line, flush=True)):
        return ""
    collect(cfg, runs, results)
    table = {row_key(r): r for r in read_rows(results)}
    rows = [table[r.key] for r in runs if r.key in table and is_current(table[r.key], r)]
    missing = [r.run_id for r in runs if not (r.key in table and is_current(table[r.key], r))]
    if missing:
        print(f"missing rows ({len(missing)}): {', '.join(missing)}")
    table = report(rows, cfg.out_dir, cfg.get("loss_vs_batch_size", True), shipped_settings(cfg),
                   title=f"Results of the {cfg.dataset} sweep", missing=missing)
    print("\n" + console_summary(rows))
    figures = sorted(f for f in os.listdir(cfg.out_dir) if f.endswith(".png"))
    print(f"Everything (paired differences, metrics): {cfg.out_dir}/results.md and results.csv; "
          f"figures: {', '.join(figures)}; each run's full log: {cfg.out_dir}/runs/<run>/log.txt")
    return table


def main() -> None:
    run_hydra(sweep, configs="sweep")


if __name__ == "__main__":
    main()
