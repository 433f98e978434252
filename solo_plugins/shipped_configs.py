"""Where the shipped Hydra configs are: inside the installed package (a wheel carries them
as solo_plugins/configs), or the checkout's top-level configs/ (an editable install).

    python -m solo_plugins.shipped_configs          # prints the folder

The commands use it when no --config-path is given, so a shipped config is named by its
path below the command's folder: ``solo-plugins-pretrain --config-name cifar10/dhel``.
"""

import os

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def configs_dir() -> str:
    """$SOLO_PLUGINS_CONFIGS if set, else the shipped configs folder."""
    candidates = [
        os.environ.get("SOLO_PLUGINS_CONFIGS"),
        os.path.join(_PACKAGE, "configs"),
        os.path.join(os.path.dirname(_PACKAGE), "configs"),
    ]
    for path in candidates:
        if path and os.path.isdir(os.path.join(path, "pretrain")):
            return path
    raise FileNotFoundError(
        "the shipped configs were not found: reinstall solo-plugins, or set SOLO_PLUGINS_CONFIGS to a "
        "folder with pretrain/, linear/, knn/ and sweep/"
    )


if __name__ == "__main__":
    print(configs_dir())
