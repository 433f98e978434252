"""``solo-plugins <subcommand> [its arguments]``: one command for everything the package runs.

Each subcommand takes exactly the arguments of the ``solo-plugins-<subcommand>`` command it
stands for (Hydra overrides where that command has them); those commands stay as aliases.
``--help``, ``--version`` and ``<subcommand> --help`` answer without importing torch: a
subcommand imports what it needs when it runs, and names the extra to install when that is
missing.
"""

import ast
import importlib
import importlib.util
import sys
from typing import List, Optional, Tuple

from solo_plugins._version import __version__

_SOLO = ("torch", "lightning", "hydra", "omegaconf", "solo")
_STUDIES = ("torch", "hydra", "omegaconf", "numpy", "scipy", "sklearn", "matplotlib")

#: subcommand -> (module with main(), one-line summary, modules it needs, the extras that bring them)
SUBCOMMANDS = {
    "demo": ("solo_plugins.commands.demo", "the fair comparison on scikit-learn's digits, offline on CPU (the default job)",
             _SOLO + _STUDIES, "solo,studies"),
    "sweep": ("solo_plugins.commands.sweep", "methods x batch sizes x seeds x variants -> probes, paired differences, plots",
              _SOLO + _STUDIES, "solo,studies"),
    "pretrain": ("solo_plugins.commands.pretrain", "pretraining with solo-learn's pipeline (main_pretrain.py's config)",
                 _SOLO, "solo"),
    "linear": ("solo_plugins.commands.linear", "linear evaluation of a checkpoint (main_linear.py's config)", _SOLO, "solo"),
    "knn": ("solo_plugins.commands.knn", "k-NN evaluation of a pretraining run (main_knn.py's settings)", _SOLO, "solo"),
    "metrics": ("solo_plugins.commands.metrics", "representation metrics (alignment, uniformity, rank) of a run",
                _SOLO + _STUDIES, "solo,studies"),
    "export": ("solo_plugins.data.export", "writes digits or Fashion-MNIST as an image folder solo-learn reads",
               ("numpy", "PIL", "sklearn"), "studies"),
    "identifiability": ("solo_plugins.commands.identifiability",
                        "the latent-recovery studies and the finite-batch optimum (docs/ground_truth.md)",
                        _STUDIES, "studies"),
    "run": ("solo_plugins.commands.run_solo_script",
            "runs a solo-learn checkout's own main_*.py with the plugin in every process", _SOLO, "solo"),
}

_INSTALL_SOLO = "solo-learn itself comes from GitHub: scripts/install.sh installs it (docs/getting_started.md)"


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: solo-plugins <subcommand> [its arguments]", "       solo-plugins <subcommand> --help",
             "       solo-plugins --version", "", "subcommands:"]
    lines += [f"  {name:<{width}}  {entry[1]}" for name, entry in SUBCOMMANDS.items()]
    lines += ["", "The solo-plugins-<subcommand> commands are aliases of these."]
    return "\n".join(lines)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(name: str) -> Tuple[List[str], str]:
    """The modules subcommand ``name`` needs that cannot be imported, and its extras."""
    _, _, needs, extras = SUBCOMMANDS[name]
    return [m for m in dict.fromkeys(needs) if not _installed(m)], extras


def _missing_message(name: str, absent: List[str], extras: str) -> str:
    text = (f"solo-plugins {name} needs {', '.join(absent)}, not installed here. Install the extra: "
            f"pip install 'solo-plugins[{extras}]' (with constraints.txt for the tested versions)")
    if "solo" in absent:
        text += f"; {_INSTALL_SOLO}"
    return text


def subcommand_help(name: str) -> str:
    """The subcommand module's docstring, read from its source without importing it."""
    module_name, summary, _, extras = SUBCOMMANDS[name]
    spec = importlib.util.find_spec(module_name)  # imports the parent packages only
    with open(spec.origin, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or summary
    lines = [f"solo-plugins {name}: {summary}", "", doc, "", f"Needs the extra [{extras}]."]
    absent, _ = missing(name)
    if absent:
        lines.append(_missing_message(name, absent, extras))
    if name != "run" and name != "export":
        lines.append(f"The composed config, without running: solo-plugins {name} --config-name <name> --cfg job")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if args[0] in ("-V", "--version"):
        print(f"solo-plugins {__version__}")
        return
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        sys.exit(f"solo-plugins: unknown subcommand {name!r}; choose from {', '.join(SUBCOMMANDS)}\n\n{usage()}")
    if rest[:1] in (["-h"], ["--help"]):
        print(subcommand_help(name))
        return
    absent, extras = missing(name)
    if absent:
        sys.exit(_missing_message(name, absent, extras))
    module_name = SUBCOMMANDS[name][0]
    module = importlib.import_module(module_name)
    # Lightning's DDP starts the other ranks by re-running the program: as
    # `python -m <__main__.__spec__.name> <argv[1:]>` when it was started with -m. Declaring the
    # subcommand's module the program makes every rank run this subcommand (its modules have a
    # __main__ block), with solo_plugins imported, and so registered, in each.
    sys.modules["__main__"].__spec__ = importlib.util.find_spec(module_name)
    sys.argv = [sys.argv[0], *rest]
    module.main()


if __name__ == "__main__":
    main()
