"""``solo-plugins <subcommand> [its arguments]``: one command for everything the package runs.

Each subcommand takes exactly the arguments of the ``solo-plugins-<subcommand>`` command it
stands for (Hydra overrides where that command has them); those commands stay as aliases.
"""

import importlib
import importlib.util
import sys
from typing import List, Optional

from solo_plugins._version import __version__

#: subcommand -> (module with main(), one-line summary)
SUBCOMMANDS = {
    "demo": ("solo_plugins.commands.demo", "the fair comparison on scikit-learn's digits, offline on CPU (the default job)"),
    "sweep": ("solo_plugins.commands.sweep", "methods x batch sizes x seeds x variants -> probes, paired differences, plots"),
    "pretrain": ("solo_plugins.commands.pretrain", "pretraining with solo-learn's pipeline (main_pretrain.py's config)"),
    "linear": ("solo_plugins.commands.linear", "linear evaluation of a checkpoint (main_linear.py's config)"),
    "knn": ("solo_plugins.commands.knn", "k-NN evaluation of a pretraining run (main_knn.py's settings)"),
    "metrics": ("solo_plugins.commands.metrics", "representation metrics (alignment, uniformity, rank) of a run"),
    "export": ("solo_plugins.data.export", "writes digits or Fashion-MNIST as an image folder solo-learn reads"),
    "identifiability": ("solo_plugins.commands.identifiability",
                        "the latent-recovery studies and the finite-batch optimum (docs/ground_truth.md)"),
    "run": ("solo_plugins.commands.run_solo_script",
            "runs a solo-learn checkout's own main_*.py with the plugin in every process"),
}


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: solo-plugins <subcommand> [its arguments]", "       solo-plugins <subcommand> --help",
             "       solo-plugins --version", "", "subcommands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "The solo-plugins-<subcommand> commands are aliases of these."]
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
