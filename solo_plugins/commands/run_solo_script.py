"""Runs a solo-learn checkout's own, unmodified main_*.py with the plugin registered.

    solo-plugins-run /path/to/solo-learn/main_pretrain.py \
        --config-path configs/pretrain/cifar10 --config-name dhel.yaml

Everything after the script is passed to it unchanged (a relative --config-path is made
absolute first, since Hydra would resolve it against the script's folder).
"""

import os
import runpy
import sys

from solo_plugins.commands._hydra import absolute_config_path


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].endswith(".py"):
        sys.exit("usage: solo-plugins-run path/to/main_pretrain.py [its arguments]")
    script = os.path.abspath(sys.argv[1])
    import solo_plugins  # noqa: F401  (registers methods and backbone into solo.methods.METHODS)
    from solo_plugins.dali import enable_dali_on_cpu

    enable_dali_on_cpu()
    sys.argv = [script] + absolute_config_path(sys.argv[2:])
    sys.path.insert(0, os.path.dirname(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
