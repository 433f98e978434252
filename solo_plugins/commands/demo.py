"""The embedded default job: the fair comparison (InfoNCE, DCL, DCLW, DHEL, KCL on one network
and projector) on scikit-learn's digits, offline on CPU, at batch sizes 32 and 128, with the
reference rows and three probes; prints the table and writes the plots.

    solo-plugins-demo                      # writes datasets/digits and runs/digits
    solo-plugins-demo out_dir=runs/demo2   # any sweep override (configs/sweep/digits.yaml)
"""

import os
import sys
from typing import List, Optional

from solo_plugins.commands._hydra import compose
from solo_plugins.data.export import export_digits


def configs_dir() -> str:
    """The shipped configs: $SOLO_PLUGINS_CONFIGS, the checkout's configs/ (editable
    install), or ./configs."""
    candidates = [
        os.environ.get("SOLO_PLUGINS_CONFIGS"),
        os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs"),
        os.path.abspath("configs"),
    ]
    for path in candidates:
        if path and os.path.isdir(os.path.join(path, "pretrain")):
            return path
    raise FileNotFoundError("configs/ not found: run from a solo-plugins checkout or set SOLO_PLUGINS_CONFIGS")


def demo(overrides: Optional[List[str]] = None) -> str:
    from solo_plugins.commands.sweep import sweep

    configs = configs_dir()
    os.environ.setdefault("SOLO_PLUGINS_CONFIGS", configs)
    cfg = compose(os.path.join(configs, "sweep"), "digits.yaml", list(overrides or []))
    print(f"exporting scikit-learn digits to {export_digits(cfg.data_root)}", flush=True)
    return sweep(cfg)


def main() -> None:
    demo(sys.argv[1:])


if __name__ == "__main__":
    main()
