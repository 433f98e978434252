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

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from solo_plugins._version import __version__, source_commit
from solo_plugins.analysis.plots import (
    plot_accuracy_vs_batch_size,
    plot_hyperparameters,
    plot_loss_vs_batch_size,
    plot_metrics,
)
from solo_plugins.analysis.report import console_summary, results_markdown
from solo_plugins.analysis.results import add_row, read_rows, row_key
from solo_plugins.commands._hydra import compose, run_hydra
from solo_plugins.console import quiet_run_warnings
from solo_plugins.engine import Launch, execute_plan
from solo_plugins.launch import Task, read_row, task_rank
from solo_plugins.device import config_device


@dataclass(frozen=True)
class Run:
    method: str
    batch_size: object  # int, or "" for a reference row
    seed: int
    variant: str = ""  # "key=value" of method_kwargs, "" for the config as shipped
    config_id: str = field(default="", compare=False)  # of the resolved pretraining config: see with_config_ids

    @property
    def run_id(self) -> str:
        # a folder name: what a string or list variant holds beyond [A-Za-z0-9_.+-] becomes _
        variant = f"-{re.sub(r'[^A-Za-z0-9_.+-]', '_', self.variant.replace('=', ''))}" if self.variant else ""
        size = f"-b{self.batch_size}" if self.batch_size != "" else ""
        return f"{self.method}{variant}{size}-s{self.seed}"

    @property
    def key(self):
        return row_key({"method": self.method, "variant": self.variant, "batch_size": self.batch_size, "seed": self.seed})


def _configs(cfg: DictConfig) -> str:
    from solo_plugins.shipped_configs import configs_dir

    return cfg.get("config_dir") or configs_dir()


def _data_overrides(cfg: DictConfig) -> List[str]:
    if cfg.get("data_root") is None:
        return []
    root = os.path.abspath(cfg.data_root)
    return [f"data.train_path={root}/train", f"data.val_path={root}/val"]


def _pretrain_config(cfg: DictConfig, method: str, batch_size: int, seed: int, run_id: str, variant: str = ""):
    return compose(
        os.path.join(_configs(cfg), "pretrain", cfg.dataset),
        f"{method}.yaml",
        [
            f"name={run_id}",
            f"optimizer.batch_size={batch_size}",
            f"+seed={seed}",
            f"checkpoint.dir={os.path.join(os.path.abspath(cfg.out_dir), 'runs', run_id)}",
            "auto_resume.enabled=True",
            *_data_overrides(cfg),
            *cfg.get("pretrain_overrides", []),
            *([variant_override(variant)] if variant else []),
        ],
    )


def variant_path(key: str) -> str:
    """A variant's config key: ``views`` is the number of crops of the (one) augmentation,
    a dotted key is taken as it is, any other key is the method's own (``method_kwargs``)."""
    if key == "views":
        return "augmentations.0.num_crops"
    return key if "." in key else f"method_kwargs.{key}"


def variant_override(variant: str) -> str:
    key, value = variant.split("=", 1)
    return f"{variant_path(key)}={value}"


def linear_protocol(cfg: DictConfig) -> str:
    """The sweep's linear-evaluation settings, as recorded in each row."""
    return " ".join(o for o in cfg.get("linear_overrides", []) if not o.startswith("data.num_workers"))


def _linear(cfg: DictConfig, checkpoint: str, seed: int) -> Dict:
    from solo_plugins.commands.linear import linear_eval

    lin = compose(
        os.path.join(_configs(cfg), "linear", cfg.dataset),
        "linear.yaml",
        [f"pretrained_feature_extractor='{checkpoint}'", f"+seed={seed}", *_data_overrides(cfg),
         *cfg.get("linear_overrides", []),
         f"checkpoint.dir={os.path.join(os.path.dirname(checkpoint), 'linear')}"],
    )
    start = time.time()
    final = linear_eval(lin)
    return {"linear_acc1": final.get("val_acc1"), "linear_acc5": final.get("val_acc5"),
            "linear_protocol": linear_protocol(cfg), "linear_s": round(time.time() - start, 1)}


