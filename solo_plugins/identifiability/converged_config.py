"""A converged-stage config checked before any run (every error names its setting and what
it accepts), and the points of a selection grid."""

import itertools
import os
from typing import Dict, List

from solo_plugins.identifiability.convergence import Criterion
from solo_plugins.identifiability.training import check_loss_spec


def _int(cfg: Dict, key: str, where: str, low: int = 1) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{where}{key} must be an integer >= {low}; got {value!r}")
    return value


def check_converged_study(cfg: Dict) -> None:
    """Errors naming the setting, before any run."""
    methods = cfg.get("methods") or {}
    if not methods:
        raise ValueError("methods: give at least one method, e.g. {dhel: {loss: dhel, temperature: 0.3}}")
    for name, spec in methods.items():
        check_loss_spec(dict(spec), f"methods.{name}")
    seeds = list(cfg.get("seeds") or [])
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers; got {seeds}")
    _int(cfg, "latent_dim", "", 2)
    Criterion(**{k: v for k, v in (cfg.get("criterion") or {}).items()})  # its own checks
    if not cfg.get("settings"):
        raise ValueError("settings: give at least one, e.g. [{stage: converged, mixing_layers: 2, batches: [...]}]")
    for i, setting in enumerate(cfg["settings"]):
        where = f"settings[{i}]."
        if not setting.get("stage"):
            raise ValueError(f"{where}stage: give the rows' stage name, e.g. converged")
        _int(setting, "mixing_layers", where)
        unknown = sorted(set(setting.get("methods") or []) - set(methods))
        if unknown:
            raise ValueError(f"{where}methods: {unknown} not in methods {sorted(methods)}")
        for j, batch in enumerate(setting.get("batches") or []):
            at = f"{where}batches[{j}]."
            _int(batch, "batch_size", at, 2)
            _int(batch, "min_steps", at)
            _int(batch, "max_steps", at, batch["min_steps"])
            for name, axes in (batch.get("grid") or {}).items():
                if name not in methods:
                    raise ValueError(f"{at}grid: {name!r} is not one of methods {sorted(methods)}")
                for key, values in dict(axes or {}).items():
                    if not isinstance(values, (list, tuple)) or not values:
                        raise ValueError(f"{at}grid.{name}.{key} must be a non-empty list of values; got {values!r}")
                for change in grid_points(axes):
                    check_loss_spec({**methods[name], **change}, f"{at}grid.{name}")
            for hp in ("tuned", "selected"):
                for name, change in (batch.get(hp) or {}).items():
                    if name not in methods:
                        raise ValueError(f"{at}{hp}: {name!r} is not one of methods {sorted(methods)}")
                    check_loss_spec({**methods[name], **dict(change or {})}, f"{at}{hp}.{name}")
    reuse = cfg.get("reuse_rows")
    if reuse is not None and not os.path.isfile(str(reuse)):
        raise ValueError(f"reuse_rows: no file at {reuse!r}; give a converged stage's results.csv "
                         "(e.g. docs/ground_truth/converged/results.csv from the repository's root) or null")


def grid_points(axes: Dict) -> List[Dict]:
    """Every combination of a grid's values: ``{"gamma": [4, 16], "t": [1]}`` gives
    ``[{"gamma": 4, "t": 1}, {"gamma": 16, "t": 1}]``."""
    keys = sorted(axes or {})
    return [dict(zip(keys, values)) for values in itertools.product(*(list(axes[k]) for k in keys))]
