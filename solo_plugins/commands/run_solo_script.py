"""Runs a solo-learn checkout's own, unmodified main_*.py with the plugin registered in
every process of the run.

    solo-plugins-run /path/to/solo-learn/main_pretrain.py \
        --config-path configs/pretrain/cifar10 --config-name dhel.yaml [strategy=ddp ...]

Everything after the script is passed to it unchanged (a relative --config-path is made
absolute first, since Hydra would resolve it against the script's folder). The script runs
as the program itself (``python main_pretrain.py ...``), with ``SOLO_PLUGINS_REGISTER=1``
and ``solo_plugins/startup`` on PYTHONPATH: its ``sitecustomize`` imports solo_plugins at
start-up in this process and in every process started from it, including the DDP ranks
that Lightning starts by re-running the script.
"""

import os
import subprocess
import sys

from solo_plugins.commands._hydra import absolute_config_path

STARTUP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "startup")


def registering_environment(env=None) -> dict:
    """``env`` (default: os.environ) with the start-up hook switched on."""
    env = dict(os.environ if env is None else env)
    paths = [STARTUP_DIR] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["SOLO_PLUGINS_REGISTER"] = "1"
    return env


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].endswith(".py"):
        sys.exit("usage: solo-plugins-run path/to/main_pretrain.py [its arguments]")
    script = os.path.abspath(sys.argv[1])
    if not os.path.isfile(script):
        sys.exit(f"solo-plugins-run: {script} does not exist")
    command = [sys.executable, script, *absolute_config_path(sys.argv[2:])]
    env = registering_environment()
    if hasattr(os, "execve"):
        sys.stdout.flush()
        os.execve(sys.executable, command, env)
    sys.exit(subprocess.call(command, env=env))


if __name__ == "__main__":
    main()
