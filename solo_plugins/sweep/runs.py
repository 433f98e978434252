"""One run of the sweep, as a launcher executes it: pretraining through solo-learn and the
evaluations of its backbone (the converged probes, kNN, solo-learn's linear evaluation), or a
reference row (the untrained network, the raw pixels); the stale evaluations of landed rows
redone."""

import json
import os
import time
from typing import Dict, List, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf

from solo_plugins._version import __version__, source_commit
from solo_plugins.analysis.results import add_row, read_rows, row_key
from solo_plugins.commands._hydra import compose
from solo_plugins.console import quiet_run_warnings
from solo_plugins.device import config_device
from solo_plugins.launch import Task, task_rank
from solo_plugins.sweep.claims import claim_folder, wait_for_claim
from solo_plugins.sweep.plan import (
    Run,
    configs_dir,
    data_overrides,
    pretrain_config,
    row_run,
    run_dir,
    variant_override,
)


def linear_protocol(cfg: DictConfig) -> str:
    """The sweep's linear-evaluation settings, as recorded in each row."""
    return " ".join(o for o in cfg.get("linear_overrides", []) if not o.startswith("data.num_workers"))


def _linear(cfg: DictConfig, checkpoint: str, seed: int) -> Dict:
    from solo_plugins.commands.linear import linear_eval

    lin = compose(
        os.path.join(configs_dir(cfg), "linear", cfg.dataset),
        "linear.yaml",
        [f"pretrained_feature_extractor='{checkpoint}'", f"+seed={seed}", *data_overrides(cfg),
         *cfg.get("linear_overrides", []),
         f"checkpoint.dir={os.path.join(os.path.dirname(checkpoint), 'linear')}"],
    )
    start = time.time()
    final = linear_eval(lin)
    return {"linear_acc1": final.get("val_acc1"), "linear_acc5": final.get("val_acc5"),
            "linear_protocol": linear_protocol(cfg), "linear_s": round(time.time() - start, 1)}


def _redo(results: str, stale: List[Dict], evaluate, what: str) -> int:
    """Updates each stale row with ``evaluate(row)`` and writes it back; returns how many."""
    for k, row in enumerate(stale, 1):
        row.update(evaluate(row))
        add_row(results, row, run_dir(os.path.dirname(results), row_run(row)))
        print(f"{what} redone [{k}/{len(stale)}] {row['method']} {row['variant']} "
              f"b{row['batch_size']} s{row['seed']}: {row_summary(row)}", flush=True)
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
        return _evaluate(cfg, _checkpoint(cfg, row), row_data(cfg, row), int(row["seed"]))

    stale = [r for r in read_rows(results) if row_key(r) in keys
             and (r["method"] == "pixels" or r.get("checkpoint"))
             and r.get("probe_protocol", "") != probe_protocol()]
    return _redo(results, stale, evaluate, "probes")


def row_data(cfg: DictConfig, row: Dict) -> DictConfig:
    """The data settings a row's pretraining config gives under this sweep."""
    method = row["method"] if row["method"] not in ("random-init", "pixels") else cfg.methods[0]
    return pretrain_config(cfg, method, 2, int(row["seed"]), "data").data


def _evaluate_pixels(cfg: DictConfig, seed: int) -> Dict:
    from solo_plugins.evaluation import evaluate_pixels

    start = time.time()
    scores = evaluate_pixels(row_data(cfg, {"method": "pixels", "seed": seed}), seed=seed, device=config_device(cfg))
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

    pre = pretrain_config(cfg, run.method, run.batch_size, run.seed, run.run_id, run.variant)
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
    pre = pretrain_config(cfg, base, 2, run.seed, run.run_id)
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


def run_task(cfg: DictConfig, run: Run) -> Task:
    """The run as a launcher takes it: its processes (one per device of its pretraining
    config, on each of its nodes) and the GPUs they train on."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in ("out_dir", "data_root", "config_dir"):  # a job may start in another folder
        if resolved.get(key):
            resolved[key] = os.path.abspath(resolved[key])
    devices, nodes, gpus = 1, 1, 0
    if run.batch_size != "":
        pre = pretrain_config(cfg, run.method, run.batch_size, run.seed, run.run_id, run.variant)
        devices, nodes = _devices(pre), int(pre.get("num_nodes", 1) or 1)
        gpus = devices if pre.get("accelerator") in ("gpu", "cuda") else 0
    return Task(run.run_id, run_dir(cfg.out_dir, run), execute_run, (resolved, run), devices=devices, nodes=nodes,
                gpus=gpus, threads=cfg.get("threads"))


def row_summary(row: Dict) -> str:
    parts = [f"{k} {float(row[k]):.2f}" for k in ("probe_acc1", "knn_acc1", "linear_acc1") if row.get(k) not in (None, "")]
    return ", ".join(parts)
