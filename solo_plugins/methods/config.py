"""Config checks that name the offending key and the accepted values."""

from typing import Any, Iterable, Optional

import omegaconf
from omegaconf import OmegaConf


class ConfigError(ValueError):
    """A setting in the YAML (or an override) is missing or invalid."""


def _value(cfg: omegaconf.DictConfig, key: str) -> Any:
    if OmegaConf.select(cfg, key, default="__absent__") in ("__absent__",) or OmegaConf.is_missing(
        cfg, key
    ):
        raise ConfigError(f"{key} is required for method '{cfg.method}' but is not set in the config")
    return OmegaConf.select(cfg, key)


def require_int(cfg, key: str, minimum: int) -> int:
    value = _value(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}; got {value!r}")
    return value


def require_bool(cfg, key: str) -> bool:
    value = _value(cfg, key)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false; got {value!r}")
    return value


def require_number(cfg, key: str, above: Optional[float] = None, at_least: Optional[float] = None) -> float:
    value = _value(cfg, key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok and above is not None:
        ok = value > above
    if ok and at_least is not None:
        ok = value >= at_least
    if not ok:
        rule = f"> {above}" if above is not None else f">= {at_least}" if at_least is not None else "(int or float)"
        raise ConfigError(f"{key} must be a number {rule}; got {value!r}")
    return float(value)


def require_choice(cfg, key: str, choices: Iterable[str]) -> str:
    value = _value(cfg, key)
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
    return value


def require_chunk_size(cfg, key: str) -> Optional[int]:
    """None (no chunks) or an integer >= 1."""
    value = OmegaConf.select(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{key} must be null (no chunks) or an integer >= 1; got {value!r}")
    return value
