"""Running a Hydra ``main`` the way solo-learn's scripts are run."""

import copy
import os
import sys
from collections import OrderedDict
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


def with_shipped_config_path(argv: List[str], subdir: Optional[str]) -> List[str]:
    """Without --config-path, a config of the shipped configs' ``subdir`` (pretrain, linear,
    knn, sweep), named by its path below it: ``--config-name cifar10/dhel``."""
    given = any(a in ("--config-path", "-cp") or a.startswith("--config-path=") for a in argv)
    if given or subdir is None:
        return list(argv)
    from solo_plugins.shipped_configs import configs_dir

    out, folder = list(argv), os.path.join(configs_dir(), subdir)
    for i, arg in enumerate(out):
        if arg in ("--config-name", "-cn") and i + 1 < len(out):
            name_at, name = i + 1, out[i + 1]
        elif arg.startswith("--config-name="):
            name_at, name = i, arg.split("=", 1)[1]
        else:
            continue
        # Hydra resolves a config's defaults (hydra/... overrides included) against its own
        # folder, so the folder goes into --config-path and the last part stays the name.
        head, tail = os.path.split(name)
        folder = os.path.join(folder, head)
        out[name_at] = tail if name_at == i + 1 else f"--config-name={tail}"
        break
    return ["--config-path", folder, *out]


def run_hydra(task: Callable[[DictConfig], object], argv: Optional[List[str]] = None,
              configs: Optional[str] = None) -> None:
    """Runs ``task`` as a Hydra app on the command line's arguments; ``configs`` names the
    shipped configs' folder used when no --config-path is given."""
    args = with_shipped_config_path(sys.argv[1:] if argv is None else argv, configs)
    sys.argv = [sys.argv[0]] + absolute_config_path(args)
    hydra.main(version_base="1.2", config_path=None)(task)()


#: configs composed in this process, by folder, name, overrides and the folder's files
_COMPOSED: "OrderedDict[tuple, DictConfig]" = OrderedDict()
_KEPT = 256


def _files_state(folder: str) -> tuple:
    """Every file under ``folder`` with its modification time and size: a composed config
    is reused only while the files it was composed from are unchanged."""
    state = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            state.append((root, name, st.st_mtime_ns, st.st_size))
    return tuple(state)


def compose(config_dir: str, config_name: str, overrides: List[str] = ()) -> DictConfig:
    """Loads a config as the commands would, without running Hydra's app machinery. A sweep
    composes each run's config several times; the same request is answered from memory (a
    copy) while the folder's files are unchanged."""
    folder = os.path.abspath(config_dir)
    key = (folder, config_name, tuple(overrides), _files_state(folder))
    if key not in _COMPOSED:
        _COMPOSED[key] = _compose(folder, config_name, list(overrides))
        if len(_COMPOSED) > _KEPT:
            _COMPOSED.popitem(last=False)
    _COMPOSED.move_to_end(key)
    return copy.deepcopy(_COMPOSED[key])


def _compose(folder: str, config_name: str, overrides: List[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    # Inside a running @hydra.main app (the sweep command) Hydra is already initialized;
    # its own config is composed by then, so composing another one is safe.
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=folder, version_base="1.2"):
        return hydra_compose(config_name=config_name, overrides=overrides)
