"""The sweep's plan: its runs (method x variant x batch size x seed, and the reference rows),
each run's pretraining config composed from the shipped configs and the sweep's overrides,
and its id from that resolved config (so that a row is reused only for the config it was
made with)."""

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List

from omegaconf import DictConfig, OmegaConf

from solo_plugins.analysis.results import row_key
from solo_plugins.commands._hydra import compose


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


def configs_dir(cfg: DictConfig) -> str:
    from solo_plugins.shipped_configs import configs_dir

    return cfg.get("config_dir") or configs_dir()


def data_overrides(cfg: DictConfig) -> List[str]:
    if cfg.get("data_root") is None:
        return []
    root = os.path.abspath(cfg.data_root)
    return [f"data.train_path={root}/train", f"data.val_path={root}/val"]


def pretrain_config(cfg: DictConfig, method: str, batch_size: int, seed: int, run_id: str, variant: str = ""):
    return compose(
        os.path.join(configs_dir(cfg), "pretrain", cfg.dataset),
        f"{method}.yaml",
        [
            f"name={run_id}",
            f"optimizer.batch_size={batch_size}",
            f"+seed={seed}",
            f"checkpoint.dir={os.path.join(os.path.abspath(cfg.out_dir), 'runs', run_id)}",
            "auto_resume.enabled=True",
            *data_overrides(cfg),
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


def run_dir(out_dir: str, run: Run) -> str:
    """The run's folder, which keeps its checkpoints and its own copy of its row."""
    return os.path.join(os.path.abspath(out_dir), "runs", run.run_id)


def row_run(row: Dict) -> Run:
    size = int(row["batch_size"]) if str(row.get("batch_size", "")) != "" else ""
    return Run(row["method"], size, int(row["seed"]), row.get("variant", ""), row.get("config_id", ""))


def _default_of(cfg: DictConfig, method: str, key: str):
    pre = compose(os.path.join(configs_dir(cfg), "pretrain", cfg.dataset), f"{method}.yaml", [])
    if key == "views" and len(pre.augmentations) != 1:
        raise ValueError(f"variants: 'views' needs one augmentation entry in {cfg.dataset}/{method}.yaml; "
                         f"it has {len(pre.augmentations)}")
    return OmegaConf.select(pre, variant_path(key))


#: where a run's config keeps paths and names of this machine or folder: not part of its id
LOCATION_KEYS = ("name", "checkpoint.dir", "auto_resume", "wandb", "data.train_path", "data.val_path")


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
        return pretrain_config(cfg, cfg.methods[0], 2, run.seed, run.run_id)
    return pretrain_config(cfg, run.method, run.batch_size, run.seed, run.run_id, run.variant)


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