def run_dir(out_dir: str, run: Run) -> str:
    """The run's folder, which keeps its checkpoints and its own copy of its row."""
    return os.path.join(os.path.abspath(out_dir), "runs", run.run_id)


def _row_run(row: Dict) -> Run:
    size = int(row["batch_size"]) if str(row.get("batch_size", "")) != "" else ""
    return Run(row["method"], size, int(row["seed"]), row.get("variant", ""), row.get("config_id", ""))


def _redo(results: str, stale: List[Dict], evaluate, what: str) -> int:
    """Updates each stale row with ``evaluate(row)`` and writes it back; returns how many."""
    for k, row in enumerate(stale, 1):
        row.update(evaluate(row))
        add_row(results, row, run_dir(os.path.dirname(results), _row_run(row)))
        print(f"{what} redone [{k}/{len(stale)}] {row['method']} {row['variant']} "
              f"b{row['batch_size']} s{row['seed']}: {_summary(row)}", flush=True)
    return len(stale)


def _checkpoint(cfg: DictConfig, row: Dict) -> str:
    return os.path.join(os.path.abspath(cfg.out_dir), row["checkpoint"])


def redo_linear(cfg: DictConfig, results: str, keys) -> int:
    """Re-runs the linear evaluation of the finished rows measured under other linear
    settings than the sweep's, from their checkpoints; returns how many."""
    stale = [r for r in read_rows(results) if row_key(r) in keys and r["method"] != "pixels"
             and r.get("checkpoint") and r.get("linear_protocol", "") != linear_protocol(cfg)]
    return _redo(results, stale, lambda row: _linear(cfg, _checkpoint(cfg, row), int(row["seed"])),
                 "linear evaluation")


def redo_probes(cfg: DictConfig, results: str, keys) -> int:
    """Re-evaluates the finished rows whose probes ran under other settings than this
    version's (``probe_protocol``): from their checkpoints, or from the images for
    ``pixels``; returns how many."""
    from solo_plugins.evaluation import probe_protocol

    def evaluate(row):
        if row["method"] == "pixels":
            return _evaluate_pixels(cfg, int(row["seed"]))
        return _evaluate(cfg, _checkpoint(cfg, row), _data(cfg, row), int(row["seed"]))

    stale = [r for r in read_rows(results) if row_key(r) in keys
             and (r["method"] == "pixels" or r.get("checkpoint"))
             and r.get("probe_protocol", "") != probe_protocol()]
    return _redo(results, stale, evaluate, "probes")


def _data(cfg: DictConfig, row: Dict) -> DictConfig:
    """The data settings a row's pretraining config gives under this sweep."""
    method = row["method"] if row["method"] not in ("random-init", "pixels") else cfg.methods[0]
    return _pretrain_config(cfg, method, 2, int(row["seed"]), "data").data


def _evaluate_pixels(cfg: DictConfig, seed: int) -> Dict:
    from solo_plugins.evaluation import evaluate_pixels

    start = time.time()
    scores = evaluate_pixels(_data(cfg, {"method": "pixels", "seed": seed}), seed=seed, device=config_device(cfg))
    return {**scores, "eval_s": round(time.time() - start, 1)}


def _evaluate(cfg: DictConfig, checkpoint: str, data: DictConfig, seed: int) -> Dict:
    from solo_plugins.evaluation import evaluate_checkpoint

    start = time.time()
    scores = evaluate_checkpoint(checkpoint, seed=seed, data=data, metrics_samples=cfg.get("metrics_samples", 1024),
                                 device=config_device(cfg))
    return {**scores, "eval_s": round(time.time() - start, 1)}


def _provenance(cfg: DictConfig, config: str, checkpoint: str = "") -> Dict:
    return {
        "config": config,
        "checkpoint": os.path.relpath(checkpoint, os.path.abspath(cfg.out_dir)) if checkpoint else "",
        "version": __version__,
        "commit": source_commit(),
    }


def _devices(pre: DictConfig) -> int:
    devices = pre.get("devices", 1)
    return len(devices) if isinstance(devices, (list, ListConfig)) else (int(devices) if str(devices).isdigit() else 1)


