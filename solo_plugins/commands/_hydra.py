"""Running a Hydra ``main`` the way solo-learn's scripts are run."""

import os
import sys
from typing import Callable, List, Optional

import hydra
from omegaconf import DictConfig


def absolute_config_path(argv: List[str]) -> List[str]:
    """Hydra resolves a relative ``--config-path`` against the file that declares
    ``@hydra.main``; for an installed command that is site-packages, so anchor it at the
    working directory, as users of solo-learn's scripts expect."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg in ("--config-path", "-cp") and i + 1 < len(out):
            out[i + 1] = os.path.abspath(out[i + 1])
        elif arg.startswith("--config-path="):
            out[i] = "--config-path=" + os.path.abspath(arg.split("=", 1)[1])
    return out


def run_hydra(task: Callable[[DictConfig], object], argv: Optional[List[str]] = None) -> None:
    sys.argv = [sys.argv[0]] + absolute_config_path(sys.argv[1:] if argv is None else argv)
    hydra.main(version_base="1.2", config_path=None)(task)()


def compose(config_dir: str, config_name: str, overrides: List[str] = ()) -> DictConfig:
    """Loads a config as the commands would, without running Hydra's app machinery."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    # Inside a running @hydra.main app (the sweep command) Hydra is already initialized;
    # its own config is composed by then, so composing another one is safe.
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=os.path.abspath(config_dir), version_base="1.2"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))