def _end_process_group() -> None:
    """After a run of several processes trained: every rank leaves the group, and the first
    evaluates alone, with SLURM's task count hidden from Lightning (which would otherwise
    expect one device per task)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key in ("SLURM_NTASKS", "SLURM_NTASKS_PER_NODE", "SLURM_STEP_NUM_TASKS"):
        os.environ.pop(key, None)


def run_method(cfg: DictConfig, run: Run) -> Optional[Dict]:
    from solo_plugins.checkpoints import set_aside_unreadable
    from solo_plugins.commands.pretrain import pretrain

    pre = _pretrain_config(cfg, run.method, run.batch_size, run.seed, run.run_id, run.variant)
    set_aside_unreadable(pre.checkpoint.dir)
    from solo.methods import METHODS  # the plugin's methods are registered by then

    own = METHODS[pre.method].loss_kwargs
    loss_kwargs = {k: v for k, v in OmegaConf.to_container(pre.method_kwargs).items() if k in own}
    start = time.time()
    checkpoint = pretrain(pre.copy())
    pretrain_s = round(time.time() - start, 1)
    if _devices(pre) * int(pre.get("num_nodes", 1) or 1) > 1:
        _end_process_group()
        if task_rank() != 0:
            return None
    row = {"method": run.method, "variant": run.variant, "batch_size": run.batch_size, "seed": run.seed,
           "config_id": run.config_id, "loss_kwargs": json.dumps(loss_kwargs, sort_keys=True),
           "pretrain_s": pretrain_s}
    if cfg.get("linear_eval", True):
        row.update(_linear(cfg, checkpoint, run.seed))
    row.update(_evaluate(cfg, checkpoint, pre.data, run.seed))
    config = f"{cfg.dataset}/{run.method}.yaml" + (f" {variant_override(run.variant)}" if run.variant else "")
    row.update(_provenance(cfg, config, checkpoint))
    return row


def run_reference(cfg: DictConfig, run: Run) -> Dict:
    """``random-init``: the first method's network, untrained, through every probe;
    ``pixels``: the probes on the evaluation images themselves."""
    from solo_plugins.evaluation import save_untrained

    base = cfg.methods[0]
    pre = _pretrain_config(cfg, base, 2, run.seed, run.run_id)
    row = {"method": run.method, "variant": "", "batch_size": "", "seed": run.seed, "config_id": run.config_id}
    if run.method == "pixels":
        row.update(_evaluate_pixels(cfg, run.seed))
        row.update(_provenance(cfg, f"{cfg.dataset} pixels"))
        return row
    checkpoint = save_untrained(pre, pre.checkpoint.dir, run.seed)
    if cfg.get("linear_eval", True):
        row.update(_linear(cfg, checkpoint, run.seed))
    row.update(_evaluate(cfg, checkpoint, pre.data, run.seed))
    row.update(_provenance(cfg, f"{cfg.dataset}/{base}.yaml untrained", checkpoint))
    return row


def _default_of(cfg: DictConfig, method: str, key: str):
    pre = compose(os.path.join(_configs(cfg), "pretrain", cfg.dataset), f"{method}.yaml", [])
    if key == "views" and len(pre.augmentations) != 1:
        raise ValueError(f"variants: 'views' needs one augmentation entry in {cfg.dataset}/{method}.yaml; "
                         f"it has {len(pre.augmentations)}")
    return OmegaConf.select(pre, variant_path(key))


#: where a run's config keeps paths and names of this machine or folder: not part of its id
LOCATION_KEYS = ("name", "checkpoint.dir", "auto_resume", "wandb", "data.train_path", "data.val_path")
CONFIG_ID_FILE = "config_id"
UNTRAINED_KEYS = ("method", "backbone", "method_kwargs", "data", "seed")


def config_id(pre: DictConfig) -> str:
    """A run's id from its resolved pretraining config (what it trains: method, loss, data,
    network, optimizer, seed), the same on every machine and in every folder."""
    resolved = OmegaConf.to_container(pre, resolve=True)
    for dotted in LOCATION_KEYS:
        *parents, last = dotted.split(".")
        node = resolved
        for key in parents:
            node = node.get(key) or {}
        node.pop(last, None)
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _run_config(cfg: DictConfig, run: Run) -> DictConfig:
    """The pretraining config a run trains with (a reference row: its seed's untrained network)."""
    if run.batch_size == "":
        return _pretrain_config(cfg, cfg.methods[0], 2, run.seed, run.run_id)
    return _pretrain_config(cfg, run.method, run.batch_size, run.seed, run.run_id, run.variant)


def with_config_ids(cfg: DictConfig, runs: List[Run]) -> List[Run]:
    """The runs, each with the id of its resolved config. The folder keeps the readable name;
    the id decides whether a finished row is still this run's (a row made under another
    config is redone) and whether the folder's checkpoints may be resumed."""
    def of(run: Run) -> str:
        if run.method == "pixels":
            return "pixels"
        pre = _run_config(cfg, run)
        if run.batch_size == "":  # the untrained network: what builds it, not how it would train
            pre = OmegaConf.create({k: pre.get(k) for k in UNTRAINED_KEYS})
        return config_id(pre)

    return [replace(run, config_id=of(run)) for run in runs]


def is_current(row: Dict, run: Run) -> bool:
    """A row is the run's when their keys agree and so do their config ids (a row from
    before ids, with none, is taken as it is)."""
    return row_key(row) == run.key and row.get("config_id", "") in ("", run.config_id)


def claim_folder(folder: str, run: Run) -> None:
    """Makes ``folder`` the run's: what an earlier run of another config left there
    (checkpoints, row, log) moves to ``stale-<its id>/``, so that auto-resume cannot continue it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, CONFIG_ID_FILE)
    try:
        with open(path) as f:
            old = f.read().strip()
    except OSError:
        old = None
    if old == run.config_id:
        return
    if old is not None:
        stale = os.path.join(folder, f"stale-{old}")
        os.makedirs(stale, exist_ok=True)
        for name in os.listdir(folder):
            if not name.startswith("stale-") and name != "log.txt":
                shutil.move(os.path.join(folder, name), os.path.join(stale, name))
        print(f"{run.run_id}: its config changed ({old} -> {run.config_id}); the earlier run moved to {stale}")
    with open(path, "w") as f:
        f.write(run.config_id + "\n")


def plan(cfg: DictConfig) -> List[Run]:
    """Reference rows first (once per seed), then methods x batch sizes x seeds, then each
    method's variants (``variants: {method: {key: [values]}}``, key as :func:`variant_path`
    reads it: ``views: [4]`` compares 4 views with the shipped 2), skipping a variant equal
    to the shipped setting."""
    runs = []
    if cfg.get("reference_rows", True):
        runs += [Run(ref, "", int(s)) for s in cfg.seeds for ref in ("random-init", "pixels")]
    runs += [Run(m, int(b), int(s)) for s in cfg.seeds for b in cfg.batch_sizes for m in cfg.methods]
    variants = cfg.get("variants") or {}
    for method, settings in variants.items():
        for key, values in settings.items():
            shipped = _default_of(cfg, method, key)
            for value in values:
                if shipped is not None and same_setting(value, shipped):
                    continue
                for s in cfg.get("variant_seeds") or cfg.seeds:
                    for b in cfg.get("variant_batch_sizes") or cfg.batch_sizes:
                        runs.append(Run(method, int(b), int(s), f"{key}={override_value(value)}"))
    return runs


def _plain(value):
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def same_setting(value, shipped) -> bool:
    """A variant's value against the shipped one: numbers by value (4 is 4.0), anything else
    (strings, booleans, lists) as it is."""
    value, shipped = _plain(value), _plain(shipped)
    if isinstance(value, bool) or isinstance(shipped, bool):
        return value is shipped
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, shipped)):
        return float(value) == float(shipped)
    return value == shipped


def override_value(value) -> str:
    """A variant's value as Hydra's override grammar reads it back: numbers as written
    (``0.1``, so that rows of number variants keep their names), booleans ``true``/``false``,
    lists ``[a,b]``, strings bare when they are one word, quoted otherwise."""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, str) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def shipped_settings(cfg: DictConfig) -> Dict:
    """{(method, key): the shipped config's value} for every variant key of the sweep."""
    return {(m, key): _default_of(cfg, m, key)
            for m, settings in (cfg.get("variants") or {}).items() for key in settings}


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


def _summary(row: Dict) -> str:
    parts = [f"{k} {float(row[k]):.2f}" for k in ("probe_acc1", "knn_acc1", "linear_acc1") if row.get(k) not in (None, "")]
    return ", ".join(parts)


def execute_run(cfg: Dict, run: Run) -> Dict:
    """One run of the sweep, as a launcher calls it (in this process or in a SLURM job):
    ``cfg`` is the sweep's resolved config as a plain dict; returns the run's row."""
    cfg = OmegaConf.create(cfg)
    quiet_run_warnings()
    folder = run_dir(cfg.out_dir, run)
    if task_rank() == 0:
        claim_folder(folder, run)
    else:  # the first process claims the folder; the others wait for it before resuming anything
        wait_for_claim(folder, run.config_id)
    return run_reference(cfg, run) if run.batch_size == "" else run_method(cfg, run)


CLAIM_WAIT_S = 300.0


def wait_for_claim(folder: str, config_id: str, timeout: Optional[float] = None) -> None:
    """Waits until the first process of the run has claimed ``folder`` for ``config_id``;
    raises if it has not within ``timeout`` (default CLAIM_WAIT_S) seconds, rather than
    going on to resume from a folder that may still hold another config's checkpoints."""
    timeout = CLAIM_WAIT_S if timeout is None else timeout
    deadline = time.time() + timeout
    while (found := _claimed(folder)) != config_id:
        if time.time() >= deadline:
            raise RuntimeError(
                f"{folder}: the run's first process (task rank 0) did not claim this folder for config "
                f"{config_id} within {timeout:.0f} s (found {found or 'no claim'} in {CONFIG_ID_FILE}); "
                f"this process stops instead of resuming from it. Check that rank 0 started and can "
                f"write there (shared storage on every node).")
        time.sleep(0.5)


def _claimed(folder: str) -> Optional[str]:
    try:
        with open(os.path.join(folder, CONFIG_ID_FILE)) as f:
            return f.read().strip()
    except OSError:
        return None


def _task(cfg: DictConfig, run: Run) -> Task:
    """The run as a launcher takes it: its processes (one per device of its pretraining
    config, on each of its nodes) and the GPUs they train on."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in ("out_dir", "data_root", "config_dir"):  # a job may start in another folder
        if resolved.get(key):
            resolved[key] = os.path.abspath(resolved[key])
    devices, nodes, gpus = 1, 1, 0
    if run.batch_size != "":
        pre = _pretrain_config(cfg, run.method, run.batch_size, run.seed, run.run_id, run.variant)
        devices, nodes = _devices(pre), int(pre.get("num_nodes", 1) or 1)
        gpus = devices if pre.get("accelerator") in ("gpu", "cuda") else 0
    return Task(run.run_id, run_dir(cfg.out_dir, run), execute_run, (resolved, run), devices=devices, nodes=nodes,
                gpus=gpus, threads=cfg.get("threads"))


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
    tasks = [_task(cfg, run) for run in todo]
    finished = [r.run_id for r in runs if r not in todo]
    if launch.action != "status":
        finished_keys = {r.key for r in runs if r not in todo}
        if cfg.get("linear_eval", True):
            redo_linear(cfg, results, finished_keys)
        redo_probes(cfg, results, finished_keys)
    started, landed = time.time(), []

    def on_row(task: Task, row: Dict) -> None:
        add_row(results, row, task.folder)
        landed.append(task)
        k, spent = len(landed), time.time() - started
        print(f"[{len(finished) + k}/{len(runs)}] {task.run_id}: {_summary(row)}; "
              f"about {spent / k * (len(todo) - k) / 60:.0f} min left", flush=True)

    if not execute_plan(tasks, launch, cfg.out_dir, threads=cfg.get("threads"), finished=finished, on_row=on_row,
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
